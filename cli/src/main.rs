//! The `xdpchain` command: link, attach, inspect and detach chains of XDP
//! programs. A thin layer over the library; on failure it prints one line on
//! stderr and exits non-zero.

use std::process::ExitCode;

use xdpchain::{
    AttachMode, AttachOptions, Chain, ChainStatus, Component, Layout, Mode, Store, Verdict,
    Verdicts,
};

const USAGE: &str = "usage:
  xdpchain link -o OUT.o FILE[:PROG]... [--no-counters]
  xdpchain attach IFACE FILE[:PROG]... [--skb] [--force] [--no-counters] [--mode auto|static|dynamic] [--layout L]
  xdpchain add IFACE FILE[:PROG] [--priority N] [--continue-on pass,drop,...] [--skb] [--force] [--mode M] [--layout L]
  xdpchain remove IFACE COMPONENT
  xdpchain replace IFACE COMPONENT FILE[:PROG]
  xdpchain status [IFACE] [--json]
  xdpchain detach IFACE [--force]
  xdpchain clean
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
}

/// Options that take a value.
const VALUED: [&str; 5] = ["-o", "--priority", "--continue-on", "--mode", "--layout"];

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

fn run(args: &[String]) -> Result<(), String> {
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
                &["--skb", "--force", "--no-counters", "--mode", "--layout"],
            )?;
            let (iface, specs) = a
                .positional
                .split_first()
                .ok_or(format!("attach needs IFACE\n{USAGE}"))?;
            let components = components(specs)?;
            let counting = !a.flags.contains(&"--no-counters");
            a.store()?
                .attach(iface, components, a.attach_options(), counting)
                .map_err(|e| e.to_string())?;
            print_status(&xdpchain::status(iface).map_err(|e| e.to_string())?);
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
            let id = a
                .store()?
                .add(iface, c, a.attach_options())
                .map_err(|e| e.to_string())?;
            println!("added component {}", id.0);
            Ok(())
        }
        "remove" => {
            let a = parse(rest, &[])?;
            let [iface, key] = a.positional.as_slice() else {
                return Err(format!("remove needs IFACE and COMPONENT\n{USAGE}"));
            };
            Store::new().remove(iface, key).map_err(|e| e.to_string())
        }
        "replace" => {
            let a = parse(rest, &[])?;
            let [iface, key, spec] = a.positional.as_slice() else {
                return Err(format!(
                    "replace needs IFACE, COMPONENT and FILE[:PROG]\n{USAGE}"
                ));
            };
            Store::new()
                .replace_slot(iface, key, component(spec)?)
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
            if a.flags.contains(&"--json") {
                println!("{}", json(&chains));
            } else if chains.is_empty() {
                println!("no chains attached");
            } else {
                chains.iter().for_each(print_status);
            }
            Ok(())
        }
        "detach" => {
            let a = parse(rest, &["--force"])?;
            let [iface] = a.positional.as_slice() else {
                return Err(USAGE.into());
            };
            Store::new()
                .detach(iface, a.flags.contains(&"--force"))
                .map_err(|e| e.to_string())
        }
        "-h" | "--help" | "help" => {
            println!("{USAGE}");
            Ok(())
        }
        other => Err(format!("unknown command '{other}'\n{USAGE}")),
    }
}

fn print_status(st: &ChainStatus) {
    let iface = st.interface.as_ref().map_or("-".to_string(), |i| {
        format!("{} (ifindex {})", i.name, i.index)
    });
    let mode = st.mode.map_or("-", |m| m.name());
    println!(
        "{iface}: chain prog id {}, {mode} mode, {}, {} layout, {} components",
        st.program_id,
        st.kind.name(),
        st.layout(),
        st.components.len()
    );
    println!(
        "  {:>3} {:>4} {:<24} {:>8} {:<22} {:>10} {:>8} {:>8} {:>8} {:>8} {:>8} {:>6}",
        "id",
        "slot",
        "name",
        "priority",
        "continue on",
        "packets",
        "aborted",
        "drop",
        "pass",
        "tx",
        "redirect",
        "other"
    );
    for c in &st.components {
        let counts: Vec<String> = match &c.counters {
            Some(k) => std::iter::once(k.packets())
                .chain(Verdict::ALL.iter().map(|v| k.verdict(*v)))
                .chain(std::iter::once(k.other))
                .map(|n| n.to_string())
                .collect(),
            None => vec!["-".to_string(); 7],
        };
        println!(
            "  {:>3} {:>4} {:<24} {:>8} {:<22} {:>10} {:>8} {:>8} {:>8} {:>8} {:>8} {:>6}",
            c.id,
            c.slot,
            c.name,
            c.priority,
            c.continue_on.to_string(),
            counts[0],
            counts[1],
            counts[2],
            counts[3],
            counts[4],
            counts[5],
            counts[6]
        );
    }
}

fn json_str(s: &str) -> String {
    let mut out = String::from("\"");
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn json(chains: &[ChainStatus]) -> String {
    let items: Vec<String> = chains
        .iter()
        .map(|st| {
            let comps: Vec<String> = st
                .components
                .iter()
                .map(|c| {
                    let cont: Vec<String> = c.continue_on.iter().map(|v| json_str(v.name())).collect();
                    let counters = match &c.counters {
                        Some(k) => {
                            let per: Vec<String> =
                                Verdict::ALL.iter().map(|v| format!("{}:{}", json_str(v.name()), k.verdict(*v))).collect();
                            format!("{{\"packets\":{},{},\"other\":{}}}", k.packets(), per.join(","), k.other)
                        }
                        None => "null".into(),
                    };
                    format!(
                        "{{\"id\":{},\"slot\":{},\"name\":{},\"priority\":{},\"continue_on\":[{}],\"counters\":{}}}",
                        c.id,
                        c.slot,
                        json_str(&c.name),
                        c.priority,
                        cont.join(","),
                        counters
                    )
                })
                .collect();
            format!(
                "{{\"interface\":{},\"ifindex\":{},\"mode\":{},\"kind\":\"{}\",\"layout\":{},\"program_id\":{},\"components\":[{}]}}",
                st.interface.as_ref().map_or("null".into(), |i| json_str(&i.name)),
                st.interface.as_ref().map_or("null".into(), |i| i.index.to_string()),
                st.mode.map_or("null".into(), |m| json_str(m.name())),
                st.kind.name(),
                json_str(&st.layout()),
                st.program_id,
                comps.join(",")
            )
        })
        .collect();
    format!("[{}]", items.join(","))
}
