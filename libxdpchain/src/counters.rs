//! The chain's counters: a per-CPU array with one row per component id,
//! each row the packets the component returned each verdict on, and the
//! time it took while some reader asked for timing.

use std::os::fd::BorrowedFd;

use crate::error::{Error, Result};
use crate::root;
use crate::status::Counters;
use crate::sys::{map_lookup, map_update, possible_cpus};

/// A zeroed buffer for one row of the per-CPU stats map.
fn stats_row() -> Result<Vec<u64>> {
    Ok(vec![0u64; root::STATS_WORDS * possible_cpus()?])
}

/// Sums the per-CPU counters of one stats row.
pub(crate) fn read(stats: BorrowedFd<'_>, row: u32) -> Result<Counters> {
    let mut values = stats_row()?;
    map_lookup(stats, row, &mut values).map_err(|e| Error::os("read counters", e))?;
    let mut c = Counters::default();
    for cpu in values.chunks(root::STATS_WORDS) {
        for (i, v) in c.verdicts.iter_mut().enumerate() {
            *v += cpu[i];
        }
        c.other += cpu[root::STATS_OTHER];
        c.run_time_ns += cpu[root::STATS_RUN_NS];
        c.run_cnt += cpu[root::STATS_RUN_CNT];
    }
    Ok(c)
}

/// Zeroes one stats row on every CPU.
pub(crate) fn clear(stats: BorrowedFd<'_>, row: u32) -> Result<()> {
    let values = stats_row()?;
    map_update(stats, row, &values).map_err(|e| Error::os("clear counters", e))?;
    Ok(())
}
