// SPDX-License-Identifier: GPL-2.0
/* A map pinned by name, as loaders that share maps between programs do
 * (named PIN_NAME, by default shared_hits). */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#ifndef PIN_NAME
#define PIN_NAME shared_hits
#endif

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} PIN_NAME SEC(".maps");

SEC("xdp")
int xdp_pinned(struct xdp_md *ctx)
{
	__u32 k = 0;
	__u64 *v = bpf_map_lookup_elem(&PIN_NAME, &k);

	if (v)
		__sync_fetch_and_add(v, 1);
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
