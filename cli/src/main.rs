//! The `xdpchain` command: link, attach, inspect and detach chains of XDP
//! programs. A thin layer over the library: it parses arguments, formats
//! status (report.rs) and maps errors to exit codes; on failure it prints
//! one line on stderr.

mod dump;
mod metrics;
mod report;
mod top;

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{ArgAction, Args, Parser, Subcommand};
use xdpchain::{
    ApplyOptions, AttachMode, AttachOptions, Chain, Component, Counting, Error, Layout, Mode,
    Netns, OpenOptions, Outcome, Selection, SharedChain, Store, Verdicts,
};

const AFTER_HELP: &str = "\
Components record their owner (--owner, default xdpchain) and process id; changing or removing
the components of other owners, or attaching over them, needs --force.
Chains are recorded under $XDPCHAIN_PIN_DIR (default /sys/fs/bpf/xdpchain).

Exit status: 0 done; 2 usage; 65 a malformed object, an argument out of range or a program the
verifier refused; 66 no such interface, file, component or namespace; 69 what the kernel or the
system lacks (freplace, bpffs); 75 busy (others' programs, a race lost): retry or use --force;
77 missing privileges; 71 any other failure of the system.";

#[derive(Parser)]
#[command(
    name = "xdpchain",
    version,
    about = "Run several unchanged XDP programs on one interface, one after another",
    after_help = AFTER_HELP
)]
struct Cli {
    /// Run in the network namespace NETNS (a name in /run/netns, or a
    /// path), as `ip -n` does
    #[arg(short = 'n', long, global = true, value_name = "NETNS")]
    netns: Option<String>,
    /// Show the library's and libbpf's messages on stderr (-v: warnings and
    /// information, the verifier's log of a refused program among them;
    /// -vv: also libbpf's debugging)
    #[arg(short, long, global = true, action = ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Link programs into one BPF object file, which other loaders can load
    Link {
        /// Where to write the object
        #[arg(short, value_name = "OUT.o")]
        out: PathBuf,
        /// Leave the per-component counters (and all counting code) out
        #[arg(long)]
        no_counters: bool,
        /// The programs, in their run order unless priorities say otherwise
        #[arg(required = true, value_name = "FILE[:PROG]")]
        programs: Vec<OsString>,
        #[command(flatten)]
        config: Config,
    },
    /// Make these programs the interface's chain, replacing what runs there
    Attach {
        /// The interface: a name, or an index as digits
        iface: String,
        #[arg(required = true, value_name = "FILE[:PROG]")]
        programs: Vec<OsString>,
        #[command(flatten)]
        config: Config,
        #[command(flatten)]
        new: NewChain,
        #[command(flatten)]
        owner: OwnerArgs,
    },
    /// Add one program to the interface's chain, beside those of others
    Add {
        /// The interface: a name, or an index as digits
        iface: String,
        #[arg(value_name = "FILE[:PROG]")]
        program: OsString,
        /// Where it runs: lower first (default 50)
        #[arg(long, allow_negative_numbers = true)]
        priority: Option<i32>,
        /// The verdicts on which the chain goes on after it (default: pass)
        #[arg(long, value_name = "pass,drop,...", value_parser = |s: &str| Verdicts::parse(s).map_err(|e| e.to_string()))]
        continue_on: Option<Verdicts>,
        #[command(flatten)]
        config: Config,
        #[command(flatten)]
        new: NewChain,
        #[command(flatten)]
        owner: OwnerArgs,
    },
    /// Take one component out of the interface's chain
    Remove {
        /// The interface: a name, or an index as digits
        iface: String,
        /// Its id, or its program's name
        component: String,
        #[command(flatten)]
        owner: OwnerArgs,
    },
    /// Put a program in the place of a component, atomically
    Replace {
        /// The interface: a name, or an index as digits
        iface: String,
        /// Its id, or its program's name
        component: String,
        #[arg(value_name = "FILE[:PROG]")]
        program: OsString,
        #[command(flatten)]
        config: Config,
        #[command(flatten)]
        owner: OwnerArgs,
    },
    /// Show the chains attached (or the one on IFACE) and their counters
    Status {
        /// The interface: a name, or an index as digits (default: all)
        iface: Option<String>,
        /// As JSON
        #[arg(long)]
        json: bool,
    },
    /// Show each component's packets and verdicts per second and time per
    /// packet, refreshed every interval (timing is on meanwhile)
    Top {
        /// The interface: a name, or an index as digits (default: all)
        iface: Option<String>,
        /// Seconds between samples
        #[arg(long, default_value = "1", value_name = "S", value_parser = interval)]
        interval: std::time::Duration,
        /// Print one sample, after one interval, and exit
        #[arg(long)]
        once: bool,
        /// As JSON, one array of chains per sample and line
        #[arg(long)]
        json: bool,
    },
    /// Write the packets one component receives (or leaves) as a pcap file
    Dump {
        /// The interface: a name, or an index as digits
        iface: String,
        /// Its id, or its program's name
        component: String,
        /// Where to take packets: as the component receives them, or as it
        /// leaves them (with its verdict)
        #[arg(long, default_value = "entry", value_parser = ["entry", "exit"])]
        at: String,
        /// Stop after N packets
        #[arg(short = 'c', value_name = "N")]
        count: Option<u64>,
        /// Bytes of each packet to keep (at most 2048)
        #[arg(short = 's', value_name = "SNAPLEN", default_value_t = xdpchain::SNAP_MAX)]
        snaplen: u32,
        /// The pcap file to write, or - for standard output
        #[arg(short = 'w', value_name = "FILE|-", required = true)]
        write: PathBuf,
    },
    /// Print every chain's counters as OpenMetrics (Prometheus) text, or
    /// serve them at /metrics
    Metrics {
        /// Serve http://ADDR:PORT/metrics instead (default address:
        /// 127.0.0.1:9436)
        #[arg(long, value_name = "ADDR:PORT", num_args = 0..=1,
              default_missing_value = metrics::DEFAULT_LISTEN)]
        listen: Option<std::net::SocketAddr>,
        /// While serving, keep the components timed (as top does)
        #[arg(long, requires = "listen")]
        timing: bool,
    },
    /// Take the interface's chain off it (others' components need --force)
    Detach {
        /// The interface: a name, or an index as digits
        iface: String,
        #[command(flatten)]
        owner: OwnerArgs,
    },
    /// Remove the records of chains that no longer run
    Clean,
    /// Bring the chains to what a chains file declares, changing only what differs
    Apply {
        /// A chains file, or a directory of them (*.toml)
        #[arg(default_value = xdpchain::DEFAULT_CHAINS_FILE)]
        file: PathBuf,
        /// Print what would change, and change nothing
        #[arg(long)]
        dry_run: bool,
        /// Also remove the components that the file does not own, and
        /// replace other loaders' programs
        #[arg(long)]
        prune: bool,
        /// Only the chain of this interface (as udev starts it for an
        /// interface that appears); nothing if the file does not declare it
        #[arg(long, value_name = "IFACE")]
        interface: Option<String>,
    },
}

