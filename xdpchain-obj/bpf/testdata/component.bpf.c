// SPDX-License-Identifier: (LGPL-2.1-only OR BSD-2-Clause)
/*
 * A component for the object layer's unit tests (no kernel needed): a map,
 * .data, .bss and .rodata, a global and a static function that the entry
 * program calls, a second XDP program, and a license.
 */
#include <linux/bpf.h>

/* What bpf_helpers.h would give, written here: the object layer builds with
 * no libbpf, its headers included. */
#define SEC(name) __attribute__((section(name), used))
#define __uint(name, val) int (*name)[val]
#define __type(name, val) typeof(val) *name
static void *(*bpf_map_lookup_elem)(void *map, const void *key) = (void *)BPF_FUNC_map_lookup_elem;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} hits SEC(".maps");

__u64 seen = 0;
__u32 limit = 7;
const volatile __u32 port = 53;

static __attribute__((noinline)) int bump(struct xdp_md *ctx)
{
	return ctx->data_end - ctx->data;
}

__attribute__((noinline)) int shared_helper(int len)
{
	return len > (int)port;
}

SEC("xdp")
int xdp_first(struct xdp_md *ctx)
{
	__u32 key = 0;
	__u64 *v = bpf_map_lookup_elem(&hits, &key);

	if (v)
		(*v)++;
	if (++seen > limit)
		return XDP_DROP;
	return shared_helper(bump(ctx)) ? XDP_PASS : XDP_DROP;
}

SEC("xdp")
int xdp_second(struct xdp_md *ctx)
{
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
