// SPDX-License-Identifier: GPL-2.0
/*
 * Programs that exercise what copying a component into a generated root
 * must get right: a frame near the 512-byte limit, a bpf_loop callback
 * given a pointer into the frame, nested static and global functions,
 * globals in .data, .bss and .rodata, and metadata in front of the packet.
 * Their verdicts and globals depend on the packet, so that a wrong copy
 * shows.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

__u64 bytes_seen;                    /* .bss */
__u32 rounds = 3;                    /* .data */
const volatile __u32 modulus = 7;    /* .rodata */

static __always_inline __u32 packet_len(struct xdp_md *ctx)
{
	return ctx->data_end - ctx->data;
}

/* Fills 120 words of its frame, then folds them by the packet's length. */
SEC("xdp")
int xdp_stack(struct xdp_md *ctx)
{
	volatile __u32 words[120];
	__u32 len = packet_len(ctx), sum = 0;

	for (int i = 0; i < 120; i++)
		words[i] = len * i;
	for (int i = 0; i < 120; i++)
		sum += words[i] % modulus;
	bytes_seen += len;
	return sum % 3 == 0 ? XDP_DROP : XDP_PASS;
}

struct loop_state {
	__u32 len;
	__u32 acc;
};

static long step(__u32 i, void *data)
{
	struct loop_state *s = data;

	s->acc = s->acc * 31 + s->len + i;
	return 0;
}

static __attribute__((noinline)) __u32 mix(__u32 a, __u32 b)
{
	return (a ^ (b << 3)) % modulus;
}

__attribute__((noinline)) int global_verdict(__u32 v)
{
	return v % 2 ? XDP_PASS : XDP_TX;
}

/* A callback with a pointer into the frame, a nested static function and
 * a global one. */
SEC("xdp")
int xdp_loop(struct xdp_md *ctx)
{
	struct loop_state s = { .len = packet_len(ctx), .acc = 1 };

	bpf_loop(rounds, step, &s, 0);
	bytes_seen += s.acc;
	return global_verdict(mix(s.acc, s.len));
}

/* Puts the packet's length in front of it as metadata, after the space
 * another component may have taken. */
SEC("xdp")
int xdp_meta(struct xdp_md *ctx)
{
	__u32 *meta;

	if (bpf_xdp_adjust_meta(ctx, -4))
		return XDP_ABORTED;
	meta = (void *)(long)ctx->data_meta;
	if ((void *)(meta + 1) > (void *)(long)ctx->data)
		return XDP_ABORTED;
	*meta = packet_len(ctx);
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
