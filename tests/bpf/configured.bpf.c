// SPDX-License-Identifier: GPL-2.0
/*
 * A program that its loader must configure before loading, as xdp-bench's
 * are: the verdict it returns is a read-only global, and its map has no
 * size until the loader gives it one.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

const volatile __u32 cfg_verdict = XDP_PASS;
const volatile __u16 cfg_slot = 0;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 0);
	__type(key, __u32);
	__type(value, __u64);
} hits SEC(".maps");

SEC("xdp")
int xdp_configured(struct xdp_md *ctx)
{
	__u32 key = cfg_slot;
	__u64 *n = bpf_map_lookup_elem(&hits, &key);

	if (n)
		__sync_fetch_and_add(n, 1);
	return cfg_verdict;
}

char _license[] SEC("license") = "GPL";
