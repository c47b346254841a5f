// SPDX-License-Identifier: (LGPL-2.1-only OR BSD-2-Clause)
/*
 * Calls every function of the C API, and each error path, against the real
 * kernel. Run by tests/c/run.sh inside a network namespace that holds the
 * veth end IFACE; OBJDIR holds the test BPF objects.
 *
 *   api OBJDIR IFACE TMPDIR
 */
#define _GNU_SOURCE
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/bpf.h>

#include <xdpchain.h>

static int passed;

#define CHECK(cond)                                                          \
	do {                                                                 \
		if (!(cond)) {                                               \
			fprintf(stderr, "%s:%d: failed: %s\n  last error: %s\n", \
				__FILE__, __LINE__, #cond,                   \
				xdpchain_last_error());                      \
			printf("%d passed, 1 failed\n", passed);             \
			exit(1);                                             \
		}                                                            \
		passed++;                                                    \
	} while (0)

/* A call that fails with `err` and says `words` about it. */
#define FAILS(call, err, words)                                              \
	do {                                                                 \
		int ret_ = (call);                                           \
		CHECK(ret_ == (err));                                        \
		CHECK(strstr(xdpchain_last_error(), (words)) != NULL);       \
	} while (0)

static const char *objdir;

/* Messages that xdpchain_set_print() handed over, by level; whether a
 * warning carried the verifier's log. */
static int printed[3], verifier_warned;

static int count_print(enum xdpchain_print_level level, const char *msg)
{
	printed[level]++;
	if (level == XDPCHAIN_PRINT_LEVEL_WARN && !strncmp(msg, "libbpf: ", 8) &&
	    strstr(msg, "BEGIN PROG LOAD LOG"))
		verifier_warned = 1;
	return 0;
}

static char *obj(const char *name)
{
	static char buf[4][512];
	static int i;
	char *p = buf[i++ % 4];

	snprintf(p, sizeof(buf[0]), "%s/%s.o", objdir, name);
	return p;
}

/* An Ethernet/IPv4/UDP packet to `port`. */
static size_t udp_packet(unsigned char *p, unsigned short port)
{
	memset(p, 0, 64);
	p[12] = 0x08;          /* ETH_P_IP */
	p[14] = 0x45;          /* IPv4, 20-byte header */
	p[16] = 0; p[17] = 50; /* total length */
	p[22] = 64;            /* TTL */
	p[23] = 17;            /* UDP */
	p[26] = 198; p[27] = 18; p[28] = 0; p[29] = 1;
	p[30] = 198; p[31] = 18; p[32] = 0; p[33] = 2;
	p[34] = 0x30; p[35] = 0x39;
	p[36] = port >> 8; p[37] = port & 0xff;
	p[38] = 0; p[39] = 30;
	return 64;
}

static unsigned int verdict_for(struct xdpchain *c, unsigned short port)
{
	unsigned char pkt[64];
	unsigned int v = 99;
	size_t len = udp_packet(pkt, port);

	CHECK(xdpchain__test_run(c, pkt, len, &v) == 0);
	return v;
}

static unsigned long long map_u64(int fd, unsigned int key)
{
	unsigned long long value = 0;
	union bpf_attr attr;

	memset(&attr, 0, sizeof(attr));
	attr.map_fd = fd;
	attr.key = (unsigned long)&key;
	attr.value = (unsigned long)&value;
	CHECK(syscall(__NR_bpf, BPF_MAP_LOOKUP_ELEM, &attr, sizeof(attr)) == 0);
	return value;
}

static void *read_file(const char *path, size_t *len)
{
	struct stat st;
	void *buf;
	int fd = open(path, O_RDONLY);

	CHECK(fd >= 0 && fstat(fd, &st) == 0);
	buf = malloc(st.st_size);
	CHECK(buf && read(fd, buf, st.st_size) == st.st_size);
	close(fd);
	*len = st.st_size;
	return buf;
}

/* What a handle's report callback heard: the changes of its last call. */
struct heard {
	int n;
	struct {
		unsigned int action, id, prog_id;
		bool has_id;
		char owner[64];
	} ch[4];
};

static void hear(const struct xdpchain_change *ch, void *ctx)
{
	struct heard *h = ctx;

	if (h->n < 4) {
		h->ch[h->n].action = ch->action;
		h->ch[h->n].id = ch->id;
		h->ch[h->n].has_id = ch->has_id;
		h->ch[h->n].prog_id = ch->prog_id;
		snprintf(h->ch[h->n].owner, 64, "%s", ch->owner ? ch->owner : "");
	}
	h->n++;
}

