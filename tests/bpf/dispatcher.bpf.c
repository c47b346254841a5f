// SPDX-License-Identifier: GPL-2.0
/* Named as libxdp names its multiprog dispatcher; stands in for one on kernels
 * where xdp-loader cannot build a real one (no freplace). */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int xdp_dispatcher(struct xdp_md *ctx)
{
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
