// SPDX-License-Identifier: (LGPL-2.1-only OR BSD-2-Clause)
/*
 * What the static root and the dynamic dispatcher share: the config (a
 * frozen read-only map, so the verifier decides every branch on it and
 * drops unused slots, and all counting, timing and dump code when counting
 * is off), the control word that readers write, the counters, the ring of
 * packets dumped, and the loop over the slots.
 *
 * Keep this layout in step with src/root.rs (checked there against BTF).
 */
#ifndef XDPCHAIN_CHAIN_H
#define XDPCHAIN_CHAIN_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "stats.h"

#define XDPCHAIN_MAX_COMPONENTS 64
#define XDPCHAIN_NAME_LEN 32
#define XDPCHAIN_F_COUNT 1u

struct xdpchain_config {
	__u32 magic;
	__u32 version;
	__u32 num_components;
	__u32 flags;
	/* bit v set: the chain goes on when the component returns v */
	__u32 continue_on[XDPCHAIN_MAX_COMPONENTS];
	/* row of the component in xdpchain_stats, stable across rebuilds */
	__u32 stat_index[XDPCHAIN_MAX_COMPONENTS];
	/* the rest only describes the chain to other processes */
	__s32 priority[XDPCHAIN_MAX_COMPONENTS];
	char name[XDPCHAIN_MAX_COMPONENTS][XDPCHAIN_NAME_LEN];
	/* the component's id, never given to another one (version 2) */
	__u32 id[XDPCHAIN_MAX_COMPONENTS];
};

/* Its own section, so it becomes its own map, found by name and at offset 0. */
const volatile struct xdpchain_config xdpchain_config SEC(".rodata.xdpc");

/*
 * What readers switch at run time, without a rebuild: its own section, so
 * that it is its own (writable) map, read once per packet.
 */
struct xdpchain_ctl {
	/* Time components while CLOCK_MONOTONIC is below this (0: off). Each
	 * reader pushes it on; the root turns it off once passed, so timing
	 * stops when the last reader goes, killed or not. */
	__u64 timing_until;
	/* Dump packets to xdpchain_dump while the clock is below this (0:
	 * off), as for timing: those that the component in run-order position
	 * dump_slot receives, or with dump_exit those it leaves with its
	 * verdict, their first dump_snaplen bytes. */
	__u64 dump_until;
	__u32 dump_slot;
	__u32 dump_exit;
	__u32 dump_snaplen;
	/* Packets the ring had no room for. */
	__u32 dump_lost;
};

struct xdpchain_ctl xdpchain_ctl SEC(".data.xdpctl");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, XDPCHAIN_MAX_COMPONENTS);
	__type(key, __u32);
	__type(value, struct xdpchain_stats);
} xdpchain_stats SEC(".maps");

#define XDPCHAIN_SNAP_MAX 2048
/* The verdict of a packet dumped as a component receives it. */
#define XDPCHAIN_DUMP_ENTRY 0xffffffffu

/* One packet dumped. */
struct xdpchain_packet {
	__u64 ktime_ns;
	/* The packet's length, and how much of it follows. */
	__u32 len;
	__u32 caplen;
	__u32 slot;
	__u32 verdict;
	__u8 data[XDPCHAIN_SNAP_MAX];
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} xdpchain_dump SEC(".maps");

#define FOR_EACH_SLOT(X) \
X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) \
X(8) X(9) X(10) X(11) X(12) X(13) X(14) X(15) \
X(16) X(17) X(18) X(19) X(20) X(21) X(22) X(23) \
X(24) X(25) X(26) X(27) X(28) X(29) X(30) X(31) \
X(32) X(33) X(34) X(35) X(36) X(37) X(38) X(39) \
X(40) X(41) X(42) X(43) X(44) X(45) X(46) X(47) \
X(48) X(49) X(50) X(51) X(52) X(53) X(54) X(55) \
X(56) X(57) X(58) X(59) X(60) X(61) X(62) X(63)

/* The clock when this packet's timing starts, or 0 when nobody times. */
static __always_inline __u64 timing_start(void)
{
	__u64 until = xdpchain_ctl.timing_until;
	__u64 now;

	if (!until)
		return 0;
	now = bpf_ktime_get_ns();
	if (now < until)
		return now;
	xdpchain_ctl.timing_until = 0;
	return 0;
}

/* Counts the verdict of slot `slot`; while timing, also the time since
 * *since, which becomes now. */
static __always_inline void count(__u32 slot, __u32 verdict, __u64 *since)
{
	__u32 key = xdpchain_config.stat_index[slot];
	struct xdpchain_stats *s = bpf_map_lookup_elem(&xdpchain_stats, &key);

	__u32 idx = verdict <= XDP_REDIRECT ? verdict : XDPCHAIN_OTHER;

	if (!s)
		return;
	/* Hide idx's range from clang so it keeps the mask the verifier needs. */
	asm volatile("" : "+r"(idx));
	s->count[idx & 7]++;
	if (*since) {
		__u64 now = bpf_ktime_get_ns();

		s->count[XDPCHAIN_RUN_NS] += now - *since;
		s->count[XDPCHAIN_RUN_CNT]++;
		*since = now;
	}
}

