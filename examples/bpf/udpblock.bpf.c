// SPDX-License-Identifier: GPL-2.0
/* Drops IPv4 UDP to the ports set in `blocked_ports` (7777 by default). */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u16);
	__type(value, __u8);
} blocked_ports SEC(".maps");

__u16 default_port = 7777;

SEC("xdp")
int xdp_udpblock(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct udphdr *udp = (void *)(ip + 1);
	__u16 port;

	if ((void *)(udp + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP) ||
	    ip->protocol != IPPROTO_UDP || ip->ihl != 5)
		return XDP_PASS;
	port = bpf_ntohs(udp->dest);
	if (port == default_port || bpf_map_lookup_elem(&blocked_ports, &port))
		return XDP_DROP;
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
