//! What `xdpchain status` prints: a table per chain, or one JSON array.

use std::fmt::Write;

use serde_json::{json, Value};
use xdpchain::{ChainStatus, Verdict};

/// The report of `chains`: one table each (or a line saying there is
/// none), or with `json` one JSON array, ending in a newline.
pub fn status(chains: &[ChainStatus], json: bool) -> String {
    let mut out = String::new();
    if json {
        out.push_str(&to_json(chains));
        out.push('\n');
    } else if chains.is_empty() {
        out.push_str("no chains attached\n");
    } else {
        for st in chains {
            table(&mut out, st);
        }
    }
    out
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
    writeln!(
        out,
        "  {:>3} {:>4} {:<24} {:<24} {:>8} {:<22} {:>10} {:>8} {:>8} {:>8} {:>8} {:>8} {:>6}",
        "id",
        "slot",
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
            "  {:>3} {:>4} {:<24} {:<24} {:>8} {:<22} {:>10} {:>8} {:>8} {:>8} {:>8} {:>8} {:>6}",
            c.id,
            c.slot,
            c.name,
            c.owner.as_ref().map_or("-".to_string(), |o| o.to_string()),
            c.priority,
            c.continue_on.to_string(),
            counts[0],
            counts[1],
            counts[2],
            counts[3],
            counts[4],
            counts[5],
            counts[6]
        )
        .expect("writing to a String");
    }
}

/// One JSON array of `chains`, in the fields and names that scripts read.
fn to_json(chains: &[ChainStatus]) -> String {
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
                        "priority": c.priority,
                        "continue_on": c.continue_on.iter().map(Verdict::name).collect::<Vec<_>>(),
                        "inlined": c.inlined,
                        "counters": counters,
                        "program_id": c.program_id,
                    })
                })
                .collect();
            json!({
                "interface": st.interface.as_ref().map(|i| &i.name),
                "ifindex": st.interface.as_ref().map(|i| i.index),
                "mode": st.mode.map(|m| m.name()),
                "kind": st.kind.name(),
                "layout": st.layout(),
                "counters_off": st.counters_off(),
                "program_id": st.program_id,
                "components": components,
            })
        })
        .collect();
    Value::Array(chains).to_string()
}
