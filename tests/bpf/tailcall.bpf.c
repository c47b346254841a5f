// SPDX-License-Identifier: GPL-2.0
/*
 * A component whose result comes from a tail call: xdp_jumper tail-calls
 * xdp_drop_target, which drops. Chained to go on after XDP_DROP only, the
 * chain must go on to the next component; a verifier that takes the
 * jumper to return its fall-through XDP_PASS would end it there.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

int xdp_drop_target(struct xdp_md *ctx);

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 1);
	__uint(key_size, sizeof(__u32));
	__array(values, int (void *));
} jump SEC(".maps") = {
	.values = { [0] = (void *)&xdp_drop_target },
};

__u64 jumps;

SEC("xdp")
int xdp_drop_target(struct xdp_md *ctx)
{
	return XDP_DROP;
}

SEC("xdp")
int xdp_jumper(struct xdp_md *ctx)
{
	jumps++;
	bpf_tail_call(ctx, &jump, 0);
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
