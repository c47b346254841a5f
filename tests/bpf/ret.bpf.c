// SPDX-License-Identifier: GPL-2.0
/*
 * A program NAME that returns RET, with libxdp's run config (priority PRIO,
 * chain on XDP_PASS), for chains shared with xdp-loader: which verdict a
 * chain of them returns tells which ran and in which order.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#ifndef NAME
#define NAME xdp_ret
#endif
#ifndef RET
#define RET XDP_PASS
#endif
#ifndef PRIO
#define PRIO 50
#endif

#define CONFIG_OF(f) _##f
#define CONFIG(f) CONFIG_OF(f)

struct {
	__uint(priority, PRIO);
	__uint(XDP_PASS, 1);
} CONFIG(NAME) SEC(".xdp_run_config");

SEC("xdp")
int NAME(struct xdp_md *ctx)
{
	return RET;
}

char _license[] SEC("license") = "GPL";
