//! `xdpchain metrics`: every chain's counters in the OpenMetrics text
//! format (prometheus-client), printed for node_exporter's textfile
//! collector or served at /metrics (tiny_http).

use std::net::SocketAddr;
use std::os::unix::fs::MetadataExt;

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::{Registry, Unit};
use xdpchain::{ChainStatus, Error, Netns, Timing};

pub const DEFAULT_LISTEN: &str = "127.0.0.1:9436";
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Labels {
    interface: String,
    /// The network namespace's name in /run/netns; "" for this process's.
    netns: String,
    component: String,
    owner: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VerdictLabels {
    interface: String,
    netns: String,
    component: String,
    owner: String,
    verdict: &'static str,
}

/// The chains to report: with `netns`, those of that namespace (which the
/// process is in); else this namespace's and those of every namespace
/// named in /run/netns.
fn chains(netns: Option<&str>) -> Result<Vec<(String, ChainStatus)>, Error> {
    let tag = |ns: &str, chains: Vec<ChainStatus>| {
        chains
            .into_iter()
            .map(|c| (ns.to_string(), c))
            .collect::<Vec<_>>()
    };
    if let Some(ns) = netns {
        return Ok(tag(ns, xdpchain::list()?));
    }
    let inode = |p: &std::path::Path| std::fs::metadata(p).map(|m| m.ino()).ok();
    let own = inode("/proc/thread-self/ns/net".as_ref());
    let mut names: Vec<(String, Option<u64>)> = std::fs::read_dir("/run/netns")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| {
                    (
                        e.file_name().to_string_lossy().into_owned(),
                        inode(&e.path()),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    // This namespace under its name, if it has one; once.
    let here = names.iter().find(|(_, i)| *i == own).map_or("", |(n, _)| n);
    let mut out = tag(here, xdpchain::list()?);
    for (name, _) in names.iter().filter(|(_, i)| *i != own) {
        // A namespace removed meanwhile has no chains to report.
        match Netns::open(name).and_then(|ns| ns.run(xdpchain::list)) {
            Ok(chains) => out.extend(tag(name, chains)),
            Err(Error::UnknownNetns(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// The exposition of `chains`, ending in `# EOF`.
fn render(chains: &[(String, ChainStatus)]) -> String {
    let mut registry = Registry::default();
    let packets = Family::<Labels, Counter>::default();
    let verdicts = Family::<VerdictLabels, Counter>::default();
    let run_time = Family::<Labels, Counter<f64>>::default();
    let run_cnt = Family::<Labels, Counter>::default();
    registry.register(
        "xdpchain_packets",
        "Packets a component ran on",
        packets.clone(),
    );
    registry.register(
        "xdpchain_verdicts",
        "Packets by the verdict a component returned (other: no XDP verdict)",
        verdicts.clone(),
    );
    registry.register_with_unit(
        "xdpchain_run_time",
        "Time components took on the packets timed while a reader had timing on",
        Unit::Seconds,
        run_time.clone(),
    );
    registry.register(
        "xdpchain_run_packets",
        "Packets timed while a reader had timing on",
        run_cnt.clone(),
    );
    for (netns, st) in chains {
        let interface = st
            .interface
            .as_ref()
            .map_or(String::new(), |i| i.name.clone());
        for c in &st.components {
            let Some(k) = c.counters else { continue };
            let labels = Labels {
                interface: interface.clone(),
                netns: netns.clone(),
                component: c.name.clone(),
                owner: c
                    .owner
                    .as_ref()
                    .map_or(String::new(), |o| o.name().to_string()),
            };
            packets.get_or_create(&labels).inc_by(k.packets());
            for (verdict, n) in k.by_name() {
                let l = VerdictLabels {
                    interface: labels.interface.clone(),
                    netns: labels.netns.clone(),
                    component: labels.component.clone(),
                    owner: labels.owner.clone(),
                    verdict,
                };
                verdicts.get_or_create(&l).inc_by(n);
            }
            run_time
                .get_or_create(&labels)
                .inc_by(k.run_time_ns as f64 / 1e9);
            run_cnt.get_or_create(&labels).inc_by(k.run_cnt);
        }
    }
    let mut out = String::new();
    encode(&mut out, &registry).expect("writing to a String");
    out
}

pub fn run(netns: Option<&str>, listen: Option<SocketAddr>, timing: bool) -> Result<(), Error> {
    let Some(addr) = listen else {
        print!("{}", render(&chains(netns)?));
        return Ok(());
    };
    let _timing = timing.then(|| Timing::start(None)).transpose()?;
    let server = tiny_http::Server::http(addr).map_err(|e| Error::Os {
        op: format!("listen on {addr}"),
        source: match e.downcast::<std::io::Error>() {
            Ok(io) => *io,
            Err(e) => std::io::Error::other(e.to_string()),
        },
    })?;
    log::info!("serving /metrics on http://{addr}");
    let header =
        tiny_http::Header::from_bytes("Content-Type", CONTENT_TYPE).expect("a valid header");
    for request in server.incoming_requests() {
        let path = request.url().split('?').next().unwrap_or_default();
        let response = match (request.method(), path) {
            (tiny_http::Method::Get, "/metrics") => match chains(netns) {
                Ok(c) => tiny_http::Response::from_string(render(&c)).with_header(header.clone()),
                Err(e) => tiny_http::Response::from_string(format!("{e}\n")).with_status_code(500),
            },
            _ => tiny_http::Response::from_string("only /metrics is here\n").with_status_code(404),
        };
        // A scraper that went away is no reason to stop serving.
        let _ = request.respond(response);
    }
    Ok(())
}
