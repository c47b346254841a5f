// SPDX-License-Identifier: GPL-2.0
/* A component that calls a helper the kernel reserves for GPL-compatible
 * programs (bpf_trace_printk), in a subprogram. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

static __attribute__((noinline)) int say(int len)
{
	bpf_printk("packet of %d bytes", len);
	return XDP_PASS;
}

SEC("xdp")
int xdp_printk(struct xdp_md *ctx)
{
	return say(ctx->data_end - ctx->data);
}

char _license[] SEC("license") = "GPL";