/// How the programs are configured before they load, as their own loaders
/// would.
#[derive(Args)]
struct Config {
    /// Sets the global variable NAME (a `const volatile` one in .rodata, or
    /// any with initial data) of program PROG (needed where several are
    /// given): an integer (decimal, or 0x hex) that fits it, or bytes as
    /// hex:0a0b...
    #[arg(long = "set", value_name = "[PROG:]NAME=VALUE", value_parser = assignment)]
    globals: Vec<Assignment>,
    /// Sets the size (max_entries) of map NAME of program PROG (needed where
    /// several are given)
    #[arg(long = "map-size", value_name = "[PROG:]NAME=N", value_parser = assignment)]
    map_sizes: Vec<Assignment>,
}

fn interval(s: &str) -> Result<std::time::Duration, String> {
    s.parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.01 && *s <= 86400.0)
        .map(std::time::Duration::from_secs_f64)
        .ok_or_else(|| format!("'{s}' is not a number of seconds from 0.01 to 86400"))
}

/// [PROG:]NAME=VALUE
#[derive(Clone)]
struct Assignment {
    prog: Option<String>,
    name: String,
    value: String,
}

fn assignment(s: &str) -> Result<Assignment, String> {
    let (target, value) = s
        .split_once('=')
        .ok_or_else(|| format!("'{s}' is not [PROG:]NAME=VALUE"))?;
    let (prog, name) = match target.split_once(':') {
        Some((p, n)) => (Some(p.to_string()), n),
        None => (None, target),
    };
    if name.is_empty() || prog.as_deref() == Some("") {
        return Err(format!("'{s}' is not [PROG:]NAME=VALUE"));
    }
    Ok(Assignment {
        prog,
        name: name.to_string(),
        value: value.to_string(),
    })
}

