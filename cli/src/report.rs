//! What `xdpchain status` prints: a table per chain and a line per
//! program of another loader, or one JSON array.

use std::fmt::Write;

use serde_json::{json, Value};
use xdpchain::{ChainStatus, ForeignProgram, Owner, Verdict};

/// The report of `chains` and of the `foreign` programs beside them: one
/// table each (or a line saying there is none), or with `json` one JSON
/// array, ending in a newline.
pub fn status(chains: &[ChainStatus], foreign: &[ForeignProgram], json: bool) -> String {
    let mut out = String::new();
    if json {
        out.push_str(&to_json(chains, foreign));
        out.push('\n');
    } else if chains.is_empty() && foreign.is_empty() {
        out.push_str("no chains attached\n");
    } else {
        for st in chains {
            table(&mut out, st);
        }
        for p in foreign {
            writeln!(
                out,
                "{} (ifindex {}): program {} (prog id {}) of another loader, {} mode; no chain",
                p.interface.name,
                p.interface.index,
                p.name,
                p.program_id,
                p.mode.name()
            )
            .expect("writing to a String");
        }
    }
    out
}

/// An owner as the table shows it: name[pid], marked once its process has
/// exited.
fn owner(o: &Owner) -> String {
    match o.is_running() {
        true => o.to_string(),
        false => format!("{o} exited"),
    }
}

fn table(out: &mut String, st: &ChainStatus) {
    let iface = st.interface.as_ref().map_or("-".to_string(), |i| {
        format!("{} (ifindex {})", i.name, i.index)
    });
    let mode = st.mode.map_or("-", |m| m.name());
    writeln!(
        out,
        "{iface}: chain prog id {}, {mode} mode, {}, {} layout, {} components",
        st.program_id,
        st.kind.name(),
        st.layout(),
        st.components.len()
    )
    .expect("writing to a String");
    if let Some(why) = st.counters_off() {
        writeln!(out, "  counters off: {why}").expect("writing to a String");
    }
    if let Some(why) = &st.not_dynamic {
        writeln!(out, "  static, not dynamic: {why}").expect("writing to a String");
    }
    if st.device_bound {
        writeln!(out, "  device-bound: a component reads RX metadata")
            .expect("writing to a String");
    }
    writeln!(
        out,
        "  {:>3} {:>4} {:>8} {:<24} {:<24} {:>8} {:<22} {:>10} {:>8} {:>8} {:>8} {:>8} {:>8} {:>6}  function",
        "id",
        "slot",
        "prog id",
        "name",
        "owner",
        "priority",
        "continue on",
        "packets",
        "aborted",
        "drop",
        "pass",
        "tx",
        "redirect",
        "other"
    )
    .expect("writing to a String");
    for c in &st.components {
        let counts: Vec<String> = match &c.counters {
            Some(k) => std::iter::once(k.packets())
                .chain(Verdict::ALL.iter().map(|v| k.verdict(*v)))
                .chain(std::iter::once(k.other))
                .map(|n| n.to_string())
                .collect(),
            None => vec!["-".to_string(); 7],
        };
        writeln!(
            out,
            "  {:>3} {:>4} {:>8} {:<24} {:<24} {:>8} {:<22} {:>10} {:>8} {:>8} {:>8} {:>8} {:>8} {:>6}  {}",
            c.id,
            c.slot,
            c.program_id.map_or("-".to_string(), |p| p.to_string()),
            c.name,
            c.owner.as_ref().map_or("-".to_string(), owner),
            c.priority,
            c.continue_on.to_string(),
            counts[0],
            counts[1],
            counts[2],
            counts[3],
            counts[4],
            counts[5],
            counts[6],
            c.function.as_deref().unwrap_or("-")
        )
        .expect("writing to a String");
    }
}

/// One JSON array of `chains`, then `foreign` programs (layout "foreign",
/// no components), in the fields and names that scripts read.
fn to_json(chains: &[ChainStatus], foreign: &[ForeignProgram]) -> String {
    Value::Array(values(chains, foreign)).to_string()
}

/// The JSON objects of `chains`, then of `foreign` programs.
fn values(chains: &[ChainStatus], foreign: &[ForeignProgram]) -> Vec<Value> {
    let foreign = foreign.iter().map(|p| {
        json!({
            "interface": p.interface.name,
            "ifindex": p.interface.index,
            "attach_mode": p.mode.name(),
            "layout": "foreign",
            "name": p.name,
            "program_id": p.program_id,
            "components": [],
        })
    });
    let chains: Vec<Value> = chains
        .iter()
        .map(|st| {
            let components: Vec<Value> = st
                .components
                .iter()
                .map(|c| {
                    let counters = c.counters.map(|k| {
                        let mut m = serde_json::Map::new();
                        m.insert("packets".into(), k.packets().into());
                        for (v, n) in k.by_name() {
                            m.insert(v.into(), n.into());
                        }
                        m.insert("run_time_ns".into(), k.run_time_ns.into());
                        m.insert("run_cnt".into(), k.run_cnt.into());
                        Value::Object(m)
                    });
                    json!({
                        "id": c.id,
                        "slot": c.slot,
                        "name": c.name,
                        "owner": c.owner.as_ref().map(|o| o.name()),
                        "owner_pid": c.owner.as_ref().map(|o| o.pid()),
                        "owner_running": c.owner.as_ref().map(|o| o.is_running()),
                        "priority": c.priority,
                        "continue_on": c.continue_on.iter().map(Verdict::name).collect::<Vec<_>>(),
                        "inlined": c.inlined,
                        "function": c.function,
                        "counters": counters,
                        "program_id": c.program_id,
                    })
                })
                .collect();
            json!({
                "interface": st.interface.as_ref().map(|i| &i.name),
                "ifindex": st.interface.as_ref().map(|i| i.index),
                "attach_mode": st.mode.map(|m| m.name()),
                "mode": st.kind.name(),
                "layout": st.layout(),
                "counters_off": st.counters_off(),
                "not_dynamic": st.not_dynamic,
                "device_bound": st.device_bound,
                "program_id": st.program_id,
                "components": components,
            })
        })
        .chain(foreign)
        .collect();
    chains
}

/// The report of each named network namespace's chains and foreign
/// programs (`status --all-namespaces`): a table per namespace under its
/// name, or one JSON array whose objects carry `netns`.
pub fn namespaces(each: &[(String, Vec<ChainStatus>, Vec<ForeignProgram>)], json: bool) -> String {
    if !json {
        return each
            .iter()
            .map(|(ns, chains, foreign)| {
                format!(
                    "network namespace {ns}:\n{}",
                    status(chains, foreign, false)
                )
            })
            .collect();
    }
    let all: Vec<Value> = each
        .iter()
        .flat_map(|(ns, chains, foreign)| {
            values(chains, foreign).into_iter().map(move |mut v| {
                v["netns"] = ns.as_str().into();
                v
            })
        })
        .collect();
    format!("{}\n", Value::Array(all))
}
