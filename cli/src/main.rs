//! The `xdpchain` command: link, attach, inspect and detach chains of XDP
//! programs. A thin layer over the library; on failure it prints one line on
//! stderr and exits non-zero.

use std::process::ExitCode;

use xdpchain::{
    AttachMode, AttachOptions, Chain, Component, Layout, Mode, Netns, OpenOptions, SharedChain,
    Store, Verdicts,
};

const USAGE: &str = "usage: xdpchain [-n NETNS] COMMAND ...
  xdpchain link -o OUT.o FILE[:PROG]... [--no-counters]
  xdpchain attach IFACE FILE[:PROG]... [--skb] [--force] [--no-counters] [--mode auto|static|dynamic] [--layout L] [--owner NAME]
  xdpchain add IFACE FILE[:PROG] [--priority N] [--continue-on pass,drop,...] [--skb] [--force] [--mode M] [--layout L] [--owner NAME]
  xdpchain remove IFACE COMPONENT [--force] [--owner NAME]
  xdpchain replace IFACE COMPONENT FILE[:PROG] [--force] [--owner NAME]
  xdpchain status [IFACE] [--json]
  xdpchain detach IFACE [--force] [--owner NAME]
  xdpchain clean
-n NETNS runs in the network namespace NETNS (a name in /run/netns, or a path), as ip -n does.
Components record their owner (--owner, default xdpchain) and process id; changing or removing
the components of other owners, or attaching over them, needs --force.
Chains are recorded under $XDPCHAIN_PIN_DIR (default /sys/fs/bpf/xdpchain).
--mode chooses how a new chain joins its components (default: $XDPCHAIN_MODE, else auto:
dynamic where the kernel has freplace, static otherwise).
--layout chooses whose layout a new chain takes: auto (libxdp's for a dynamic chain of at most
ten components without counters, ours otherwise), xdpchain, libxdp or libxdp:VERSION (2 or 3;
default: the installed libxdp's, else 3). A libxdp dispatcher already there is always joined.";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("xdpchain: {}", msg.replace('\n', " "));
            ExitCode::FAILURE
        }
    }
}

/// Options and positional arguments, in order.
struct Args<'a> {
    flags: Vec<&'a str>,
    /// Options that take a value: (option, value).
    values: Vec<(&'a str, &'a str)>,
    positional: Vec<&'a str>,
}

impl<'a> Args<'a> {
    fn value(&self, opt: &str) -> Option<&'a str> {
        self.values.iter().find(|(o, _)| *o == opt).map(|(_, v)| *v)
    }

    /// The store, with the chain mode and layout asked for.
    fn store(&self) -> Result<Store, String> {
        let mut store = Store::new();
        if let Some(m) = self.value("--mode") {
            store = store.with_mode(Mode::parse(m).map_err(|e| e.to_string())?);
        }
        if let Some(l) = self.value("--layout") {
            store = store.with_layout(Layout::parse(l).map_err(|e| e.to_string())?);
        }
        Ok(store)
    }

    fn attach_options(&self) -> AttachOptions {
        AttachOptions {
            mode: if self.flags.contains(&"--skb") {
                AttachMode::Skb
            } else {
                AttachMode::Native
            },
            force: self.flags.contains(&"--force"),
        }
    }

    /// The chain of `iface`, opened as the owner asked for.
    fn open(&self, iface: &str) -> Result<SharedChain, String> {
        let opts = OpenOptions {
            owner: self.value("--owner").map(str::to_string),
            attach: self.attach_options(),
            counting: !self.flags.contains(&"--no-counters"),
            netns: None,
        };
        self.store()?.open(iface, opts).map_err(|e| e.to_string())
    }
}

/// Options that take a value.
const VALUED: [&str; 6] = [
    "-o",
    "--priority",
    "--continue-on",
    "--mode",
    "--layout",
    "--owner",
];

fn parse<'a>(args: &'a [String], known: &[&str]) -> Result<Args<'a>, String> {
    let mut out = Args {
        flags: Vec::new(),
        values: Vec::new(),
        positional: Vec::new(),
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            o if VALUED.contains(&o) && known.contains(&o) => {
                let v = it.next().ok_or(format!("{o} needs a value"))?;
                out.values.push((o, v));
            }
            f if f.starts_with("--") || (f.starts_with('-') && f.len() > 1) => {
                if !known.contains(&f) {
                    return Err(format!("unknown option {f}\n{USAGE}"));
                }
                out.flags.push(f);
            }
            p => out.positional.push(p),
        }
    }
    Ok(out)
}

