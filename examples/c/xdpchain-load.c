// SPDX-License-Identifier: (LGPL-2.1-only OR BSD-2-Clause)
/*
 * A small loader: adds the objects named on its command line to the chain
 * of an interface, beside the programs others added there, prints the
 * chain, and takes its own programs out again when its standard input
 * ends; with -k it leaves them. -o names the owner recorded with them
 * (default: the program's name), -n the interface's network namespace,
 * -m how a chain it creates joins its components (auto, static, dynamic),
 * -c that such a chain counts packets per component, in xdpchain's layout
 * (by default a dynamic chain takes libxdp's, which xdp-loader can join);
 * -t SECONDS times the components that long, then prints the chain again
 * with each one's packets and nanoseconds per packet.
 *
 *   xdpchain-load [-k] [-c] [-t SECONDS] [-o OWNER] [-n NETNS] [-m MODE] IFACE FILE[:PROG]...
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
		printf("  %u: %-24s id %u prio %d owner %s[%u]%s continue on", info.slot,
		       info.name, info.id, info.priority, info.owner[0] ? info.owner : "-",
		       info.pid, info.own ? " (ours)" : "");
		for (int v = 0; v < 5; v++)
			if (info.continue_on & XDPCHAIN_VERDICT(v))
				printf(" %s", verdicts[v]);
		if (info.has_counters) {
			unsigned long long packets = 0;

			for (int v = 0; v < 6; v++)
				packets += info.counters[v];
			printf(", %llu packets", packets);
			if (info.run_cnt)
				printf(", %.1f ns/packet", (double)info.run_time_ns / info.run_cnt);
		}
		printf("\n");
	}
}

int main(int argc, char **argv)
{
	struct xdpchain *chain = NULL;
	/* In the order of enum xdpchain_mode. */
	static const char *modes[] = { "auto", "static", "dynamic" };
	const char *owner = NULL, *netns = NULL;
	int keep = 0, counters = 0, timing = 0, mode = -1, opt, err;
	char c;

	while ((opt = getopt(argc, argv, "+kct:o:n:m:")) != -1) {
		switch (opt) {
		case 'k': keep = 1; break;
		case 'c': counters = 1; break;
		case 't':
			timing = atoi(optarg);
			if (timing <= 0)
				goto usage;
			break;
		case 'o': owner = optarg; break;
		case 'n': netns = optarg; break;
		case 'm':
			for (mode = 2; mode >= 0 && strcmp(optarg, modes[mode]); mode--)
				;
			if (mode < 0)
				goto usage;
			break;
		default: goto usage;
		}
	}
	if (argc - optind < 2)
		goto usage;
	XDPCHAIN_OPTS(xdpchain_open_opts, opts, .ifname = argv[optind], .owner = owner,
		      .netns = netns, .mode = mode < 0 ? XDPCHAIN_MODE_AUTO : (uint32_t)mode,
		      .counters = counters);
	err = xdpchain__open(&opts, &chain);
	if (err)
		return fail(argv[optind], err);
	for (int i = optind + 1; i < argc; i++) {
		char *spec = strdup(argv[i]);
		char *prog = strrchr(spec, ':');

		if (prog)
			*prog++ = '\0';
		XDPCHAIN_OPTS(xdpchain_program_opts, p, .path = spec, .prog_name = prog);
		err = xdpchain__add_program(chain, &p, NULL);
		free(spec);
		if (err) {
			/* What this run added so far goes again. */
			if (i > optind + 1)
				xdpchain__detach(chain);
			xdpchain__free(chain);
			return fail(argv[i], err);
		}
	}
	print_chain(chain);
	if (timing) {
		/* Timing stops by itself a few seconds after it is switched off,
		 * or after this process ends. */
		err = xdpchain__set_timing(chain, true);
		if (err) {
			xdpchain__free(chain);
			return fail("timing", err);
		}
		sleep(timing);
		xdpchain__set_timing(chain, false);
		print_chain(chain);
	}
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
usage:
	fprintf(stderr, "usage: %s [-k] [-c] [-t SECONDS] [-o OWNER] [-n NETNS] [-m auto|static|dynamic] IFACE FILE[:PROG]...\n",
		argv[0]);
	return 2;
}
