// SPDX-License-Identifier: (LGPL-2.1-only OR BSD-2-Clause)
/*
 * A small loader: chains the objects named on its command line onto an
 * interface, prints the chain, and detaches it when its standard input
 * ends; with -k it leaves the chain attached.
 *
 *   xdpchain-load [-k] IFACE FILE[:PROG]...
 *
 * Build it against the installed library:
 *   cc -o xdpchain-load xdpchain-load.c $(pkg-config --cflags --libs xdpchain)
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <xdpchain.h>

static int fail(const char *what, int err)
{
	fprintf(stderr, "xdpchain-load: %s: %s (%s)\n", what, xdpchain_last_error(),
		strerror(-err));
	return 1;
}

static void print_chain(struct xdpchain *chain)
{
	static const char *verdicts[] = { "aborted", "drop", "pass", "tx", "redirect" };
	int n = xdpchain__component_count(chain);

	printf("%d components, %s chain\n", n,
	       xdpchain__mode(chain) == XDPCHAIN_MODE_DYNAMIC ? "dynamic" : "static");
	for (int slot = 0; slot < n; slot++) {
		XDPCHAIN_OPTS(xdpchain_component_info, info);

		if (xdpchain__component(chain, slot, &info))
			continue;
		printf("  %u: %-24s id %u prio %d prog %u continue on", info.slot,
		       info.name, info.id, info.priority, info.prog_id);
		for (int v = 0; v < 5; v++)
			if (info.continue_on & XDPCHAIN_VERDICT(v))
				printf(" %s", verdicts[v]);
		printf("\n");
	}
}

int main(int argc, char **argv)
{
	struct xdpchain *chain = NULL;
	int keep = 0, first = 1, err;
	char c;

	if (argc > 1 && !strcmp(argv[1], "-k")) {
		keep = 1;
		first = 2;
	}
	if (argc - first < 2) {
		fprintf(stderr, "usage: %s [-k] IFACE FILE[:PROG]...\n", argv[0]);
		return 2;
	}
	XDPCHAIN_OPTS(xdpchain_open_opts, opts, .ifname = argv[first]);
	err = xdpchain__open(&opts, &chain);
	if (err)
		return fail(argv[first], err);
	for (int i = first + 1; i < argc; i++) {
		char *spec = strdup(argv[i]);
		char *prog = strrchr(spec, ':');

		if (prog)
			*prog++ = '\0';
		XDPCHAIN_OPTS(xdpchain_program_opts, p, .path = spec, .prog_name = prog);
		err = xdpchain__add_program(chain, &p, NULL);
		free(spec);
		if (err) {
			xdpchain__free(chain);
			return fail(argv[i], err);
		}
	}
	err = xdpchain__attach(chain, NULL);
	if (err) {
		xdpchain__free(chain);
		return fail("attach", err);
	}
	print_chain(chain);
	fflush(stdout);
	if (!keep) {
		while (read(STDIN_FILENO, &c, 1) > 0)
			;
		err = xdpchain__detach(chain);
		if (err) {
			xdpchain__free(chain);
			return fail("detach", err);
		}
	}
	xdpchain__free(chain);
	return 0;
}