/// FILE or FILE:PROG (a path that exists as given is taken whole).
fn component(spec: &str) -> Result<Component, String> {
    let (file, prog) = match spec.rsplit_once(':') {
        Some((f, p)) if !std::path::Path::new(spec).exists() && !p.is_empty() => (f, Some(p)),
        _ => (spec, None),
    };
    Component::from_file(file, prog).map_err(|e| e.to_string())
}

fn components(specs: &[&str]) -> Result<Vec<Component>, String> {
    if specs.is_empty() {
        return Err(format!("no programs given\n{USAGE}"));
    }
    specs.iter().map(|s| component(s)).collect()
}

fn run(mut args: &[String]) -> Result<(), String> {
    if let [flag, ns, rest @ ..] = args {
        if flag == "-n" || flag == "--netns" {
            Netns::open(ns)
                .and_then(|n| n.enter_for_good())
                .map_err(|e| e.to_string())?;
            args = rest;
        }
    }
    let Some((cmd, rest)) = args.split_first() else {
        return Err(USAGE.into());
    };
    match cmd.as_str() {
        "link" => {
            let a = parse(rest, &["-o", "--no-counters"])?;
            let out = a
                .value("-o")
                .ok_or(format!("link needs -o OUT.o\n{USAGE}"))?;
            let mut chain = Chain::new();
            chain.set_counting(!a.flags.contains(&"--no-counters"));
            for c in components(&a.positional)? {
                chain.add(c).map_err(|e| e.to_string())?;
            }
            chain.write(out).map_err(|e| e.to_string())
        }
        "attach" => {
            let a = parse(
                rest,
                &[
                    "--skb",
                    "--force",
                    "--no-counters",
                    "--mode",
                    "--layout",
                    "--owner",
                ],
            )?;
            let (iface, specs) = a
                .positional
                .split_first()
                .ok_or(format!("attach needs IFACE\n{USAGE}"))?;
            let components = components(specs)?;
            a.open(iface)?
                .replace_all(components)
                .map_err(|e| e.to_string())?;
            let st = xdpchain::status(iface).map_err(|e| e.to_string())?;
            print!("{}", xdpchain::status_report(&[st], false));
            Ok(())
        }
        "add" => {
            let a = parse(
                rest,
                &[
                    "--priority",
                    "--continue-on",
                    "--skb",
                    "--force",
                    "--mode",
                    "--layout",
                    "--owner",
                ],
            )?;
            let [iface, spec] = a.positional.as_slice() else {
                return Err(format!("add needs IFACE and one FILE[:PROG]\n{USAGE}"));
            };
            let mut c = component(spec)?;
            if let Some(p) = a.value("--priority") {
                c = c.with_priority(p.parse().map_err(|_| format!("bad priority '{p}'"))?);
            }
            if let Some(v) = a.value("--continue-on") {
                c = c.with_continue_on(Verdicts::parse(v).map_err(|e| e.to_string())?);
            }
            let id = a.open(iface)?.add(c).map_err(|e| e.to_string())?;
            println!("added component {}", id.0);
            Ok(())
        }
        "remove" => {
            let a = parse(rest, &["--force", "--owner"])?;
            let [iface, key] = a.positional.as_slice() else {
                return Err(format!("remove needs IFACE and COMPONENT\n{USAGE}"));
            };
            a.open(iface)?.remove(key).map_err(|e| e.to_string())
        }
        "replace" => {
            let a = parse(rest, &["--force", "--owner"])?;
            let [iface, key, spec] = a.positional.as_slice() else {
                return Err(format!(
                    "replace needs IFACE, COMPONENT and FILE[:PROG]\n{USAGE}"
                ));
            };
            a.open(iface)?
                .replace(key, component(spec)?)
                .map_err(|e| e.to_string())
        }
        "clean" => {
            parse(rest, &[])?;
            for dir in Store::new().clean().map_err(|e| e.to_string())? {
                println!("removed stale {}", dir.display());
            }
            Ok(())
        }
        "status" => {
            let a = parse(rest, &["--json"])?;
            let chains = match a.positional.as_slice() {
                [] => xdpchain::list(),
                [iface] => xdpchain::status(iface).map(|s| vec![s]),
                _ => return Err(USAGE.into()),
            }
            .map_err(|e| e.to_string())?;
            print!(
                "{}",
                xdpchain::status_report(&chains, a.flags.contains(&"--json"))
            );
            Ok(())
        }
        "detach" => {
            let a = parse(rest, &["--force", "--owner"])?;
            let [iface] = a.positional.as_slice() else {
                return Err(USAGE.into());
            };
            a.open(iface)?.detach_all().map_err(|e| e.to_string())
        }
        "-h" | "--help" | "help" => {
            println!("{USAGE}");
            Ok(())
        }
        other => Err(format!("unknown command '{other}'\n{USAGE}")),
    }
}
