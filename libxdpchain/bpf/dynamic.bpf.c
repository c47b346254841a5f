// SPDX-License-Identifier: (LGPL-2.1-only OR BSD-2-Clause)
/*
 * The dispatcher of a dynamic chain. Each component is loaded once as an
 * extension program (BPF_PROG_TYPE_EXT) and attached in place of one of the
 * global slot functions below, so a new dispatcher (for a component more,
 * or less) verifies only itself. A slot without an extension returns
 * EMPTY_SLOT_RETVAL (slot.h), which every continue set holds.
 */
#include "chain.h"
#include "slot.h"

#define SLOT(n) REPLACEABLE_SLOT(xdpchain_dslot_##n, )
FOR_EACH_SLOT(SLOT)

#define SLOT_FN(n) xdpchain_dslot_##n

CHAIN_ENTRY(xdpchain_dyn)

char _license[] SEC("license") = "GPL";
