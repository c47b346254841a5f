//! `xdpchain top`: rates of each component between two reads of the
//! counters, with timing held on meanwhile (xdpchain::Timing).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{IsTerminal, Write as _};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use xdpchain::{ChainStatus, Counters, Error, Timing};

/// What one component counted over one interval.
struct Row {
    id: u32,
    name: String,
    owner: Option<String>,
    delta: Counters,
    /// Its share of the chain's time.
    share: Option<f64>,
}

struct Sample {
    chain: ChainStatus,
    rows: Vec<Row>,
}

fn iface_name(st: &ChainStatus) -> String {
    st.interface.as_ref().map_or("-".into(), |i| i.name.clone())
}

fn read(iface: Option<&str>) -> Result<Vec<ChainStatus>, Error> {
    match iface {
        Some(i) => Ok(vec![xdpchain::status(i)?]),
        None => xdpchain::list(),
    }
}

/// What changed from `before` to `after`. Components are matched by
/// interface and id; a new one counts from zero.
fn deltas(before: &[ChainStatus], after: Vec<ChainStatus>) -> Vec<Sample> {
    let key = |st: &ChainStatus| st.interface.as_ref().map(|i| i.index);
    let old: HashMap<(Option<u32>, u32), Counters> = before
        .iter()
        .flat_map(|st| {
            st.components
                .iter()
                .filter_map(move |c| Some(((key(st), c.id), c.counters?)))
        })
        .collect();
    after
        .into_iter()
        .map(|chain| {
            let deltas: Vec<Option<Counters>> = chain
                .components
                .iter()
                .map(|c| {
                    let was = old.get(&(key(&chain), c.id)).copied().unwrap_or_default();
                    Some(c.counters?.since(&was))
                })
                .collect();
            let total_ns: u64 = deltas.iter().flatten().map(|d| d.run_time_ns).sum();
            let rows = chain
                .components
                .iter()
                .zip(deltas)
                .map(|(c, d)| {
                    let delta = d.unwrap_or_default();
                    Row {
                        id: c.id,
                        name: c.name.clone(),
                        owner: c.owner.as_ref().map(|o| o.name().to_string()),
                        share: (total_ns > 0).then(|| delta.run_time_ns as f64 / total_ns as f64),
                        delta,
                    }
                })
                .collect();
            Sample { chain, rows }
        })
        .collect()
}

fn to_json(samples: &[Sample], secs: f64) -> String {
    let chains: Vec<Value> = samples
        .iter()
        .map(|s| {
            let components: Vec<Value> = s
                .rows
                .iter()
                .map(|r| {
                    let verdicts: serde_json::Map<String, Value> = r
                        .delta
                        .by_name()
                        .iter()
                        .map(|&(v, n)| (v.to_string(), (n as f64 / secs).into()))
                        .collect();
                    json!({
                        "id": r.id,
                        "name": r.name,
                        "owner": r.owner,
                        "packets_per_s": r.delta.packets() as f64 / secs,
                        "verdicts_per_s": verdicts,
                        "run_time_ns": r.delta.run_time_ns,
                        "ns_per_packet": r.delta.ns_per_packet(),
                        "time_share": r.share,
                    })
                })
                .collect();
            json!({
                "interface": s.chain.interface.as_ref().map(|i| &i.name),
                "ifindex": s.chain.interface.as_ref().map(|i| i.index),
                "program_id": s.chain.program_id,
                "interval_s": secs,
                "counters_off": s.chain.counters_off(),
                "components": components,
            })
        })
        .collect();
    Value::Array(chains).to_string()
}

fn fmt_opt(v: Option<f64>, scale: f64, prec: usize) -> String {
    v.map_or("-".into(), |v| format!("{:.prec$}", v * scale))
}

fn table(samples: &[Sample], secs: f64) -> String {
    let mut out = String::new();
    if samples.is_empty() {
        out.push_str("no chains attached\n");
    }
    for s in samples {
        let _ = writeln!(
            out,
            "{}: chain prog id {}, {} components, over {secs:.1} s",
            iface_name(&s.chain),
            s.chain.program_id,
            s.rows.len()
        );
        if let Some(why) = s.chain.counters_off() {
            let _ = writeln!(out, "  counters off: {why}");
        }
        let _ = writeln!(
            out,
            "  {:>3} {:<24} {:<16} {:>10} {:>9} {:>9} {:>9} {:>9} {:>9} {:>8} {:>8} {:>6}",
            "id",
            "name",
            "owner",
            "pkts/s",
            "abort/s",
            "drop/s",
            "pass/s",
            "tx/s",
            "redir/s",
            "other/s",
            "ns/pkt",
            "time%"
        );
        for r in &s.rows {
            let v = r
                .delta
                .by_name()
                .map(|(_, n)| format!("{:.0}", n as f64 / secs));
            let _ = writeln!(
                out,
                "  {:>3} {:<24} {:<16} {:>10.0} {:>9} {:>9} {:>9} {:>9} {:>9} {:>8} {:>8} {:>6}",
                r.id,
                r.name,
                r.owner.as_deref().unwrap_or("-"),
                r.delta.packets() as f64 / secs,
                v[0],
                v[1],
                v[2],
                v[3],
                v[4],
                v[5],
                fmt_opt(r.delta.ns_per_packet(), 1.0, 1),
                fmt_opt(r.share, 100.0, 1),
            );
        }
    }
    out
}

/// Samples as lines, for a pipe: one per component, with the time.
fn lines(samples: &[Sample], secs: f64) -> String {
    let mut out = String::new();
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    for s in samples {
        let iface = iface_name(&s.chain);
        for r in &s.rows {
            let v: Vec<String> = r
                .delta
                .by_name()
                .iter()
                .map(|(name, n)| format!("{name}/s={:.0}", *n as f64 / secs))
                .collect();
            let _ = writeln!(
                out,
                "{t:.3} {iface} id={} name={} pkts/s={:.0} {} ns/pkt={} time%={}",
                r.id,
                r.name,
                r.delta.packets() as f64 / secs,
                v.join(" "),
                fmt_opt(r.delta.ns_per_packet(), 1.0, 1),
                fmt_opt(r.share, 100.0, 1)
            );
        }
    }
    out
}

pub fn run(iface: Option<&str>, interval: Duration, once: bool, json: bool) -> Result<(), Error> {
    // Rates need no timing; a chain that cannot time shows none.
    let _timing = match Timing::start(iface) {
        Ok(t) => Some(t),
        Err(e @ Error::NotCounting { .. }) => {
            log::info!("{e}");
            None
        }
        Err(e) => return Err(e),
    };
    let tty = std::io::stdout().is_terminal() && !json;
    let mut before = read(iface)?;
    let mut at = Instant::now();
    loop {
        std::thread::sleep(interval);
        let after = read(iface)?;
        let now = Instant::now();
        let secs = now.duration_since(at).as_secs_f64();
        let samples = deltas(&before, after.clone());
        let text = match (json, tty) {
            (true, _) => to_json(&samples, secs) + "\n",
            // Home and clear, as top redraws.
            (false, true) if !once => format!("\x1b[H\x1b[2J{}", table(&samples, secs)),
            (false, true) => table(&samples, secs),
            (false, false) => lines(&samples, secs),
        };
        let mut out = std::io::stdout().lock();
        // A closed pipe ends it, as for head.
        if out
            .write_all(text.as_bytes())
            .and_then(|_| out.flush())
            .is_err()
            || once
        {
            return Ok(());
        }
        (before, at) = (after, now);
    }
}