static void opening(const char *iface)
{
	struct xdpchain *c = NULL;
	struct {
		struct xdpchain_open_opts o;
		unsigned long long newer_field;
	} newer;

	FAILS(xdpchain__open(NULL, NULL), -EINVAL, "NULL");
	{
		XDPCHAIN_OPTS(xdpchain_open_opts, o, .ifname = "xdpc-none0");
		FAILS(xdpchain__open(&o, &c), -ENODEV, "xdpc-none0");
	}
	{
		XDPCHAIN_OPTS(xdpchain_open_opts, o, .ifname = "\xff\xfe");
		FAILS(xdpchain__open(&o, &c), -EINVAL, "UTF-8");
	}
	{
		XDPCHAIN_OPTS(xdpchain_open_opts, o, .mode = 7);
		FAILS(xdpchain__open(&o, &c), -EINVAL, "mode 7");
	}
	{
		XDPCHAIN_OPTS(xdpchain_open_opts, o, .ifname = iface, .counters = true,
			      .no_counters = true);
		FAILS(xdpchain__open(&o, &c), -EINVAL, "contradict");
	}
	{
		struct xdpchain_open_opts o = { .sz = 2 };
		FAILS(xdpchain__open(&o, &c), -EINVAL, "too small");
	}
	{
		/* Nothing changes on an interface through a chain of its own. */
		XDPCHAIN_OPTS(xdpchain_open_opts, o, .report = hear);
		FAILS(xdpchain__open(&o, &c), -EINVAL, "need an interface");
	}
	/* A program built against a newer header: unknown fields must be 0. */
	memset(&newer, 0, sizeof(newer));
	newer.o.sz = sizeof(newer);
	newer.o.ifname = iface;
	newer.newer_field = 1;
	FAILS(xdpchain__open(&newer.o, &c), -EINVAL, "past the");
	newer.newer_field = 0;
	CHECK(xdpchain__open(&newer.o, &c) == 0);
	xdpchain__free(c);
	/* ...and against an older one, without the last field. */
	{
		struct xdpchain_open_opts o = {
			.sz = offsetof(struct xdpchain_open_opts, pin_root),
			.ifname = iface,
		};
		CHECK(xdpchain__open(&o, &c) == 0);
		CHECK(xdpchain__mode(c) == XDPCHAIN_MODE_AUTO);
		xdpchain__free(c);
	}
	xdpchain__free(NULL);
}

static void bad_programs(struct xdpchain *c)
{
	XDPCHAIN_OPTS(xdpchain_program_opts, o, .path = "/nonexistent/x.o");
	unsigned char fake[sizeof(void *) * 8];
	int before = xdpchain__component_count(c);

	FAILS(xdpchain__add_program(NULL, &o, NULL), -EINVAL, "NULL");
	FAILS(xdpchain__add_program(c, NULL, NULL), -EINVAL, "NULL");
	memset(fake, 0x5a, sizeof(fake));
	FAILS(xdpchain__add_program((struct xdpchain *)fake, &o, NULL), -EINVAL,
	      "not a chain handle");
	FAILS(xdpchain__add_program(c, &o, NULL), -ENOENT, "/nonexistent/x.o");
	o.path = "/etc/passwd";
	FAILS(xdpchain__add_program(c, &o, NULL), -ENOEXEC, "ELF");
	o.path = "\xc3\x28.o";
	FAILS(xdpchain__add_program(c, &o, NULL), -EINVAL, "UTF-8");
	o.path = obj("counter");
	o.prog_name = "no_such_prog";
	FAILS(xdpchain__add_program(c, &o, NULL), -ENOENT, "no_such_prog");
	o.path = NULL;
	o.prog_name = NULL;
	FAILS(xdpchain__add_program(c, &o, NULL), -EINVAL, "neither path nor buf");
	CHECK(xdpchain__component_count(c) == before);
}

/* The header of section `name` of the object in `buf`. */
static Elf64_Shdr *section(void *buf, const char *name)
{
	Elf64_Ehdr *eh = buf;
	Elf64_Shdr *sh = (Elf64_Shdr *)((char *)buf + eh->e_shoff);
	const char *names = (char *)buf + sh[eh->e_shstrndx].sh_offset;

	for (int i = 0; i < eh->e_shnum; i++)
		if (!strcmp(names + sh[i].sh_name, name))
			return &sh[i];
	CHECK(!"section found");
	return NULL;
}

/* Objects broken as an attacker would break them: an error each, from
 * memory and from a path, and nothing added (see tests/hostile.rs). */
static void hostile(const char *tmp)
{
	struct xdpchain *c = NULL;
	size_t len;
	void *buf = read_file(obj("counter"), &len);
	char fifo[512];

	CHECK(xdpchain__open(NULL, &c) == 0);
	{
		XDPCHAIN_OPTS(xdpchain_program_opts, p, .buf = buf, .buf_len = 100);
		FAILS(xdpchain__add_program(c, &p, NULL), -ENOEXEC, "malformed");
	}
	section(buf, "xdp")->sh_addralign = 1ULL << 40;
	{
		XDPCHAIN_OPTS(xdpchain_program_opts, p, .buf = buf, .buf_len = len);
		FAILS(xdpchain__add_program(c, &p, NULL), -EFBIG, "alignment");
	}
	section(buf, "xdp")->sh_addralign = 8;
	section(buf, ".bss")->sh_size = 1ULL << 30;
	{
		XDPCHAIN_OPTS(xdpchain_program_opts, p, .buf = buf, .buf_len = len);
		FAILS(xdpchain__add_program(c, &p, NULL), -EFBIG, "zeroed data");
	}
	section(buf, ".bss")->sh_size = 8;
	section(buf, "license")->sh_flags |= SHF_EXECINSTR;
	{
		XDPCHAIN_OPTS(xdpchain_program_opts, p, .buf = buf, .buf_len = len);
		XDPCHAIN_OPTS(xdpchain_link_opts, l, .path = "/dev/null");
		CHECK(xdpchain__add_program(c, &p, NULL) == 0);
		FAILS(xdpchain__link_static(c, &l), -ENOEXEC, "license is code");
	}
	snprintf(fifo, sizeof(fifo), "%s/fifo", tmp);
	CHECK(mkfifo(fifo, 0600) == 0);
	{
		XDPCHAIN_OPTS(xdpchain_program_opts, p, .path = fifo);
		FAILS(xdpchain__add_program(c, &p, NULL), -ENOEXEC, "FIFO");
	}
	unlink(fifo);
	{
		XDPCHAIN_OPTS(xdpchain_program_opts, p, .path = "/dev/zero");
		FAILS(xdpchain__add_program(c, &p, NULL), -ENOEXEC, "device");
	}
	CHECK(xdpchain__component_count(c) == 1);
	xdpchain__free(c);
	free(buf);
}

