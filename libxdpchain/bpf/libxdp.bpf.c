// SPDX-License-Identifier: (LGPL-2.1-only OR BSD-2-Clause)
/*
 * A dispatcher that follows libxdp's multiprog protocol, so that libxdp
 * (xdp-loader) and libxdpchain can share an interface: the program is named
 * xdp_dispatcher, its only map is the config below in .rodata, its slots
 * are global functions prog0..prog9, and the BTF variable dispatcher_version
 * in section xdp_metadata says which protocol version it speaks. Built once
 * per version (-DLIBXDP_VERSION=2 or 3); the layout must match libxdp's
 * byte for byte, as libxdp reads it from the running program.
 *
 * Keep in step with src/libxdp.rs.
 */
#include "slot.h"

#define SLOTS 10

struct xdp_dispatcher_config {
	__u8 magic;
	__u8 dispatcher_version;
	__u8 num_progs_enabled;
	__u8 is_xdp_frags;
	__u32 chain_call_actions[SLOTS];
	__u32 run_prios[SLOTS];
	__u32 program_flags[SLOTS];
#if LIBXDP_VERSION >= 3
	__u8 is_xdp_devbound;
#endif
};

static volatile const struct xdp_dispatcher_config conf = {};

__uint(dispatcher_version, LIBXDP_VERSION) SEC("xdp_metadata");

#define SLOT(n) REPLACEABLE_SLOT(prog##n, )
SLOT(0) SLOT(1) SLOT(2) SLOT(3) SLOT(4) SLOT(5) SLOT(6) SLOT(7) SLOT(8) SLOT(9)

#define RUN(n)                                                         \
	if (n >= conf.num_progs_enabled)                                \
		return XDP_PASS;                                        \
	ret = prog##n(ctx);                                            \
	if (ret >= 32 || !((1u << ret) & conf.chain_call_actions[n]))  \
		return ret;

SEC("xdp")
int xdp_dispatcher(struct xdp_md *ctx)
{
	__u32 ret;

	RUN(0) RUN(1) RUN(2) RUN(3) RUN(4) RUN(5) RUN(6) RUN(7) RUN(8) RUN(9)
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
