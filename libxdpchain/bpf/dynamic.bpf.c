// SPDX-License-Identifier: (LGPL-2.1-only OR BSD-2-Clause)
/*
 * The dispatcher of a dynamic chain. Each component is loaded once as an
 * extension program (BPF_PROG_TYPE_EXT) and attached in place of one of the
 * global slot functions below, so a new dispatcher (for a component more,
 * or less) verifies only itself. A slot without an extension returns
 * XDPCHAIN_RETVAL, which every continue set holds.
 */
#include "chain.h"

#define XDPCHAIN_RETVAL 31

/*
 * The helper call, never made, tells the verifier that the slot may change
 * packet data, so that extensions that do may replace it.
 */
#define SLOT(n)                                                              \
	__attribute__((noinline)) int xdpchain_dslot_##n(struct xdp_md *ctx) \
	{                                                                    \
		volatile int ret = XDPCHAIN_RETVAL;                          \
                                                                             \
		if (ret != XDPCHAIN_RETVAL)                                  \
			bpf_xdp_adjust_tail(ctx, 0);                         \
		return ret;                                                  \
	}
FOR_EACH_SLOT(SLOT)

#define SLOT_FN(n) xdpchain_dslot_##n

SEC("xdp")
int xdpchain_dyn(struct xdp_md *ctx)
{
	__u32 ret;

	FOR_EACH_SLOT(RUN)
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