/* A chain linked into a file, never loaded. */
static void link_to_file(const char *tmp)
{
	XDPCHAIN_OPTS(xdpchain_program_opts, p, .path = obj("counter"));
	struct xdpchain *c = NULL;
	char out[512], magic[4] = { 0 };
	unsigned int id = 99;
	int fd;

	CHECK(xdpchain__open(NULL, &c) == 0);
	bad_programs(c);
	CHECK(xdpchain__add_program(c, &p, &id) == 0 && id == 0);
	snprintf(out, sizeof(out), "%s/linked.o", tmp);
	{
		XDPCHAIN_OPTS(xdpchain_link_opts, l, .path = out);
		CHECK(xdpchain__link_static(c, &l) == 0);
	}
	fd = open(out, O_RDONLY);
	CHECK(fd >= 0 && read(fd, magic, 4) == 4 && !memcmp(magic, "\x7f" "ELF", 4));
	close(fd);
	{
		XDPCHAIN_OPTS(xdpchain_link_opts, l, .path = "/nonexistent/dir/x.o");
		FAILS(xdpchain__link_static(c, &l), -ENOENT, "/nonexistent/dir/x.o");
	}
	/* No interface: nothing to attach to. */
	FAILS(xdpchain__link_static(c, NULL), -EINVAL, "without an interface");
	FAILS(xdpchain__attach(c, NULL), -EINVAL, "without an interface");
	FAILS(xdpchain__test_run(c, "x", 1, &id), -ENOENT, "not loaded");
	FAILS(xdpchain__map_fd(c, 0, "echo_requests"), -ENOENT, "not loaded");
	xdpchain__free(c);
}

