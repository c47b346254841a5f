// SPDX-License-Identifier: GPL-2.0
/*
 * Shaped like xdp-tools' xdpfilt_*.o: global maps `filter_ports` and
 * `xdp_stats_map`, a global function and global variables whose names every
 * variant shares, .data/.bss/.rodata globals, static and global subprograms.
 * FILTER_PORT picks the variant (compiled twice with different values).
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#ifndef FILTER_PORT
#define FILTER_PORT 9999
#endif

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, __u32);
} filter_ports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 5);
	__type(key, __u32);
	__type(value, __u64);
} xdp_stats_map SEC(".maps");

__u64 seen = 0;			/* .bss */
__u32 default_port = FILTER_PORT; /* .data */
const volatile __u32 verbose = 0; /* .rodata */

static __noinline int parse_udp_dport(void *data, void *data_end)
{
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct udphdr *udp;

	if ((void *)(ip + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
		return -1;
	if (ip->protocol != IPPROTO_UDP || ip->ihl != 5)
		return -1;
	udp = (void *)(ip + 1);
	if ((void *)(udp + 1) > data_end)
		return -1;
	return bpf_ntohs(udp->dest);
}

__noinline int record(__u32 action)
{
	__u64 *cnt = bpf_map_lookup_elem(&xdp_stats_map, &action);

	if (cnt)
		*cnt += 1;
	return action;
}

SEC("xdp")
int xdpfilt_udp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	int port = parse_udp_dport(data, data_end);
	__u32 key;
	__u32 *blocked;

	seen++;
	if (port < 0)
		return record(XDP_PASS);
	key = port;
	blocked = bpf_map_lookup_elem(&filter_ports, &key);
	if ((blocked && *blocked) || (__u32)port == default_port)
		return record(XDP_DROP);
	return record(XDP_PASS);
}

char _license[] SEC("license") = "GPL";
