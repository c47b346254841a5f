// SPDX-License-Identifier: GPL-2.0
/* Returns the verdict its loader writes into `verdict`; counts its runs. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

__u32 verdict = XDP_PASS;
__u64 runs;

SEC("xdp")
int xdp_verdict(struct xdp_md *ctx)
{
	runs++;
	return verdict;
}

char _license[] SEC("license") = "GPL";
