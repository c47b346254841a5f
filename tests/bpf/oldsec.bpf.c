// SPDX-License-Identifier: GPL-2.0
/*
 * Programs in section names that libbpf 1.x no longer knows, as
 * xdp-tutorial and other older sources still ship them: libxdp, bpftool
 * ("type xdp") and iproute2 load them as XDP. With -DTWO, two of them;
 * with -DVERSION=N, the kernel version section such sources still carry.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

__u64 runs;

SEC("xdp_patch_ports")
int xdp_patch_ports_prog(struct xdp_md *ctx)
{
	runs++;
	return XDP_TX;
}

#ifdef TWO
SEC("prog")
int xdp_prog_simple(struct xdp_md *ctx)
{
	return XDP_DROP;
}
#endif

#ifdef VERSION
__u32 _version SEC("version") = VERSION;
#endif

char _license[] SEC("license") = "GPL";