/* A handle on an interface's chain: what it adds joins at once. */
static void on_interface(const char *iface)
{
	XDPCHAIN_OPTS(xdpchain_open_opts, oo, .ifname = iface, .owner = "api-test");
	struct xdpchain *c = NULL;
	struct xdpchain_component_info info;
	unsigned int counter, fw, none;
	size_t len;
	void *buf = read_file(obj("filter"), &len);
	int fd;

	CHECK(xdpchain__open(&oo, &c) == 0);
	CHECK(xdpchain__component_count(c) == 0);
	FAILS(xdpchain__detach(c), -ENOENT, "not attached");
	FAILS(xdpchain__attach(c, NULL), -ENOENT, "runs no chain");
	{
		XDPCHAIN_OPTS(xdpchain_program_opts, p, .path = obj("counter"));
		CHECK(xdpchain__add_program(c, &p, &counter) == 0);
	}
	{
		/* From memory, with our own priority and continue set, kept a
		 * function of its own for tracers. */
		XDPCHAIN_OPTS(xdpchain_program_opts, p, .buf = buf, .buf_len = len,
			      .buf_name = "filter-in-memory", .has_priority = true,
			      .priority = 60,
			      .continue_on = XDPCHAIN_VERDICT(XDP_PASS),
			      .traceable = true);
		CHECK(xdpchain__add_program(c, &p, &fw) == 0);
	}
	free(buf);
	CHECK(xdpchain__component_count(c) == 2);
	/* Already running: attach checks, in the mode asked for. */
	CHECK(xdpchain__attach(c, NULL) == 0);
	{
		XDPCHAIN_OPTS(xdpchain_attach_opts, a, .attach_mode = XDPCHAIN_ATTACH_MODE_SKB);
		FAILS(xdpchain__attach(c, &a), -EINVAL, "native mode");
	}
	if (xdpchain__mode(c) == XDPCHAIN_MODE_STATIC)
		CHECK(xdpchain__link_static(c, NULL) == 0);
	else
		FAILS(xdpchain__link_static(c, NULL), -EINVAL, "not linked");
	{
		XDPCHAIN_OPTS(xdpchain_link_opts, l, .path = "/tmp/never.o");
		FAILS(xdpchain__link_static(c, &l), -EINVAL, "not linked into a file");
	}

	CHECK(verdict_for(c, 9999) == XDP_DROP);
	CHECK(verdict_for(c, 53) == XDP_PASS);
	memset(&info, 0, sizeof(info));
	info.sz = sizeof(info);
	CHECK(xdpchain__component(c, 0, &info) == 0);
	CHECK(info.id == counter && info.slot == 0 && info.priority == 10);
	CHECK(!strcmp(info.name, "xdp_count"));
	CHECK(xdpchain__mode(c) != XDPCHAIN_MODE_STATIC || (info.inlined && !info.function[0]));
	CHECK(info.continue_on == (XDPCHAIN_VERDICT(XDP_PASS) | XDPCHAIN_VERDICT(XDP_DROP)));
	CHECK(!strcmp(info.owner, "api-test") && info.pid == (unsigned int)getpid() && info.own);
	CHECK(xdpchain__component(c, 1, &info) == 0);
	CHECK(info.id == fw && info.priority == 60 && !strcmp(info.name, "xdpfilt_udp"));
	CHECK(info.has_counters);
	CHECK(info.counters[XDP_DROP] == 1 && info.counters[XDP_PASS] == 1);
	/* Traceable: a static chain calls it rather than copying it into the
	 * root generated for the chain; a dynamic one runs it as its own
	 * extension program. Status names the function tracers attach to. */
	if (xdpchain__mode(c) == XDPCHAIN_MODE_STATIC)
		CHECK(info.has_inlined && !info.inlined && !strcmp(info.function, "xdpchain_slot_1"));
	else
		CHECK(!strcmp(info.function, "xdpfilt_udp"));
	FAILS(xdpchain__component(c, 2, &info), -EINVAL, "out of range");
	FAILS(xdpchain__component(c, 0, NULL), -EINVAL, "NULL");
	info.sz = 1;
	FAILS(xdpchain__component(c, 0, &info), -EINVAL, "too small");
	/* An older caller's struct, without the name: left alone. */
	memset(&info, 0, sizeof(info));
	info.sz = offsetof(struct xdpchain_component_info, name);
	info.name[0] = 'Z';
	CHECK(xdpchain__component(c, 1, &info) == 0);
	CHECK(info.id == fw && info.priority == 60 && info.name[0] == 'Z');

	fd = xdpchain__map_fd(c, counter, ".bss");
	CHECK(fd >= 0 && map_u64(fd, 0) == 2);
	FAILS(xdpchain__map_fd(c, counter, "no_such_map"), -ENOENT, "no_such_map");
	FAILS(xdpchain__map_fd(c, counter, "../stats"), -ENOENT, "../stats");
	FAILS(xdpchain__map_fd(c, 77, "echo_requests"), -ENOENT, "77");
	FAILS(xdpchain__map_fd(c, counter, NULL), -EINVAL, "NULL");

	/* The verifier's refusal: its log reaches the caller, and the print
	 * function while one is set; nothing changes. */
	{
		XDPCHAIN_OPTS(xdpchain_program_opts, p, .path = obj("bad"));
		int ret;

		CHECK(xdpchain_set_print(count_print) == NULL);
		ret = xdpchain__add_program(c, &p, &none);
		CHECK(xdpchain_set_print(NULL) == count_print);
		CHECK(verifier_warned && printed[XDPCHAIN_PRINT_LEVEL_DEBUG] > 0);

		CHECK(ret == -EACCES || ret == -EINVAL);
		CHECK(strstr(xdpchain_last_error(), "bad.o") != NULL);
		CHECK(strstr(xdpchain_last_error(), "processed") != NULL ||
		      strstr(xdpchain_last_error(), "invalid") != NULL);
		CHECK(xdpchain__component_count(c) == 2);
		CHECK(verdict_for(c, 9999) == XDP_DROP);
	}

	/* The firewall's slot, replaced atomically. */
	{
		XDPCHAIN_OPTS(xdpchain_program_opts, p, .path = obj("verdict"));
		CHECK(xdpchain__replace_slot(c, 1, &p) == 0);
		CHECK(verdict_for(c, 9999) == XDP_PASS);
		FAILS(xdpchain__replace_slot(c, 2, &p), -EINVAL, "out of range");
		FAILS(xdpchain__replace_slot(c, 0, NULL), -EINVAL, "NULL");
	}
	CHECK(xdpchain__remove_program(c, fw) == 0);
	CHECK(xdpchain__component_count(c) == 1);
	FAILS(xdpchain__remove_program(c, 42), -ENOENT, "42");
	/* Ids are never given again: the stale one finds nothing, and the
	 * component added since stays. */
	{
		XDPCHAIN_OPTS(xdpchain_program_opts, p, .path = obj("verdict"));
		unsigned int later;

		CHECK(xdpchain__add_program(c, &p, &later) == 0);
		CHECK(later != fw && later != counter);
		FAILS(xdpchain__remove_program(c, fw), -ENOENT, "no component");
		CHECK(xdpchain__component_count(c) == 2);
		CHECK(xdpchain__remove_program(c, later) == 0);
	}

	/* Freed, the handle leaves its component running... */
	xdpchain__free(c);
	c = NULL;
	CHECK(xdpchain__open(&oo, &c) == 0);
	CHECK(xdpchain__component_count(c) == 1);
	CHECK(xdpchain__component(c, 0, &info) == 0 && !info.own);
	/* ...which a new handle does not detach as its own. */
	FAILS(xdpchain__detach(c), -ENOENT, "not attached");
	CHECK(xdpchain__remove_program(c, counter) == 0);
	CHECK(xdpchain__component_count(c) == 0);
	xdpchain__free(c);
}

/* Two owners on one interface: each keeps its own, changes the other's
 * only by force, and detaches only its own; each handle hears what its
 * changes did. */
