// SPDX-License-Identifier: GPL-2.0
/*
 * A global (not static) function that takes the context, as many programs
 * have: Linux 5.10 refuses it inside an extension program ("Caller passes
 * invalid args into func#1") and takes it in a linked program.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

__attribute__((noinline)) int ctx_len(struct xdp_md *ctx)
{
	return ctx->data_end - ctx->data;
}

SEC("xdp")
int xdp_ctx_global(struct xdp_md *ctx)
{
	return ctx_len(ctx) > 0 ? XDP_PASS : XDP_DROP;
}

char _license[] SEC("license") = "GPL";
