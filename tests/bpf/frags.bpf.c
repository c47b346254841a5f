// SPDX-License-Identifier: GPL-2.0
/* A multi-buffer aware program (SEC("xdp.frags")): counts the packets it
 * sees, also those larger than a page. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

__u64 packets;

SEC("xdp.frags")
int xdp_frags(struct xdp_md *ctx)
{
	packets++;
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