static void two_owners(const char *iface)
{
	struct heard probe_heard = { 0 }, boss_heard = { 0 };
	XDPCHAIN_OPTS(xdpchain_open_opts, fo, .ifname = iface, .owner = "fw",
		      .mode = XDPCHAIN_MODE_STATIC);
	XDPCHAIN_OPTS(xdpchain_open_opts, po, .ifname = iface, .owner = "probe", .report = hear,
		      .report_ctx = &probe_heard);
	XDPCHAIN_OPTS(xdpchain_program_opts, filter, .path = obj("filter"), .has_priority = true,
		      .priority = 60);
	XDPCHAIN_OPTS(xdpchain_program_opts, count, .path = obj("counter"));
	struct xdpchain *fw = NULL, *probe = NULL, *boss = NULL;
	unsigned int fw_id, probe_id;

	CHECK(xdpchain__open(&fo, &fw) == 0 && xdpchain__open(&po, &probe) == 0);
	CHECK(xdpchain__add_program(fw, &filter, &fw_id) == 0);
	CHECK(xdpchain__add_program(probe, &count, &probe_id) == 0);
	CHECK(probe_heard.n == 1 && probe_heard.ch[0].action == XDPCHAIN_ACTION_ADDED);
	CHECK(probe_heard.ch[0].has_id && probe_heard.ch[0].id == probe_id);
	CHECK(!strcmp(probe_heard.ch[0].owner, "probe") && probe_heard.ch[0].prog_id > 0);
	CHECK(xdpchain__component_count(fw) == 2 && xdpchain__component_count(probe) == 2);
	XDPCHAIN_OPTS(xdpchain_component_info, ci);
	CHECK(xdpchain__component(fw, 0, &ci) == 0);
	CHECK(ci.id == probe_id && !strcmp(ci.owner, "probe") && !ci.own);
	CHECK(xdpchain__component(fw, 1, &ci) == 0);
	CHECK(ci.id == fw_id && !strcmp(ci.owner, "fw") && ci.own);
	/* The order of the chain decides: the counter passes, the filter drops. */
	CHECK(verdict_for(probe, 9999) == XDP_DROP);
	FAILS(xdpchain__remove_program(probe, fw_id), -EBUSY, "of fw[");
	FAILS(xdpchain__replace_slot(probe, 1, &count), -EBUSY, "force");
	CHECK(xdpchain__component_count(fw) == 2);
	/* Detaching one owner's handle leaves the other's component. */
	CHECK(xdpchain__detach(probe) == 0);
	CHECK(xdpchain__component_count(fw) == 1);
	CHECK(xdpchain__component(fw, 0, &ci) == 0 && ci.id == fw_id);
	CHECK(verdict_for(fw, 9999) == XDP_DROP);
	/* With force, another owner's component can go. */
	CHECK(xdpchain__add_program(probe, &count, &probe_id) == 0);
	{
		XDPCHAIN_OPTS(xdpchain_open_opts, bo, .ifname = iface, .owner = "boss", .force = true,
			      .report = hear, .report_ctx = &boss_heard);
		CHECK(xdpchain__open(&bo, &boss) == 0);
		CHECK(xdpchain__remove_program(boss, fw_id) == 0);
		/* Another owner's component is dropped, and said to be. */
		CHECK(boss_heard.n == 1 && boss_heard.ch[0].action == XDPCHAIN_ACTION_DROPPED);
		CHECK(boss_heard.ch[0].id == fw_id && !strcmp(boss_heard.ch[0].owner, "fw"));
	}
	CHECK(xdpchain__component_count(fw) == 1);
	FAILS(xdpchain__detach(fw), -ENOENT, "not attached");
	/* The chain leaves the interface with its last component. */
	CHECK(xdpchain__detach(probe) == 0);
	FAILS(xdpchain__test_run(fw, "x", 1, &fw_id), -ENOENT, "runs no chain");
	xdpchain__free(fw);
	xdpchain__free(probe);
	xdpchain__free(boss);
}

/* Option structs: bytes past the last known field must be zero, padding
 * included; XDPCHAIN_OPTS zeroes it. */
/* A program its loader must configure: a read-only verdict, a map of no
 * size. Set before loading, as its own loader would. */
static void configured(const char *iface)
{
	struct xdpchain *c = NULL;
	unsigned int verdict = XDP_TX;
	unsigned short slot = 1;
	struct xdpchain_global globals[] = {
		{ .name = "cfg_verdict", .value = &verdict, .size = sizeof(verdict) },
		{ .name = "cfg_slot", .value = &slot, .size = sizeof(slot) },
	};
	struct xdpchain_map_size sizes[] = { { .name = "hits", .max_entries = 2 } };

	{
		XDPCHAIN_OPTS(xdpchain_open_opts, oo, .ifname = iface, .owner = "configured");
		CHECK(xdpchain__open(&oo, &c) == 0);
	}
	{
		XDPCHAIN_OPTS(xdpchain_program_opts, p, .path = obj("configured"), .globals = globals,
			      .globals_cnt = 2, .map_sizes = NULL, .map_sizes_cnt = 1);
		FAILS(xdpchain__add_program(c, &p, NULL), -EINVAL, "map_sizes is NULL");
	}
	{
		struct xdpchain_global short_one = { .name = "cfg_verdict", .value = &slot,
						     .size = sizeof(slot) };
		XDPCHAIN_OPTS(xdpchain_program_opts, p, .path = obj("configured"),
			      .globals = &short_one, .globals_cnt = 1);
		FAILS(xdpchain__add_program(c, &p, NULL), -EINVAL, "4 bytes");
	}
	{
		struct xdpchain_map_size none = { .name = "no_such_map", .max_entries = 1 };
		XDPCHAIN_OPTS(xdpchain_program_opts, p, .path = obj("configured"), .map_sizes = &none,
			      .map_sizes_cnt = 1);
		FAILS(xdpchain__add_program(c, &p, NULL), -EINVAL, "no_such_map");
	}
	CHECK(xdpchain__component_count(c) == 0);
	{
		XDPCHAIN_OPTS(xdpchain_program_opts, p, .path = obj("configured"), .globals = globals,
			      .globals_cnt = 2, .map_sizes = sizes, .map_sizes_cnt = 1);
		CHECK(xdpchain__add_program(c, &p, NULL) == 0);
	}
	CHECK(verdict_for(c, 53) == XDP_TX);
	CHECK(xdpchain__detach(c) == 0);
	xdpchain__free(c);
}

