// SPDX-License-Identifier: GPL-2.0
/*
 * Device-bound (XDP RX metadata kfuncs, Linux 6.3+): passes a packet only
 * when the driver answers its RX hash, and drops it when it cannot, counting
 * both. The kernel loads it only bound to a device.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

/* Only the kind matters to libbpf's check of the kfunc's prototype. */
enum xdp_rss_hash_type { XDP_RSS_TYPE_NONE };

extern int bpf_xdp_metadata_rx_hash(const struct xdp_md *ctx, __u32 *hash,
				    enum xdp_rss_hash_type *rss_type) __ksym;

/* One struct, so that its fields keep their order in .bss. */
struct {
	__u64 hashed;
	__u64 unhashed;
} counts;

SEC("xdp")
int xdp_rxhash(struct xdp_md *ctx)
{
	enum xdp_rss_hash_type type;
	__u32 hash;

	if (bpf_xdp_metadata_rx_hash(ctx, &hash, &type)) {
		counts.unhashed++;
		return XDP_DROP;
	}
	counts.hashed++;
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
