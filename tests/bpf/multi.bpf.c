// SPDX-License-Identifier: GPL-2.0
/*
 * Several XDP programs in one object, in one section and in another, a
 * tail call through a declaratively initialized PROG_ARRAY, and static and
 * global subprograms in .text. xdp_entry tail-calls xdp_tail, which drops
 * UDP to port 7777 and passes the rest; xdp_other is never chained.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

int xdp_tail(struct xdp_md *ctx);

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 1);
	__uint(key_size, sizeof(__u32));
	__array(values, int (void *));
} jump SEC(".maps") = {
	.values = { [0] = (void *)&xdp_tail },
};

__u64 tail_runs;

static __noinline int dport(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct udphdr *udp = (void *)(ip + 1);

	if ((void *)(udp + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP) ||
	    ip->protocol != IPPROTO_UDP || ip->ihl != 5)
		return -1;
	return bpf_ntohs(udp->dest);
}

__noinline int is_blocked(int port)
{
	return port == 7777;
}

SEC("xdp")
int xdp_tail(struct xdp_md *ctx)
{
	tail_runs++;
	return is_blocked(dport(ctx)) ? XDP_DROP : XDP_PASS;
}

SEC("xdp")
int xdp_entry(struct xdp_md *ctx)
{
	bpf_tail_call(ctx, &jump, 0);
	return XDP_ABORTED; /* only if the tail call failed */
}

SEC("xdp.frags")
int xdp_other(struct xdp_md *ctx)
{
	return XDP_DROP;
}

char _license[] SEC("license") = "GPL";