impl Config {
    /// `components` configured: each assignment goes to the program it names,
    /// which must be among them; one without a name only where there is one.
    fn apply(&self, components: Vec<Component>) -> Result<Vec<Component>, Error> {
        for a in self.globals.iter().chain(&self.map_sizes) {
            match &a.prog {
                None if components.len() > 1 => {
                    return Err(Error::InvalidArgument(format!(
                        "{}: several programs are given; name one, as PROG:{}=...",
                        a.name, a.name
                    )))
                }
                Some(p) if !components.iter().any(|c| c.program() == p) => {
                    return Err(Error::InvalidArgument(format!(
                        "{p}:{}: no program {p} among those given",
                        a.name
                    )))
                }
                _ => {}
            }
        }
        components.into_iter().map(|c| self.configure(c)).collect()
    }

    /// One program configured, as [`Config::apply`] checks names.
    fn one(&self, c: Component) -> Result<Component, Error> {
        Ok(self.apply(vec![c])?.remove(0))
    }

    fn configure(&self, mut c: Component) -> Result<Component, Error> {
        let program = c.program().to_string();
        let mine = |a: &&Assignment| a.prog.as_ref().is_none_or(|p| *p == program);
        for Assignment { name, value, .. } in self.globals.iter().filter(mine) {
            c = c.with_global_text(name, value)?;
        }
        for Assignment { name, value: v, .. } in self.map_sizes.iter().filter(mine) {
            let n = v
                .parse()
                .map_err(|_| Error::InvalidArgument(format!("bad map size '{v}'")))?;
            c = c.with_map_size(name, n)?;
        }
        Ok(c)
    }
}

/// How a chain that the command creates is made.
#[derive(Args)]
struct NewChain {
    /// Attach in the generic (skb) path rather than in the driver
    #[arg(long)]
    skb: bool,
    /// How a new chain joins its components (default: $XDPCHAIN_MODE, else
    /// auto: dynamic where the kernel has freplace, static otherwise)
    #[arg(long, value_name = "auto|static|dynamic", value_parser = |s: &str| Mode::parse(s).map_err(|e| e.to_string()))]
    mode: Option<Mode>,
    /// Whose layout a new chain takes: auto (libxdp's for a dynamic chain of
    /// at most ten components unless --counters, so that xdp-loader can
    /// join it; ours otherwise), xdpchain, libxdp or libxdp:VERSION (2 or 3;
    /// default: the installed libxdp's, else 3). A libxdp dispatcher
    /// already there is always joined.
    #[arg(long, value_name = "LAYOUT", value_parser = |s: &str| Layout::parse(s).map_err(|e| e.to_string()))]
    layout: Option<Layout>,
    /// Count packets per component, in our layout (libxdp's has no room for
    /// counters). Default: count unless the chain takes libxdp's layout
    #[arg(long, conflicts_with = "no_counters")]
    counters: bool,
    /// Leave the per-component counters (and all counting code) out
    #[arg(long)]
    no_counters: bool,
}

impl NewChain {
    fn counting(&self) -> Counting {
        match (self.counters, self.no_counters) {
            (true, _) => Counting::On,
            (_, true) => Counting::Off,
            _ => Counting::Auto,
        }
    }
}

/// Who acts on the chain.
#[derive(Args)]
struct OwnerArgs {
    /// The owner recorded with the components added (default: xdpchain)
    #[arg(long, value_name = "NAME")]
    owner: Option<String>,
    /// Replace or remove the components of other owners, or a program of
    /// another loader
    #[arg(long)]
    force: bool,
}

