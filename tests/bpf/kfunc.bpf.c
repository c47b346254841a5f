// SPDX-License-Identifier: GPL-2.0
/*
 * kfuncs (Linux 6.5+): reads the EtherType through an XDP dynptr, counts
 * the packets of each kind, and drops ARP.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

extern int bpf_dynptr_from_xdp(struct xdp_md *x, __u64 flags,
			       struct bpf_dynptr *ptr__uninit) __ksym;
extern void *bpf_dynptr_slice(const struct bpf_dynptr *p, __u32 offset,
			      void *buffer__opt, __u32 buffer__szk) __ksym;

__u64 kinds[3];                      /* IPv4, ARP, anything else */

SEC("xdp")
int xdp_kfunc(struct xdp_md *ctx)
{
	struct bpf_dynptr ptr;
	__u16 buf, *proto;

	if (bpf_dynptr_from_xdp(ctx, 0, &ptr))
		return XDP_ABORTED;
	proto = bpf_dynptr_slice(&ptr, 12, &buf, sizeof(buf));
	if (!proto)
		return XDP_PASS;
	switch (*proto) {
	case __builtin_bswap16(0x0800):
		kinds[0]++;
		return XDP_PASS;
	case __builtin_bswap16(0x0806):
		kinds[1]++;
		return XDP_DROP;
	}
	kinds[2]++;
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
