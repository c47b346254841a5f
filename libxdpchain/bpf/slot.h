// SPDX-License-Identifier: (LGPL-2.1-only OR BSD-2-Clause)
/*
 * The empty slot that extension programs (freplace) replace, shared by the
 * dynamic dispatcher, open static roots and the libxdp-compatible
 * dispatcher. It returns EMPTY_SLOT_RETVAL, which every continue set holds.
 * Its helper call, never made, tells the verifier that the slot may change
 * packet data, so that extensions that do may replace it.
 */
#ifndef XDPCHAIN_SLOT_H
#define XDPCHAIN_SLOT_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define EMPTY_SLOT_RETVAL 31

/* `attrs`: more attributes (weak), or nothing. */
#define REPLACEABLE_SLOT(name, attrs)                                \
	__attribute__((noinline)) attrs int name(struct xdp_md *ctx) \
	{                                                            \
		volatile int ret = EMPTY_SLOT_RETVAL;                \
                                                                     \
		if (ret != EMPTY_SLOT_RETVAL)                        \
			bpf_xdp_adjust_tail(ctx, 0);                 \
		return ret;                                          \
	}

#endif
