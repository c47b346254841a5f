// SPDX-License-Identifier: GPL-2.0
/*
 * CO-RE: reads fields through locally declared kernel types whose offsets
 * libbpf relocates against the kernel's BTF. Drops IPv6 (by EtherType, read
 * through struct ethhdr) and passes the rest.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

struct ethhdr {
	unsigned char h_dest[6];
	unsigned char h_source[6];
	unsigned short h_proto;
} __attribute__((preserve_access_index));

struct xdp_md___local {
	__u32 data;
	__u32 data_end;
} __attribute__((preserve_access_index));

SEC("xdp")
int xdp_core(struct xdp_md *ctx)
{
	struct xdp_md___local *c = (void *)ctx;
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	__u32 off = bpf_core_field_offset(struct ethhdr, h_proto);

	if (!bpf_core_field_exists(c->data_end) || data + off + 2 > data_end)
		return XDP_PASS;
	return *(unsigned short *)(data + off) == __builtin_bswap16(0x86DD) ? XDP_DROP : XDP_PASS;
	(void)eth;
}

char _license[] SEC("license") = "GPL";