/* Programs as older sources and other licences ship them. */
static void shipped(const char *iface, const char *tmp)
{
	struct xdpchain *c = NULL;
	char out[512];

	{
		XDPCHAIN_OPTS(xdpchain_open_opts, oo, .ifname = iface, .owner = "shipped");
		CHECK(xdpchain__open(&oo, &c) == 0);
	}
	{
		/* SEC("xdp_patch_ports"), which libbpf 1.x no longer types. */
		XDPCHAIN_OPTS(xdpchain_program_opts, p, .path = obj("oldsec"));
		CHECK(xdpchain__add_program(c, &p, NULL) == 0);
	}
	CHECK(verdict_for(c, 53) == XDP_TX);
	CHECK(xdpchain__detach(c) == 0);
	xdpchain__free(c);

	/* One licence per linked chain: a GPL-only helper and a proprietary
	 * licence do not link, and nothing is written. */
	CHECK(xdpchain__open(NULL, &c) == 0);
	{
		XDPCHAIN_OPTS(xdpchain_program_opts, p, .path = obj("gplonly"));
		CHECK(xdpchain__add_program(c, &p, NULL) == 0);
	}
	{
		XDPCHAIN_OPTS(xdpchain_program_opts, p, .path = obj("proprietary"));
		CHECK(xdpchain__add_program(c, &p, NULL) == 0);
	}
	snprintf(out, sizeof(out), "%s/licences.o", tmp);
	{
		XDPCHAIN_OPTS(xdpchain_link_opts, l, .path = out);
		FAILS(xdpchain__link_static(c, &l), -EOPNOTSUPP, "proprietary.o:xdp_prop");
		CHECK(strstr(xdpchain_last_error(), "gplonly.o:xdp_printk") != NULL);
	}
	CHECK(access(out, F_OK) != 0);
	xdpchain__free(c);
}

static void option_padding(const char *iface)
{
	struct xdpchain *c = NULL;
	struct xdpchain_attach_opts a;

	{
		XDPCHAIN_OPTS(xdpchain_open_opts, oo, .ifname = iface);
		CHECK(xdpchain__open(&oo, &c) == 0);
	}
	memset(&a, 0, sizeof(a));
	a.sz = sizeof(a);
	((unsigned char *)&a)[offsetof(struct xdpchain_attach_opts, force) + 1] = 0xaa;
	FAILS(xdpchain__attach(c, &a), -EINVAL, "XDPCHAIN_OPTS");
	{
		XDPCHAIN_OPTS(xdpchain_attach_opts, z, .attach_mode = 0);
		FAILS(xdpchain__attach(c, &z), -ENOENT, "runs no chain");
	}
	{
		XDPCHAIN_OPTS(xdpchain_open_opts, oo, .ifname = iface, .netns = "xdpc-no-such-ns");
		struct xdpchain *n = NULL;
		FAILS(xdpchain__open(&oo, &n), -ENOENT, "xdpc-no-such-ns");
	}
	{
		XDPCHAIN_OPTS(xdpchain_open_opts, oo, .ifname = iface, .owner = "two words");
		struct xdpchain *n = NULL;
		FAILS(xdpchain__open(&oo, &n), -EINVAL, "owner name");
	}
	xdpchain__free(c);
}

