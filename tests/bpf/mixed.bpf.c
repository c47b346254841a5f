// SPDX-License-Identifier: GPL-2.0
/*
 * An object in the shape of bpf-examples' pping: a tc program and an XDP
 * program, each with a global function that takes its own context type.
 * Checked as XDP code, tc_payload's unchecked read of its argument is
 * refused ("invalid mem access 'mem_or_null'"). xdp_mixed passes packets
 * of at least ETH_ZLEN bytes (60) and drops shorter ones, counting each.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

__u64 xdp_runs, tc_runs;

__noinline int tc_payload(struct __sk_buff *skb)
{
	return skb->len;
}

__noinline int xdp_length(struct xdp_md *ctx)
{
	return ctx->data_end - ctx->data;
}

SEC("tc")
int tc_mixed(struct __sk_buff *skb)
{
	tc_runs++;
	return tc_payload(skb) > 0 ? TC_ACT_OK : TC_ACT_SHOT;
}

SEC("xdp")
int xdp_mixed(struct xdp_md *ctx)
{
	xdp_runs++;
	return xdp_length(ctx) >= 60 ? XDP_PASS : XDP_DROP;
}

char _license[] SEC("license") = "GPL";
