// SPDX-License-Identifier: (LGPL-2.1-only OR BSD-2-Clause)
/*
 * Probes whether the verifier keeps a chain going after a component linked
 * as a static subprogram makes a tail call: chained so, as [probe_caller,
 * probe_marker], the chain must return XDP_TX. Before Linux commit
 * e3245f899043 (6.1 and 6.12 lack it) the verifier takes probe_caller to
 * return its fall-through XDP_ABORTED, and drops the rest of the chain.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

int probe_target(struct xdp_md *ctx);

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 1);
	__uint(key_size, sizeof(__u32));
	__array(values, int(void *));
} probe_jump SEC(".maps") = {
	.values = { [0] = (void *)&probe_target },
};

SEC("xdp")
int probe_target(struct xdp_md *ctx)
{
	return XDP_PASS;
}

SEC("xdp")
int probe_caller(struct xdp_md *ctx)
{
	bpf_tail_call(ctx, &probe_jump, 0);
	return XDP_ABORTED;
}

SEC("xdp")
int probe_marker(struct xdp_md *ctx)
{
	return XDP_TX;
}

char _license[] SEC("license") = "GPL";
