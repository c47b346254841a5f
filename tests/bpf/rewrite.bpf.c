// SPDX-License-Identifier: GPL-2.0
/* Rewrites packets: flips every bit of the 64th byte, where there is one. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int xdp_rewrite(struct xdp_md *ctx)
{
	unsigned char *data = (void *)(long)ctx->data;
	unsigned char *end = (void *)(long)ctx->data_end;

	if (data + 64 <= end)
		data[63] ^= 0xff;
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
