// SPDX-License-Identifier: (LGPL-2.1-only OR BSD-2-Clause)
/*
 * A component's row of counters, as the roots of our layout and the fexit
 * counters of libxdp's layout (count_exit.bpf.c) keep it.
 *
 * Keep in step with STATS_* in src/root.rs.
 */
#ifndef XDPCHAIN_STATS_H
#define XDPCHAIN_STATS_H

#include <linux/bpf.h>

/* count[v] for verdicts v <= XDP_REDIRECT, count[5] for any other value;
 * eight words so that a masked index is provably in bounds. The last two
 * sum the time spent from the previous slot's end to this one's (ns) and
 * the packets so timed. */
#define XDPCHAIN_OTHER 5
#define XDPCHAIN_RUN_NS 6
#define XDPCHAIN_RUN_CNT 7
struct xdpchain_stats {
	__u64 count[8];
};

#endif
