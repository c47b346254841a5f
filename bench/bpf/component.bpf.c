// SPDX-License-Identifier: GPL-2.0
/*
 * The benchmark's component body: parse Ethernet, bump a per-CPU counter,
 * pass. Built three ways from this one source:
 *   default    one component (chained K times by libxdpchain)
 *   -DINLINE=K one program with K copies of the body inlined
 *   -DTAIL=K   K programs, each tail-calling the next through a PROG_ARRAY
 *   -DNOMAP    one component without the counter (a static chain takes at
 *              most 64 maps, so the add-time runs up to 64 use this one)
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#ifndef NOMAP
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u64);
} hits SEC(".maps");
#endif

static __always_inline int body(struct xdp_md *ctx, __u32 key)
{
	void *data = (void *)(long)ctx->data, *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	__u64 *n __attribute__((unused));

	if ((void *)(eth + 1) > data_end)
		return XDP_ABORTED;
#ifndef NOMAP
	n = bpf_map_lookup_elem(&hits, &key);
	if (n)
		*n += eth->h_proto != 0;
#endif
	return XDP_PASS;
}

#if defined(INLINE)
SEC("xdp")
int bench_inline(struct xdp_md *ctx)
{
#pragma unroll
	for (int i = 0; i < INLINE; i++)
		if (body(ctx, i) != XDP_PASS)
			return XDP_DROP;
	return XDP_PASS;
}
#elif defined(TAIL)
struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u32);
} next SEC(".maps");

/* Program i runs the body and jumps to i + 1; the loader fills `next`. */
#define STAGE(i)                                        \
	SEC("xdp") int bench_tail_##i(struct xdp_md *ctx) \
	{                                               \
		int r = body(ctx, i);                   \
		if (r != XDP_PASS)                      \
			return r;                       \
		bpf_tail_call(ctx, &next, i + 1);       \
		return XDP_PASS;                        \
	}
STAGE(0) STAGE(1) STAGE(2) STAGE(3) STAGE(4) STAGE(5) STAGE(6) STAGE(7) STAGE(8) STAGE(9)
STAGE(10) STAGE(11) STAGE(12) STAGE(13) STAGE(14) STAGE(15) STAGE(16) STAGE(17) STAGE(18) STAGE(19)
STAGE(20) STAGE(21) STAGE(22) STAGE(23) STAGE(24) STAGE(25) STAGE(26) STAGE(27) STAGE(28) STAGE(29)
STAGE(30) STAGE(31)
#else
SEC("xdp")
int bench_component(struct xdp_md *ctx)
{
	return body(ctx, 0);
}
#endif

char _license[] SEC("license") = "GPL";
