//! The status report that `xdpchain status` prints, as a table or as JSON,
//! shared by every front end (the command, the Python module).

use std::fmt::Write;

use crate::component::Verdict;
use crate::status::ChainStatus;

/// The report of `chains`: one table each (or a line saying there is
/// none), or with `json` one JSON array, ending in a newline.
pub fn status_report(chains: &[ChainStatus], json: bool) -> String {
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

fn to_json(chains: &[ChainStatus]) -> String {
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
                    let (owner, pid) = c.owner.as_ref().map_or(("null".into(), "null".into()), |o| {
                        (json_str(o.name()), o.pid().to_string())
                    });
                    format!(
                        "{{\"id\":{},\"slot\":{},\"name\":{},\"owner\":{},\"owner_pid\":{},\"priority\":{},\"continue_on\":[{}],\"counters\":{}}}",
                        c.id,
                        c.slot,
                        json_str(&c.name),
                        owner,
                        pid,
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
