// SPDX-License-Identifier: (LGPL-2.1-only OR BSD-2-Clause)
/*
 * The root program of a static chain. Components are linked in as strong
 * definitions of the weak slot functions below; slots past num_components
 * keep their placeholder, and the verifier drops them.
 */
#include "chain.h"

#ifndef XDPCHAIN_OPEN
/*
 * Hidden visibility makes libbpf verify each component in its caller's
 * context, as a static function: no global-function restrictions on the
 * component, and the verifier sees the placeholders of unused slots as dead.
 */
#define SLOT(n)                                                              \
	__attribute__((weak, noinline, visibility("hidden"))) int            \
	xdpchain_slot_##n(struct xdp_md *ctx)                                \
	{                                                                    \
		return XDP_PASS;                                             \
	}
#else
/*
 * An open chain: every slot is a global function, so an extension program
 * (freplace) may take the place of a linked component or fill a spare slot
 * later (see slot.h).
 */
#include "slot.h"
#define SLOT(n) REPLACEABLE_SLOT(xdpchain_slot_##n, __attribute__((weak)))
#endif
FOR_EACH_SLOT(SLOT)

#define SLOT_FN(n) xdpchain_slot_##n

CHAIN_ENTRY(xdpchain_root)
