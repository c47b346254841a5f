// SPDX-License-Identifier: GPL-2.0
/* The seed that tests/scale.rs grows into objects of hostile size: one
 * program, which with -DMAP looks up a map (one relocation to copy). */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#ifdef MAP
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} scale_map SEC(".maps");
#endif

SEC("xdp")
int xdp_scale(struct xdp_md *ctx)
{
#ifdef MAP
	__u32 key = 0;

	return bpf_map_lookup_elem(&scale_map, &key) ? XDP_PASS : XDP_DROP;
#else
	return XDP_PASS;
#endif
}

char _license[] SEC("license") = "GPL";
