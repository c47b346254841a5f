// SPDX-License-Identifier: GPL-2.0
/* Counts packets and bytes, and lets everything through. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

__u64 packets;
__u64 bytes;

struct {
	__uint(priority, 10);
	__uint(XDP_PASS, 1);
} _xdp_pktcount SEC(".xdp_run_config");

SEC("xdp")
int xdp_pktcount(struct xdp_md *ctx)
{
	__sync_fetch_and_add(&packets, 1);
	__sync_fetch_and_add(&bytes, ctx->data_end - ctx->data);
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