impl OwnerArgs {
    /// The chain of `iface`, opened as this owner.
    fn open(&self, iface: &str, new: Option<&NewChain>) -> Result<SharedChain, Error> {
        let mut store = Store::new();
        if let Some(m) = new.and_then(|n| n.mode) {
            store = store.with_mode(m);
        }
        if let Some(l) = new.and_then(|n| n.layout) {
            store = store.with_layout(l);
        }
        let opts = OpenOptions {
            owner: self.owner.clone(),
            attach: AttachOptions {
                mode: match new.is_some_and(|n| n.skb) {
                    true => AttachMode::Skb,
                    false => AttachMode::Native,
                },
                force: self.force,
            },
            counting: new.map_or(Counting::Auto, NewChain::counting),
            netns: None,
        };
        store.open(iface, opts)
    }
}

/// FILE or FILE:PROG (a path that exists as given is taken whole). Paths
/// are bytes, as the kernel takes them; program names are text.
fn component(spec: &OsStr) -> Result<Component, Error> {
    let bytes = spec.as_bytes();
    let split = bytes
        .iter()
        .rposition(|&c| c == b':')
        .map(|at| bytes.split_at(at));
    let (file, prog) = match split {
        Some((f, p)) if !Path::new(spec).exists() && p.len() > 1 => {
            (OsStr::from_bytes(f), Some(&p[1..]))
        }
        _ => (spec, None),
    };
    let prog = prog
        .map(|p| std::str::from_utf8(p))
        .transpose()
        .map_err(|_| {
            Error::InvalidArgument(format!(
                "{}: a program name that is not UTF-8",
                Path::new(spec).display()
            ))
        })?;
    Component::from_file(file, prog)
}

fn components(specs: &[OsString]) -> Result<Vec<Component>, Error> {
    specs.iter().map(|s| component(s)).collect()
}

fn run(cli: Cli) -> Result<(), Error> {
    if let Some(ns) = &cli.netns {
        Netns::open(ns)?.enter_for_good()?;
    }
    match cli.command {
        Command::Link {
            out,
            no_counters,
            programs,
            config,
        } => {
            let mut chain = Chain::new();
            chain.set_counting(!no_counters);
            for c in config.apply(components(&programs)?)? {
                chain.add(c)?;
            }
            chain.write(out)
        }
        Command::Attach {
            iface,
            programs,
            config,
            new,
            owner,
        } => {
            let components = config.apply(components(&programs)?)?;
            owner.open(&iface, Some(&new))?.replace_all(components)?;
            print!("{}", report::status(&[xdpchain::status(&iface)?], false));
            Ok(())
        }
        Command::Add {
            iface,
            program,
            priority,
            continue_on,
            config,
            new,
            owner,
        } => {
            let mut c = config.one(component(&program)?)?;
            if let Some(p) = priority {
                c = c.with_priority(p);
            }
            if let Some(v) = continue_on {
                c = c.with_continue_on(v);
            }
            let id = owner.open(&iface, Some(&new))?.add(c)?;
            println!("added component {}", id.0);
            Ok(())
        }
        Command::Remove {
            iface,
            component,
            owner,
        } => owner.open(&iface, None)?.remove(&component),
        Command::Replace {
            iface,
            component: key,
            program,
            config,
            owner,
        } => owner
            .open(&iface, None)?
            .replace(&key, config.one(component(&program)?)?),
        Command::Status { iface, json } => {
            let chains = match iface {
                Some(iface) => vec![xdpchain::status(&iface)?],
                None => xdpchain::list()?,
            };
            print!("{}", report::status(&chains, json));
            Ok(())
        }
        Command::Top {
            iface,
            interval,
            once,
            json,
        } => top::run(iface.as_deref(), interval, once, json),
        Command::Dump {
            iface,
            component,
            at,
            count,
            snaplen,
            write,
        } => {
            let at = match at.as_str() {
                "exit" => xdpchain::DumpPoint::Exit,
                _ => xdpchain::DumpPoint::Entry,
            };
            dump::run(&iface, &component, at, count, snaplen, &write)
        }
        Command::Metrics { listen, timing } => metrics::run(cli.netns.as_deref(), listen, timing),
        Command::Detach { iface, owner } => owner.open(&iface, None)?.detach_all(),
        Command::Apply {
            file,
            dry_run,
            prune,
            interface,
        } => apply(
            &file,
            ApplyOptions { prune, dry_run },
            Selection {
                netns: cli.netns.as_deref(),
                interface: interface.as_deref(),
            },
        ),
        Command::Clean => {
            for dir in Store::new().clean()? {
                println!("removed stale {}", dir.display());
            }
            Ok(())
        }
    }
}

