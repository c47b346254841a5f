// SPDX-License-Identifier: GPL-2.0
/* Counts the calls of whatever BPF function it is attached to, as a tracing
 * tool would: the tests attach it to a component by the function status
 * names. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

__u64 calls = 0;

SEC("fentry")
int count_calls(__u64 *ctx)
{
	__sync_fetch_and_add(&calls, 1);
	return 0;
}

char _license[] SEC("license") = "GPL";
