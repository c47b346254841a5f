//! `xdpchain dump`: the packets one component sees, as a pcap file
//! (pcap-file), until Ctrl-C, SIGTERM or -c packets.

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, UNIX_EPOCH};

use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
use pcap_file::{DataLink, Endianness, TsResolution};
use xdpchain::{ComponentKey, Dump, DumpPoint, Error};

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn stop(_: libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
}

/// Ctrl-C and SIGTERM end the dump between packets, so that the file
/// ends with a whole one.
fn on_signals() {
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the handler only stores to an atomic, which is
        // async-signal-safe.
        unsafe {
            libc::signal(
                sig,
                stop as extern "C" fn(libc::c_int) as libc::sighandler_t,
            )
        };
    }
}

fn io_err(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Os {
        op: what.into(),
        source: std::io::Error::other(e.to_string()),
    }
}

pub fn run(
    iface: &str,
    component: ComponentKey,
    at: DumpPoint,
    count: Option<u64>,
    snaplen: u32,
    out: &Path,
) -> Result<(), Error> {
    let mut dump = Dump::start(iface, component, at, snaplen)?;
    let sink: Box<dyn Write> = if out == Path::new("-") {
        Box::new(std::io::stdout().lock())
    } else {
        let f = File::create(out).map_err(|e| Error::Os {
            op: format!("create {}", out.display()),
            source: e,
        })?;
        Box::new(f)
    };
    let header = PcapHeader {
        snaplen,
        datalink: DataLink::ETHERNET,
        ts_resolution: TsResolution::NanoSecond,
        endianness: Endianness::native(),
        ..PcapHeader::default()
    };
    let mut pcap = PcapWriter::with_header(sink, header).map_err(|e| io_err("write pcap", e))?;
    on_signals();
    // From here every packet is captured: said, as tcpdump says it
    // listens, so that whoever sends them knows when to.
    eprintln!("dumping on {iface}, up to {snaplen} bytes of each packet");
    let mut taken = 0u64;
    let wanted = |taken: u64| count.is_none_or(|n| taken < n);
    let mut write = |p: xdpchain::Packet| {
        let ts = p.time.duration_since(UNIX_EPOCH).unwrap_or_default();
        pcap.write_packet(&PcapPacket::new(ts, p.len, &p.data))
            .map_err(|e| io_err("write pcap", e))
    };
    while !STOP.load(Ordering::Relaxed) && wanted(taken) {
        if let Some(p) = dump.next(Duration::from_millis(200))? {
            write(p)?;
            taken += 1;
        }
    }
    // What was captured before a signal is written too.
    while wanted(taken) {
        let Some(p) = dump.next(Duration::ZERO)? else {
            break;
        };
        write(p)?;
        taken += 1;
    }
    pcap.into_writer()
        .flush()
        .map_err(|e| io_err("write pcap", e))?;
    eprintln!("{taken} packets captured, {} lost", dump.lost());
    Ok(())
}