/* Without privileges, loading is refused as such. */
static void unprivileged(const char *iface)
{
	pid_t pid = fork();
	int status;

	CHECK(pid >= 0);
	if (pid == 0) {
		XDPCHAIN_OPTS(xdpchain_open_opts, oo, .ifname = iface);
		XDPCHAIN_OPTS(xdpchain_program_opts, p, .path = obj("verdict"));
		struct xdpchain *c = NULL;
		int ret;

		if (setresgid(65534, 65534, 65534) || setresuid(65534, 65534, 65534))
			_exit(2);
		if (xdpchain__open(&oo, &c))
			_exit(3);
		ret = xdpchain__add_program(c, &p, NULL);
		xdpchain__free(c);
		_exit(ret == -EPERM && strstr(xdpchain_last_error(), "permission denied") ? 0 : 4);
	}
	CHECK(waitpid(pid, &status, 0) == pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* Dynamic chains need freplace: where the kernel refuses it, they say so. */
static void dynamic(const char *iface)
{
	XDPCHAIN_OPTS(xdpchain_open_opts, oo, .ifname = iface,
		      .mode = XDPCHAIN_MODE_DYNAMIC);
	XDPCHAIN_OPTS(xdpchain_program_opts, p, .path = obj("verdict"));
	struct xdpchain *c = NULL;
	int ret;

	CHECK(xdpchain__open(&oo, &c) == 0);
	CHECK(xdpchain__mode(c) == XDPCHAIN_MODE_DYNAMIC);
	ret = xdpchain__add_program(c, &p, NULL);
	if (ret == 0) {
		CHECK(xdpchain__attach(c, NULL) == 0);
		CHECK(xdpchain__mode(c) == XDPCHAIN_MODE_DYNAMIC);
		CHECK(verdict_for(c, 1) == XDP_PASS);
		FAILS(xdpchain__link_static(c, NULL), -EINVAL, "not linked");
		CHECK(xdpchain__detach(c) == 0);
	} else {
		CHECK(ret == -EOPNOTSUPP);
		CHECK(strstr(xdpchain_last_error(), "freplace") != NULL);
	}
	xdpchain__free(c);
}

/* Run time per component: none until a handle switches timing on, then on
 * every packet; counts the same either way. */
static void timing(const char *iface)
{
	XDPCHAIN_OPTS(xdpchain_open_opts, oo, .ifname = iface, .owner = "timer", .counters = true);
	XDPCHAIN_OPTS(xdpchain_open_opts, bare, .ifname = iface, .no_counters = true);
	XDPCHAIN_OPTS(xdpchain_program_opts, p, .path = obj("counter"));
	XDPCHAIN_OPTS(xdpchain_program_opts, f, .path = obj("filter"), .has_priority = true,
		      .priority = 60);
	struct xdpchain_component_info info = { .sz = sizeof(info) };
	struct xdpchain *c = NULL, *own = NULL;
	int i;

	CHECK(xdpchain__open(&oo, &c) == 0);
	FAILS(xdpchain__set_timing(c, true), -ENOENT, "no chain");
	CHECK(xdpchain__add_program(c, &p, NULL) == 0);
	CHECK(xdpchain__add_program(c, &f, NULL) == 0);
	CHECK(verdict_for(c, 9999) == XDP_DROP);
	CHECK(xdpchain__component(c, 1, &info) == 0);
	CHECK(info.counters[XDP_DROP] == 1 && info.run_cnt == 0 && info.run_time_ns == 0);
	CHECK(xdpchain__set_timing(c, true) == 0);
	CHECK(xdpchain__set_timing(c, true) == 0);
	for (i = 0; i < 3; i++)
		CHECK(verdict_for(c, 9999) == XDP_DROP);
	for (i = 0; i < 2; i++) {
		CHECK(xdpchain__component(c, i, &info) == 0);
		CHECK(info.counters[i ? XDP_DROP : XDP_PASS] == 4);
		CHECK(info.run_cnt == 3 && info.run_time_ns > 0);
	}
	CHECK(xdpchain__set_timing(c, false) == 0);
	CHECK(xdpchain__set_timing(c, false) == 0);
	FAILS(xdpchain__set_timing(NULL, true), -EINVAL, "NULL");
	CHECK(xdpchain__open(NULL, &own) == 0);
	FAILS(xdpchain__set_timing(own, true), -EINVAL, "without an interface");
	xdpchain__free(own);
	CHECK(xdpchain__set_timing(c, true) == 0);
	CHECK(xdpchain__detach(c) == 0);
	/* Freed while on: the thread that renews it goes with the handle. */
	xdpchain__free(c);

	CHECK(xdpchain__open(&bare, &c) == 0);
	CHECK(xdpchain__add_program(c, &p, NULL) == 0);
	FAILS(xdpchain__set_timing(c, true), -EOPNOTSUPP, "counters on");
	CHECK(xdpchain__detach(c) == 0);
	xdpchain__free(c);
}

/* What xdpchain__apply() reported: "verb what" lines, and how many. */
struct applied {
	char lines[8][256];
	int n;
};

static void note_change(const char *ifname, const char *netns, const char *verb,
			const char *what, void *ctx)
{
	struct applied *a = ctx;

	if (netns == NULL && ifname[0] && a->n < 8)
		snprintf(a->lines[a->n++], sizeof(a->lines[0]), "%s %s", verb, what);
}

/* Writes a chains file declaring `iface` with `components`. */
static void chains_file(const char *path, const char *iface, const char *components)
{
	FILE *f = fopen(path, "w");

	CHECK(f != NULL);
	fprintf(f, "[[interface]]\nname = \"%s\"\n%s", iface, components);
	CHECK(fclose(f) == 0);
}

/* Chains files, applied as the command applies them. */
static void applying(const char *iface, const char *tmp)
{
	XDPCHAIN_OPTS(xdpchain_open_opts, oo, .ifname = iface);
	XDPCHAIN_OPTS(xdpchain_component_info, ci);
	struct xdpchain *c = NULL;
	struct applied a = { 0 };
	char path[512], two[1024];
	unsigned int ids[2];
	int i;

	snprintf(path, sizeof(path), "%s/chains.toml", tmp);
	snprintf(two, sizeof(two),
		 "[[interface.component]]\npath = \"%s\"\nowner = \"mon\"\n"
		 "[[interface.component]]\npath = \"%s\"\nprogram = \"xdpfilt_udp\"\npriority = 60\n",
		 obj("counter"), obj("filter"));
	chains_file(path, iface, two);
	CHECK(xdpchain__open(&oo, &c) == 0);
	{
		XDPCHAIN_OPTS(xdpchain_apply_opts, ao, .path = path, .dry_run = true,
			      .report = note_change, .ctx = &a);
		CHECK(xdpchain__apply(&ao) == 0);
		CHECK(a.n == 2 && !strncmp(a.lines[0], "add ", 4) && !strncmp(a.lines[1], "add ", 4));
		CHECK(xdpchain__component_count(c) == 0);
	}
	{
		XDPCHAIN_OPTS(xdpchain_apply_opts, ao, .path = path);
		CHECK(xdpchain__apply(&ao) == 0);
	}
	CHECK(xdpchain__component_count(c) == 2);
	for (i = 0; i < 2; i++) {
		CHECK(xdpchain__component(c, i, &ci) == 0 && ci.prog_id != 0);
		ids[i] = ci.prog_id;
	}
	CHECK(xdpchain__component(c, 0, &ci) == 0 && !strcmp(ci.owner, "mon"));
	CHECK(verdict_for(c, 9999) == XDP_DROP);
	/* Again: nothing changes, down to the program ids. */
	a.n = 0;
	{
		XDPCHAIN_OPTS(xdpchain_apply_opts, ao, .path = path, .report = note_change, .ctx = &a);
		CHECK(xdpchain__apply(&ao) == 0);
	}
	CHECK(a.n == 2 && !strncmp(a.lines[0], "keep ", 5) && !strncmp(a.lines[1], "keep ", 5));
	for (i = 0; i < 2; i++)
		CHECK(xdpchain__component(c, i, &ci) == 0 && ci.prog_id == ids[i]);
	/* A bad file: its file and line said, nothing changed. */
	chains_file(path, iface, "colour = \"red\"\n");
	{
		XDPCHAIN_OPTS(xdpchain_apply_opts, ao, .path = path);
		FAILS(xdpchain__apply(&ao), -EINVAL, "chains.toml:3: unknown field `colour`");
	}
	chains_file(path, iface, "[[interface.component]]\npath = \"/nonexistent/fw.o\"\n");
	{
		XDPCHAIN_OPTS(xdpchain_apply_opts, ao, .path = path);
		FAILS(xdpchain__apply(&ao), -ENOENT, "chains.toml:3: component /nonexistent/fw.o");
	}
	chains_file(path, iface, two);
	CHECK(chmod(path, 0666) == 0);
	{
		XDPCHAIN_OPTS(xdpchain_apply_opts, ao, .path = path);
		FAILS(xdpchain__apply(&ao), -EPERM, "other users could change");
	}
	CHECK(chmod(path, 0644) == 0);
	{
		XDPCHAIN_OPTS(xdpchain_apply_opts, ao, .path = path, .ifname = "xdpc-none0");
		CHECK(xdpchain__apply(&ao) == 0);
	}
	/* Nothing is declared with a namespace. */
	a.n = 0;
	{
		XDPCHAIN_OPTS(xdpchain_apply_opts, ao, .path = path, .netns = "/proc/self/ns/net",
			      .report = note_change, .ctx = &a);
		CHECK(xdpchain__apply(&ao) == 0 && a.n == 0);
	}
	for (i = 0; i < 2; i++)
		CHECK(xdpchain__component(c, i, &ci) == 0 && ci.prog_id == ids[i]);
	/* A declaration without components takes the file's out: the chain
	 * leaves the interface with them. */
	chains_file(path, iface, "");
	a.n = 0;
	{
		XDPCHAIN_OPTS(xdpchain_apply_opts, ao, .path = path, .ifname = iface,
			      .report = note_change, .ctx = &a);
		CHECK(xdpchain__apply(&ao) == 0);
	}
	CHECK(a.n == 2 && !strncmp(a.lines[0], "remove ", 7) && !strncmp(a.lines[1], "remove ", 7));
	CHECK(xdpchain__component_count(c) == 0);
	/* An interface that is not there is skipped. */
	chains_file(path, "xdpc-none0", two);
	a.n = 0;
	{
		XDPCHAIN_OPTS(xdpchain_apply_opts, ao, .path = path, .report = note_change, .ctx = &a);
		CHECK(xdpchain__apply(&ao) == 0);
	}
	CHECK(a.n == 1 && !strcmp(a.lines[0], "skip no such interface"));
	xdpchain__free(c);
}

int main(int argc, char **argv)
{
	char version[32];

	if (argc != 4) {
		fprintf(stderr, "usage: %s OBJDIR IFACE TMPDIR\n", argv[0]);
		return 2;
	}
	objdir = argv[1];
	CHECK(!strcmp(xdpchain_last_error(), ""));
	snprintf(version, sizeof(version), "%d.%d.%d", XDPCHAIN_VERSION_MAJOR,
		 XDPCHAIN_VERSION_MINOR, XDPCHAIN_VERSION_PATCH);
	CHECK(!strcmp(xdpchain_version(), version));
	opening(argv[2]);
	link_to_file(argv[3]);
	hostile(argv[3]);
	on_interface(argv[2]);
	two_owners(argv[2]);
	option_padding(argv[2]);
	configured(argv[2]);
	shipped(argv[2], argv[3]);
	applying(argv[2], argv[3]);
	unprivileged(argv[2]);
	dynamic(argv[2]);
	timing(argv[2]);
	printf("%d passed, 0 failed\n", passed);
	return 0;
}
