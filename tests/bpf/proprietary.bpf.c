// SPDX-License-Identifier: BSD-2-Clause
/* A component under a non-GPL license. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int xdp_prop(struct xdp_md *ctx)
{
	return XDP_PASS;
}

char _license[] SEC("license") = "Proprietary";