static __always_inline void capture(struct xdp_md *ctx, __u32 slot, __u32 verdict)
{
	struct xdpchain_packet *p;
	__u64 len, cap;

	/* Kernels before 5.18 have neither helper that takes the bytes: libbpf
	 * makes this a constant from the kernel's BTF, and the verifier drops
	 * what follows unseen there (the dumper says so first). */
	if (!bpf_core_enum_value_exists(enum bpf_func_id, BPF_FUNC_xdp_load_bytes))
		return;
	p = bpf_ringbuf_reserve(&xdpchain_dump, sizeof(*p), 0);
	if (!p) {
		__sync_fetch_and_add(&xdpchain_ctl.dump_lost, 1);
		return;
	}
	len = bpf_xdp_get_buff_len(ctx);
	cap = xdpchain_ctl.dump_snaplen;
	if (cap > len)
		cap = len;
	p->ktime_ns = bpf_ktime_get_ns();
	p->len = len;
	p->slot = slot;
	p->verdict = verdict;
	p->caplen = 0;
	if (cap == 0 || cap > XDPCHAIN_SNAP_MAX)
		goto out;
	/* Within [1, SNAP_MAX] as the verifier sees it too (6.1's does not
	 * raise a lower bound on a test against 0; 6.18's does), past clang,
	 * which would see that this changes nothing. */
	asm volatile("" : "+r"(cap));
	cap = ((cap - 1) & (XDPCHAIN_SNAP_MAX - 1)) + 1;
	if (!bpf_xdp_load_bytes(ctx, 0, p->data, cap))
		p->caplen = cap;
out:
	bpf_ringbuf_submit(p, 0);
}

/*
 * Where this packet is dumped: after slot dump_after - 1 returns (0: not
 * at all), the point that is the exit of the component dumped, or the
 * entry of the next; the entry of slot 0 is dumped here. Out of line, and
 * named, so that generated roots (inline.rs) call it too.
 */
__attribute__((noinline)) static __u32 xdpchain_dump_start(struct xdp_md *ctx)
{
	__u64 until = xdpchain_ctl.dump_until;
	__u32 slot = xdpchain_ctl.dump_slot;

	if (!until)
		return 0;
	if (bpf_ktime_get_ns() >= until) {
		xdpchain_ctl.dump_until = 0;
		return 0;
	}
	if (xdpchain_ctl.dump_exit)
		return slot + 1;
	if (slot == 0)
		capture(ctx, 0, XDPCHAIN_DUMP_ENTRY);
	return slot;
}

/* Slot `slot` returned `verdict`, and the dump point is here: the exit of
 * this slot, or, if the chain goes on (`continue_on`), the entry of the
 * next. */
__attribute__((noinline)) static int xdpchain_dump_slot(struct xdp_md *ctx, __u32 slot,
							 __u32 verdict, __u32 continue_on)
{
	if (xdpchain_ctl.dump_exit)
		capture(ctx, slot, verdict);
	else if (verdict < 32 && (continue_on & (1u << verdict)))
		capture(ctx, slot + 1, XDPCHAIN_DUMP_ENTRY);
	return 0;
}

#define RUN(n)                                                                \
	if (n >= xdpchain_config.num_components)                              \
		return XDP_PASS;                                              \
	ret = SLOT_FN(n)(ctx);                                         \
	if (xdpchain_config.flags & XDPCHAIN_F_COUNT) {                       \
		count(n, ret, &since);                                        \
		if (dump_after == n + 1)                                      \
			xdpchain_dump_slot(ctx, n, ret,                       \
					   xdpchain_config.continue_on[n]);   \
	}                                                                     \
	if (ret >= 32 || !(xdpchain_config.continue_on[n] & (1u << ret)))     \
		return ret;

/* The chain's XDP program: each slot in turn, as the config says. */
#define CHAIN_ENTRY(name)                                               \
	SEC("xdp")                                                      \
	int name(struct xdp_md *ctx)                                    \
	{                                                               \
		__u64 since = 0;                                        \
		__u32 ret, dump_after = 0;                              \
                                                                        \
		if (xdpchain_config.flags & XDPCHAIN_F_COUNT) {         \
			since = timing_start();                         \
			if (xdpchain_ctl.dump_until)                    \
				dump_after = xdpchain_dump_start(ctx);  \
		}                                                       \
		FOR_EACH_SLOT(RUN)                                      \
		return XDP_PASS;                                        \
	}

#endif