/// Applies each chain `file` declares (those `select` takes), printing
/// what changes and skipping interfaces that do not exist (udev applies
/// their chains when they appear); returns the first failure.
fn apply(file: &Path, opts: ApplyOptions, select: Selection) -> Result<(), Error> {
    let chains = xdpchain::read_chains(file, select)?;
    let mut first = None;
    for (chain, outcome) in Store::new().apply_all(&chains, opts) {
        let name = chain.label();
        match outcome {
            Outcome::Applied(a) if !a.changed() => println!("{name}: unchanged"),
            Outcome::Applied(a) => {
                for change in &a.changes {
                    let would = if opts.dry_run && change.changes() {
                        "would "
                    } else {
                        ""
                    };
                    println!("{name}: {would}{change}");
                }
            }
            Outcome::Missing => {
                println!("{name}: no such interface; skipped (applied when it appears)")
            }
            Outcome::Failed(e) if first.is_none() => first = Some(e),
            Outcome::Failed(e) => eprintln!("xdpchain: {}", e.to_string().replace('\n', " ")),
        }
    }
    first.map_or(Ok(()), Err)
}

/// The exit status for `e`, by the class of its errno (see AFTER_HELP;
/// the values are sysexits.h's).
fn exit_code(e: &Error) -> u8 {
    if let Error::Declared { source, .. } = e {
        return exit_code(source);
    }
    if matches!(e, Error::Verifier { .. } | Error::Load { .. }) {
        return 65;
    }
    match e.errno() {
        libc::ENOEXEC | libc::EINVAL | libc::E2BIG | libc::EFBIG => 65,
        libc::ENOENT | libc::ENODEV => 66,
        libc::EOPNOTSUPP | libc::ENOTDIR => 69,
        libc::EBUSY | libc::EAGAIN => 75,
        libc::EPERM | libc::EACCES => 77,
        _ => 71,
    }
}

fn main() -> ExitCode {
    // A bug, not a backtrace: one line too (and exit status 101).
    std::panic::set_hook(Box::new(|info| {
        let what = info.to_string().replace('\n', " ");
        eprintln!("xdpchain: internal error, please report: {what}");
    }));
    // Usage errors too are one line; help and the version print as clap
    // writes them.
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => e.exit(),
        Err(e) => {
            let text = e.render().to_string();
            let what: Vec<&str> = text
                .lines()
                .take_while(|l| !l.is_empty() && !l.starts_with("Usage:"))
                .map(str::trim)
                .collect();
            eprintln!("xdpchain: {}", what.join(" ").trim_start_matches("error: "));
            return ExitCode::from(2);
        }
    };
    log_to_stderr(cli.verbose);
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xdpchain: {}", e.to_string().replace('\n', " "));
            ExitCode::from(exit_code(&e))
        }
    }
}

/// Messages through the `log` facade, on stderr from -v on.
struct StderrLog;

impl log::Log for StderrLog {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        let level = record.level().as_str().to_ascii_lowercase();
        for line in record.args().to_string().lines() {
            eprintln!("xdpchain: {level}: {}: {line}", record.target());
        }
    }
    fn flush(&self) {}
}

fn log_to_stderr(verbose: u8) {
    static LOGGER: StderrLog = StderrLog;
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(match verbose {
            0 => log::LevelFilter::Off,
            1 => log::LevelFilter::Info,
            _ => log::LevelFilter::Debug,
        });
    }
}
