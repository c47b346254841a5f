// SPDX-License-Identifier: (LGPL-2.1-only OR BSD-2-Clause)
/*
 * Counts the verdicts of one extension program in a libxdp dispatcher,
 * which has no room for counters of its own (libxdp accepts a dispatcher
 * only if its one map is its config). Loaded as fexit of the extension's
 * function, it adds each verdict to its own per-CPU row, a map of one entry
 * (found without hashing, unlike a row in a hash shared by all). The
 * extension and the dispatcher stay unchanged; the counting follows the
 * extension into every dispatcher it is attached to, ours or one that
 * xdp-loader rebuilt.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "stats.h"

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct xdpchain_stats);
} xdpchain_xcount SEC(".maps");

/* args[0] is the context the extension got, args[1] what it returned. */
SEC("fexit")
int xdpchain_count(__u64 *args)
{
	__u32 key = 0;
	__u32 verdict = args[1];
	__u32 idx = verdict <= XDP_REDIRECT ? verdict : XDPCHAIN_OTHER;
	struct xdpchain_stats *s = bpf_map_lookup_elem(&xdpchain_xcount, &key);

	if (!s)
		return 0;
	/* Hide idx's range from clang so it keeps the mask the verifier needs. */
	asm volatile("" : "+r"(idx));
	s->count[idx & 7]++;
	return 0;
}

char _license[] SEC("license") = "GPL";
