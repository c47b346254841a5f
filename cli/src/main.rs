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
    ApplyOptions, AttachMode, AttachOptions, Chain, Component, ComponentKey, Counting, Error,
    Layout, Mode, Netns, OpenOptions, Outcome, Report, Selection, SharedChain, Store, Verdicts,
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
        #[arg(value_parser = str::parse::<ComponentKey>)]
        component: ComponentKey,
        #[command(flatten)]
        owner: OwnerArgs,
    },
    /// Put a program in the place of a component, atomically
    Replace {
        /// The interface: a name, or an index as digits
        iface: String,
        /// Its id, or its program's name
        #[arg(value_parser = str::parse::<ComponentKey>)]
        component: ComponentKey,
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
        /// In every named network namespace where a chain of ours runs
        #[arg(short = 'A', long, conflicts_with = "iface")]
        all_namespaces: bool,
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
        #[arg(value_parser = str::parse::<ComponentKey>)]
        component: ComponentKey,
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
    /// Keeps program PROG (needed where several are given) a function of
    /// its own in a static chain, which fentry/fexit tools (bpftrace,
    /// retsnoop) attach to by the name status shows
    #[arg(long, value_name = "PROG", num_args = 0..=1, default_missing_value = "")]
    traceable: Vec<String>,
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
        // (the program named, if one is; the option as errors show it,
        // without and with a program)
        let named = self
            .globals
            .iter()
            .chain(&self.map_sizes)
            .map(|a| {
                (
                    a.prog.clone(),
                    a.name.clone(),
                    format!("PROG:{}=...", a.name),
                )
            })
            .chain(self.traceable.iter().map(|p| {
                let prog = Some(p.clone()).filter(|p| !p.is_empty());
                (prog, "--traceable".into(), "--traceable PROG".into())
            }));
        for (prog, what, hint) in named {
            match prog {
                None if components.len() > 1 => {
                    return Err(Error::InvalidArgument(format!(
                        "{what}: several programs are given; name one, as {hint}"
                    )))
                }
                Some(p) if !components.iter().any(|c| c.program() == p) => {
                    return Err(Error::InvalidArgument(format!(
                        "{}: no program {p} among those given",
                        hint.replace("PROG", &p)
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
        let traceable = self.traceable.iter().any(|p| p.is_empty() || *p == program);
        Ok(c.with_traceable(traceable))
    }
}

/// How a chain that the command creates is made.
#[derive(Args)]
struct NewChain {
    /// Attach in the generic (skb) path rather than in the driver (as
    /// --attach-mode skb)
    #[arg(long)]
    skb: bool,
    /// Where XDP runs a new chain: native (in the driver; the default) or
    /// skb (generic), as xdp-loader's -m takes them (hw offload is not
    /// supported)
    #[arg(long, value_name = "native|skb", value_parser = attach_mode)]
    attach_mode: Option<AttachMode>,
    /// How a new chain joins its components (default: $XDPCHAIN_MODE, else
    /// auto: dynamic where the kernel has freplace, static otherwise); also
    /// takes xdp-loader's native and skb, for --attach-mode
    #[arg(short = 'm', long, value_name = "auto|static|dynamic", value_parser = mode_or_attach_mode)]
    mode: Option<ModeArg>,
    /// Whose layout a new chain takes: auto (libxdp's for a dynamic chain of
    /// at most ten components unless --counters, so that xdp-loader can
    /// join it; ours otherwise), xdpchain, libxdp or libxdp:VERSION (2 or 3;
    /// default: the installed libxdp's, else 3). A libxdp dispatcher
    /// already there is always joined.
    #[arg(long, value_name = "LAYOUT", value_parser = |s: &str| Layout::parse(s).map_err(|e| e.to_string()))]
    layout: Option<Layout>,
    /// Count packets per component, and time and dump on request: a new
    /// chain takes our layout unless --layout libxdp asks for libxdp's,
    /// where only counting works. Default: count where the kernel lets us
    /// (in libxdp's layout, the programs we add, by fexit)
    #[arg(long, conflicts_with = "no_counters")]
    counters: bool,
    /// Leave the per-component counters (and all counting code) out
    #[arg(long)]
    no_counters: bool,
    /// Bind a new chain to its interface though no program reads RX
    /// metadata yet, so that one can join it later (a chain with one is
    /// bound anyway)
    #[arg(long)]
    device_bound: bool,
}

/// What -m/--mode was given: how a chain joins its components, or, as
/// xdp-loader means it, where XDP runs it.
#[derive(Clone, Copy)]
enum ModeArg {
    Join(Mode),
    Attach(AttachMode),
}

fn attach_mode(s: &str) -> Result<AttachMode, String> {
    match s {
        "native" | "drv" => Ok(AttachMode::Native),
        "skb" | "generic" => Ok(AttachMode::Skb),
        "hw" => Err(
            "hw (offload to the NIC) is not supported: a chain runs in native or skb mode".into(),
        ),
        _ => Err(format!("'{s}' is no attach mode (native, skb)")),
    }
}

fn mode_or_attach_mode(s: &str) -> Result<ModeArg, String> {
    match Mode::parse(s) {
        Ok(m) => Ok(ModeArg::Join(m)),
        Err(_) if ["native", "drv", "skb", "generic", "hw"].contains(&s) => {
            attach_mode(s).map(ModeArg::Attach)
        }
        Err(_) => Err(format!(
            "'{s}' is no mode (auto, static, dynamic; or native, skb as --attach-mode)"
        )),
    }
}

impl NewChain {
    /// Where XDP runs a new chain, from whichever flag said it.
    fn attach_mode(&self) -> Result<AttachMode, Error> {
        let asked = [
            self.skb.then_some(AttachMode::Skb),
            self.attach_mode,
            match self.mode {
                Some(ModeArg::Attach(m)) => Some(m),
                _ => None,
            },
        ];
        let mut given = asked.into_iter().flatten();
        let first = given.next().unwrap_or(AttachMode::Native);
        match given.all(|m| m == first) {
            true => Ok(first),
            false => Err(Error::InvalidArgument(
                "--skb, --attach-mode and -m ask for different attach modes".into(),
            )),
        }
    }

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
        if let Some(ModeArg::Join(m)) = new.and_then(|n| n.mode) {
            store = store.with_mode(m);
        }
        if let Some(l) = new.and_then(|n| n.layout) {
            store = store.with_layout(l);
        }
        let opts = OpenOptions {
            owner: self.owner.clone(),
            attach: AttachOptions {
                mode: new.map_or(Ok(AttachMode::Native), NewChain::attach_mode)?,
                force: self.force,
                device_bound: new.is_some_and(|n| n.device_bound),
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

/// `xdpchain link`: the programs linked into `out`.
fn link(
    out: &Path,
    no_counters: bool,
    programs: &[OsString],
    config: &Config,
) -> Result<(), Error> {
    let mut chain = Chain::new();
    chain.set_counting(!no_counters);
    for c in config.apply(components(programs)?)? {
        chain.add(c)?;
    }
    chain.write(out)?;
    println!(
        "linked {} components into {}",
        chain.components().len(),
        out.display()
    );
    // The file's kfunc calls are all it says of that: tell its loader.
    if let Some((_, c)) = chain.components().iter().find(|(_, c)| c.device_bound()) {
        println!(
            "{} reads RX metadata through kfuncs: load {} bound to its interface (BPF_F_XDP_DEV_BOUND_ONLY, as bpftool 7.2's xdpmeta_dev does)",
            c.label(),
            out.display()
        );
    }
    Ok(())
}

/// `xdpchain status`: the chain on `iface`, or what runs there instead;
/// without, every chain and foreign program of the namespace, or with
/// `all_namespaces` of every named namespace with a chain.
fn status(iface: Option<&str>, json: bool, all_namespaces: bool) -> Result<(), Error> {
    if all_namespaces {
        let mut each = Vec::new();
        for name in Store::new().namespaces() {
            let found =
                Netns::open(&name)?.run(|| Ok((xdpchain::list()?, xdpchain::foreign()?)))?;
            each.push((name, found.0, found.1));
        }
        print!("{}", report::namespaces(&each, json));
        return Ok(());
    }
    let (chains, foreign) = match iface {
        None => (xdpchain::list()?, xdpchain::foreign()?),
        Some(iface) => match xdpchain::status(iface) {
            Err(Error::NoChain(name)) => {
                let foreign: Vec<_> = xdpchain::foreign()?
                    .into_iter()
                    .filter(|p| p.interface.name == name)
                    .collect();
                if foreign.is_empty() {
                    return Err(Error::NoChain(name));
                }
                (Vec::new(), foreign)
            }
            other => (vec![other?], Vec::new()),
        },
    };
    print!("{}", report::status(&chains, &foreign, json));
    Ok(())
}

/// One line per program the change added, removed, replaced or dropped.
fn said(report: Report) -> Result<(), Error> {
    for c in &report.changes {
        println!("{}: {c}", report.interface);
    }
    if let Some(why) = &report.not_dynamic {
        println!("{}: the chain is static: {why}", report.interface);
    }
    Ok(())
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
        } => link(&out, no_counters, &programs, &config),
        Command::Attach {
            iface,
            programs,
            config,
            new,
            owner,
        } => {
            let components = config.apply(components(&programs)?)?;
            said(owner.open(&iface, Some(&new))?.replace_all(components)?)
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
            said(owner.open(&iface, Some(&new))?.add(c)?)
        }
        Command::Remove {
            iface,
            component,
            owner,
        } => said(owner.open(&iface, None)?.remove(component)?),
        Command::Replace {
            iface,
            component: key,
            program,
            config,
            owner,
        } => said(
            owner
                .open(&iface, None)?
                .replace(key, config.one(component(&program)?)?)?,
        ),
        Command::Status {
            iface,
            json,
            all_namespaces,
        } => status(iface.as_deref(), json, all_namespaces),
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
            dump::run(&iface, component, at, count, snaplen, &write)
        }
        Command::Metrics { listen, timing } => metrics::run(cli.netns.as_deref(), listen, timing),
        Command::Detach { iface, owner } => said(owner.open(&iface, None)?.detach_all()?),
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
    let verbose = cli.verbose;
    log_to_stderr(verbose);
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            report_error(&e, verbose > 0);
            ExitCode::from(exit_code(&e))
        }
    }
}

/// Verifier log lines shown under a refusal without -v: its end, where the
/// verifier says what it refused.
const LOG_TAIL: usize = 20;

/// One line saying what failed; below it, indented, the verifier's log of a
/// program it refused: its end, or with `all` (-v) the whole.
fn report_error(e: &Error, all: bool) {
    let text = e.to_string();
    let hint = match e {
        // Where an interface this namespace lacks runs a chain of ours.
        Error::UnknownInterface(name) => match Store::new().namespaces_with(name).as_slice() {
            [] => String::new(),
            [one] => format!(" (network namespace {one} has one: -n {one})"),
            many => format!(
                " (network namespaces {} have one: -n NETNS)",
                many.join(", ")
            ),
        },
        _ => String::new(),
    };
    eprintln!(
        "xdpchain: {}{hint}",
        text.lines().next().unwrap_or_default()
    );
    let Some(log) = e.verifier_log() else {
        return;
    };
    let lines: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
    let shown = match all {
        true => lines.len(),
        false => lines.len().min(LOG_TAIL),
    };
    match shown < lines.len() {
        true => eprintln!(
            "  the verifier's log, its last {shown} of {} lines (-v shows all):",
            lines.len()
        ),
        false => eprintln!("  the verifier's log:"),
    }
    for l in &lines[lines.len() - shown..] {
        eprintln!("  {l}");
    }
}

/// Messages through the `log` facade, on stderr from -v on.
struct StderrLog;

impl log::Log for StderrLog {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        // The verifier's log that libbpf passes on comes once, with the
        // error of the refused program.
        if record.target() == "libbpf" && record.args().to_string().contains("PROG LOAD LOG") {
            return;
        }
        let level = record.level().as_str().to_ascii_lowercase();
        for line in record.args().to_string().lines() {
            // libbpf's own prefix says again what the target says.
            let line = line.strip_prefix("libbpf: ").unwrap_or(line);
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
