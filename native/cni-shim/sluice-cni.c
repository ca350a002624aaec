/*
 * sluice-cni front end: what a container runtime execs. It hands the
 * invocation (CNI_* environment, the config from stdin, its own namespace
 * identity) to the warm agent over its unix socket (POST /v1/cni/exec), which
 * runs the same TypeScript plugin in-process, and writes back exactly the
 * stdout, stderr and exit code the agent returns. A node process per ADD
 * costs ~26 ms of start-up and ~60 ms CPU; this costs ~1 ms.
 *
 * VERSION is answered here, without node and without the agent: the Node
 * plugin prints one fixed answer for it whatever stdin holds (it reads stdin
 * and ignores it: no config, bad JSON or any cniVersion give the same bytes),
 * and that answer is compiled in from src/cni/version.ts (VERSION_ANSWER, via
 * the generated plugin-constants.h: scripts/gen-cni-shim-header.mjs). Only
 * where the Node plugin's output would differ does VERSION go to it:
 * arguments on the command line (the installer), SLUICE_CNI_TIMING=1 (its
 * timing line on stderr), SLUICE_CNI_IN_PROCESS=0 (the Node plugin asked for).
 *
 * Fallback: the Node plugin (<dir of this binary>/sluice-cni-node, the
 * installer's wrapper), exec'd with the same environment and stdin replayed
 * from a memfd, when
 *   - CNI_COMMAND is missing, VERSION in the cases above, or
 *     SLUICE_CNI_IN_PROCESS=0, or a crash test hook (SLUICE_CNI_TEST_CRASH_AT)
 *     is set, or stdin exceeds 4 MiB;
 *   - the config's agentSocket cannot be read with the minimal scan below (the
 *     Node plugin then reports the config error itself);
 *   - the socket cannot be connected (agent down: the Node plugin answers 11,
 *     or 50 for STATUS);
 *   - the agent answers 421 ("not mine": another socket in the config,
 *     "not here": another network or mount namespace) or 404 (an agent
 *     without this endpoint). Both come before the agent did any work.
 * Never both: once the request may have reached the agent's plugin code, a
 * failure is reported as code 11 and the shim does not fall back.
 *
 * Paths: with its namespaces the shim sends the identity of every path the
 * plugin may open, as this process sees them — CNI_NETNS, every absolute path
 * string in the config, and the plugin's default paths (agent socket, pin
 * root, IPAM dir). An agent in another mount namespace (a DaemonSet pod) runs
 * the invocation only when each path the plugin will touch has the same
 * identity for it (src/cni/path-identity.ts, which reads the same format).
 *
 * Bounds: connecting and each write wait at most the config's timeoutMs (a
 * healthy agent accepts at once; a timed-out connect sent nothing, so it falls
 * back). The answer must come within AGENT_REQUESTS × timeoutMs +
 * LOCAL_WORK_MS of the request (below), or the shim answers 11 naming the
 * socket and the bound: a hung agent must not hang the runtime's call forever,
 * and a retried ADD or DEL is idempotent.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "plugin-constants.h" /* generated from src/cni: scripts/gen-cni-shim-header.mjs */

/* The installer recognises its own binary by this string (never overwrites another's). */
const char sluice_cni_marker[] = "# sluice-cni wrapper: written by `sluice-cni install` (shim)";

#define FALLBACK_NAME "sluice-cni-node"
#define MAX_STDIN (4u << 20)
/*
 * The wait for the agent's answer, from the config's timeoutMs (what the
 * plugin allows each of its own agent requests, and the agent's endpoint wait
 * is shorter still: sync.endpointTimeoutMs, 10 s). The longest legitimate
 * invocation is an ADD making three in a row — the node's pod CIDRs, the
 * registration (waits for the endpoint's policy to be in the maps), and on a
 * failure the undo's unregister — plus its local work (veth, BPF attach,
 * queueing behind other invocations in the agent): 5 s. Default 3 × 30 s + 5 s
 * = 95 s. A GC unregistering many stale endpoints from a slow agent can exceed
 * it: it then answers 11, keeps what it removed, and the next GC goes on.
 */
#define AGENT_REQUESTS 3
#define LOCAL_WORK_MS 5000

extern char **environ;

struct buf {
	char *p;
	size_t len, cap;
};

static void die_oom(void)
{
	fputs("sluice-cni: out of memory\n", stderr);
	exit(1);
}

static void buf_add(struct buf *b, const void *data, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		while (b->len + n + 1 > cap)
			cap *= 2;
		b->p = realloc(b->p, cap);
		if (!b->p)
			die_oom();
		b->cap = cap;
	}
	memcpy(b->p + b->len, data, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void buf_str(struct buf *b, const char *s) { buf_add(b, s, strlen(s)); }

static void buf_printf(struct buf *b, const char *fmt, ...)
{
	char tmp[256];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n > 0)
		buf_add(b, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

/* A JSON string literal: quotes, backslashes and control bytes escaped; other bytes as they are. */
static void buf_json_string(struct buf *b, const char *s, size_t n)
{
	buf_str(b, "\"");
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '"' || c == '\\') {
			char e[2] = { '\\', (char)c };
			buf_add(b, e, 2);
		} else if (c < 0x20) {
			buf_printf(b, "\\u%04x", c);
		} else {
			buf_add(b, &c, 1);
		}
	}
	buf_str(b, "\"");
}

/* What the minimal scan below found for a key. */
enum scan {
	SCAN_ABSENT,
	SCAN_STRING, /* *val: the text between the quotes, escapes left as they are */
	SCAN_BARE,   /* *val: a number, true, false or null as written */
	SCAN_OTHER,  /* an object or a list */
	SCAN_UNREADABLE, /* not one JSON object, or the key twice: the Node plugin judges it */
};

static int json_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

/* The config's top-level value for name: a minimal scan, not a JSON parser (the plugin validates the config). */
static enum scan scan_top_level(const char *s, size_t n, const char *name, const char **val, size_t *vlen)
{
	size_t i = 0, namelen = strlen(name);
	int depth = 0;
	int expect_key = 0;
	const char *key = NULL;
	size_t keylen = 0;
	enum scan found = SCAN_ABSENT;

	while (i < n && json_space(s[i]))
		i++;
	if (i >= n || s[i] != '{')
		return SCAN_UNREADABLE;
	for (; i < n; i++) {
		char c = s[i];
		/* At the top level, after our key: this character starts (or precedes) its value. */
		int ours = depth == 1 && key && keylen == namelen && memcmp(key, name, namelen) == 0;
		if (ours && c != ':' && !json_space(c) && found != SCAN_ABSENT)
			return SCAN_UNREADABLE; /* the key twice */
		if (c == '"') {
			size_t start = ++i;
			while (i < n && s[i] != '"') {
				if (s[i] == '\\')
					i++;
				i++;
			}
			if (i >= n)
				return SCAN_UNREADABLE;
			if (depth == 1 && expect_key) {
				key = s + start;
				keylen = i - start;
				expect_key = 0;
			} else {
				if (ours) {
					found = SCAN_STRING;
					*val = s + start;
					*vlen = i - start;
				}
				key = NULL;
			}
		} else if (c == '{' || c == '[') {
			if (ours)
				found = SCAN_OTHER;
			depth++;
			if (c == '{' && depth == 1)
				expect_key = 1;
			key = NULL;
		} else if (c == '}' || c == ']') {
			depth--;
			if (depth == 0)
				break;
		} else if (c == ',' && depth == 1) {
			expect_key = 1;
			key = NULL;
		} else if (ours && c != ':' && !json_space(c)) {
			size_t start = i;
			while (i + 1 < n && !json_space(s[i + 1]) && s[i + 1] != ',' && s[i + 1] != '}' && s[i + 1] != ']')
				i++;
			found = SCAN_BARE;
			*val = s + start;
			*vlen = i + 1 - start;
			key = NULL;
		}
	}
	return depth == 0 ? found : SCAN_UNREADABLE;
}

/*
 * The config's top-level "agentSocket" string, or the default when the key is
 * absent. Returns 0 when it cannot tell (not an object, not a plain string,
 * escapes): the caller falls back and the Node plugin judges the config.
 */
static int scan_agent_socket(const char *s, size_t n, char *out, size_t outsz)
{
	const char *val = SLUICE_CNI_DEFAULT_AGENT_SOCKET;
	size_t len = strlen(val);
	switch (scan_top_level(s, n, "agentSocket", &val, &len)) {
	case SCAN_ABSENT:
		break;
	case SCAN_STRING:
		if (len == 0 || memchr(val, '\\', len))
			return 0;
		break;
	default:
		return 0;
	}
	if (len >= outsz)
		return 0;
	memcpy(out, val, len);
	out[len] = '\0';
	return 1;
}

/*
 * The config's top-level "timeoutMs" when it is a plain positive integer (at
 * most 9 digits), else the plugin's default: only a bound on waiting for the agent,
 * which rejects an invalid value itself (code 7), at once.
 */
static long long scan_timeout_ms(const char *s, size_t n)
{
	const char *val = NULL;
	size_t len = 0;
	if (scan_top_level(s, n, "timeoutMs", &val, &len) != SCAN_BARE || len == 0 || len > 9 ||
	    strspn(val, "0123456789") < len)
		return SLUICE_CNI_DEFAULT_TIMEOUT_MS;
	long long ms = 0;
	for (size_t i = 0; i < len; i++)
		ms = ms * 10 + (val[i] - '0');
	return ms > 0 ? ms : SLUICE_CNI_DEFAULT_TIMEOUT_MS;
}

static long long now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/*
 * Everything until EOF into *out; limit: at most that many bytes (0: no
 * limit). timeout_ms > 0: a deadline for all of it, not per read. Returns -1
 * once the deadline passed before EOF, 0 otherwise (a read error ends it too).
 */
static int read_all(int fd, size_t limit, long long timeout_ms, struct buf *out)
{
	struct buf b = { 0 };
	char chunk[65536];
	long long deadline = timeout_ms > 0 ? now_ms() + timeout_ms : 0;
	int timed_out = 0;
	for (;;) {
		if (deadline) {
			long long left = deadline - now_ms();
			struct pollfd p = { .fd = fd, .events = POLLIN };
			int ready = left > 0 ? poll(&p, 1, left > INT_MAX ? INT_MAX : (int)left) : 0;
			if (ready < 0 && errno == EINTR)
				continue;
			if (ready == 0) {
				timed_out = 1;
				break;
			}
		}
		ssize_t r = read(fd, chunk, sizeof(chunk));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		if (limit && b.len + (size_t)r > limit)
			break;
		buf_add(&b, chunk, (size_t)r);
	}
	if (!b.p)
		buf_add(&b, "", 0);
	*out = b;
	return timed_out ? -1 : 0;
}

/* Execs the Node plugin with stdin replayed; returns only on failure. */
static int fallback(const struct buf *in, char **argv)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0) {
		perror("sluice-cni: readlink /proc/self/exe");
		return 1;
	}
	self[n] = '\0';
	char *slash = strrchr(self, '/');
	if (!slash || (size_t)(slash - self) + sizeof(FALLBACK_NAME) + 1 > sizeof(self))
		return 1;
	strcpy(slash + 1, FALLBACK_NAME);

	int fd = memfd_create("sluice-cni-stdin", 0);
	if (fd < 0) {
		perror("sluice-cni: memfd_create");
		return 1;
	}
	size_t off = 0;
	while (off < in->len) {
		ssize_t w = write(fd, in->p + off, in->len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			perror("sluice-cni: write memfd");
			return 1;
		}
		off += (size_t)w;
	}
	if (lseek(fd, 0, SEEK_SET) < 0 || dup2(fd, 0) < 0) {
		perror("sluice-cni: stdin replay");
		return 1;
	}
	close(fd);
	argv[0] = self;
	execv(self, argv);
	fprintf(stderr, "sluice-cni: cannot exec %s: %s\n", self, strerror(errno));
	return 1;
}

/* flags: MSG_NOSIGNAL for the socket (a closed agent is an error to report, not a SIGPIPE), 0 for a plain fd. */
static int write_all(int fd, const char *p, size_t n, int flags)
{
	while (n > 0) {
		ssize_t w = flags ? send(fd, p, n, flags) : write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* The spec's error object for a failure after the agent may have started: try again later. */
__attribute__((format(printf, 1, 2))) static int try_again(const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	struct buf b = { 0 };
	buf_str(&b, "{\"cniVersion\":\"" SLUICE_CNI_CURRENT_VERSION "\",\"code\":11,\"msg\":");
	buf_json_string(&b, msg, strlen(msg));
	buf_str(&b, "}\n");
	write_all(1, b.p, b.len, 0);
	fprintf(stderr, "sluice-cni: error 11: %s\n", msg);
	return 1;
}

/*
 * The identity of a path for the agent (src/cni/path-identity.ts): "dev:ino"
 * of the path (stat, symlinks followed; a netns bind mount stats as its
 * namespace), or of its nearest existing ancestor followed by "/" and the
 * rest of the path when it does not exist yet. Returns -1 when it cannot be
 * read (the agent then sees no identity for it).
 */
static int path_identity(const char *path, size_t len, char *out, size_t outsz)
{
	char dir[PATH_MAX];
	struct stat st;
	if (len == 0 || len >= sizeof(dir) || path[0] != '/')
		return -1;
	memcpy(dir, path, len);
	dir[len] = '\0';
	size_t cut = len;
	while (stat(dir, &st) != 0) {
		if ((errno != ENOENT && errno != ENOTDIR) || cut == 1)
			return -1;
		char *slash = strrchr(dir, '/');
		cut = slash == dir ? 1 : (size_t)(slash - dir);
		dir[cut] = '\0';
	}
	const char *rest = path + cut;
	if (*rest == '/')
		rest++;
	int n = snprintf(out, outsz, "%llu:%llu%s%.*s", (unsigned long long)st.st_dev, (unsigned long long)st.st_ino,
			 cut < len ? "/" : "", (int)(path + len - rest), rest);
	return n > 0 && (size_t)n < outsz ? 0 : -1;
}

#define MAX_PATHS 32

/* Paths whose identity the shim sends: no duplicates, at most MAX_PATHS. */
struct paths {
	const char *p[MAX_PATHS];
	size_t len[MAX_PATHS];
	int n;
};

static void paths_add(struct paths *ps, const char *p, size_t len)
{
	if (len == 0 || p[0] != '/' || memchr(p, '\\', len) || ps->n == MAX_PATHS)
		return;
	for (int i = 0; i < ps->n; i++)
		if (ps->len[i] == len && memcmp(ps->p[i], p, len) == 0)
			return;
	ps->p[ps->n] = p;
	ps->len[ps->n] = len;
	ps->n++;
}

/* Every string in the config that starts with "/" (keys too: harmless), without escapes. */
static void paths_from_config(struct paths *ps, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (s[i] != '"')
			continue;
		size_t start = ++i;
		int escaped = 0;
		while (i < n && s[i] != '"') {
			if (s[i] == '\\') {
				escaped = 1;
				i++;
			}
			i++;
		}
		if (i >= n)
			return;
		if (!escaped)
			paths_add(ps, s + start, i - start);
	}
}

/* ,"paths":{"<path>":"<identity>",…} */
static void buf_paths(struct buf *b, const struct paths *ps)
{
	char id[PATH_MAX + 64];
	int first = 1;
	buf_str(b, ",\"paths\":{");
	for (int i = 0; i < ps->n; i++) {
		if (path_identity(ps->p[i], ps->len[i], id, sizeof(id)) != 0)
			continue;
		if (!first)
			buf_str(b, ",");
		first = 0;
		buf_json_string(b, ps->p[i], ps->len[i]);
		buf_str(b, ":");
		buf_json_string(b, id, strlen(id));
	}
	buf_str(b, "}");
}

static int ns_identity(const char *path, char *out, size_t outsz)
{
	struct stat st;
	if (stat(path, &st) != 0)
		return -1;
	snprintf(out, outsz, "%llu:%llu", (unsigned long long)st.st_dev, (unsigned long long)st.st_ino);
	return 0;
}

/* Header value (case-insensitive name) from a response head, or NULL. */
static const char *header(const char *head, const char *name)
{
	size_t n = strlen(name);
	for (const char *line = strstr(head, "\r\n"); line; line = strstr(line + 2, "\r\n")) {
		const char *l = line + 2;
		if (strncasecmp(l, name, n) == 0 && l[n] == ':') {
			l += n + 1;
			while (*l == ' ')
				l++;
			return l;
		}
	}
	return NULL;
}

static int env_is(const char *name, const char *value)
{
	const char *v = getenv(name);
	return v && strcmp(v, value) == 0;
}

int main(int argc, char **argv)
{
	/* All of stdin first, as the Node plugin reads it (VERSION included): the runtime's write never sees EPIPE. */
	struct buf in;
	read_all(0, 0, 0, &in);
	const char *cmd = getenv("CNI_COMMAND");
	int node_asked = env_is("SLUICE_CNI_IN_PROCESS", "0");
	char sock[sizeof(((struct sockaddr_un *)0)->sun_path)];

	/* VERSION: the Node plugin's bytes, unless its output would differ (see the top of this file). */
	if (cmd && strcmp(cmd, "VERSION") == 0 && argc == 1 && !node_asked && !env_is("SLUICE_CNI_TIMING", "1")) {
		write_all(1, SLUICE_CNI_VERSION_ANSWER, sizeof(SLUICE_CNI_VERSION_ANSWER) - 1, 0);
		return 0;
	}
	if (!cmd || !*cmd || strcmp(cmd, "VERSION") == 0 || node_asked ||
	    getenv("SLUICE_CNI_TEST_CRASH_AT") || in.len > MAX_STDIN || /* more than the agent takes */
	    !scan_agent_socket(in.p, in.len, sock, sizeof(sock)))
		return fallback(&in, argv);

	long long timeout_ms = scan_timeout_ms(in.p, in.len);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	strcpy(addr.sun_path, sock);
	/* Bounds connect (an agent whose accept backlog is full: EAGAIN, nothing sent, fall back) and each send. */
	struct timeval send_timeout = { .tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000 };
	if (fd >= 0)
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &send_timeout, sizeof(send_timeout));
	if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0) {
		if (fd >= 0)
			close(fd);
		return fallback(&in, argv);
	}

	char netns[64] = "", mntns[64] = "";
	ns_identity("/proc/self/ns/net", netns, sizeof(netns));
	ns_identity("/proc/self/ns/mnt", mntns, sizeof(mntns));
	struct buf body = { 0 };
	buf_str(&body, "{\"env\":{");
	int first = 1;
	for (char **e = environ; *e; e++) {
		const char *eq = strchr(*e, '=');
		if (strncmp(*e, "CNI_", 4) != 0 || !eq)
			continue;
		if (!first)
			buf_str(&body, ",");
		first = 0;
		buf_json_string(&body, *e, (size_t)(eq - *e));
		buf_str(&body, ":");
		buf_json_string(&body, eq + 1, strlen(eq + 1));
	}
	buf_str(&body, "},\"stdin\":");
	buf_json_string(&body, in.p, in.len);
	buf_printf(&body, ",\"namespaces\":{\"net\":\"%s\",\"mnt\":\"%s\"}", netns, mntns);
	struct paths paths = { .n = 0 };
	const char *cni_netns = getenv("CNI_NETNS");
	if (cni_netns)
		paths_add(&paths, cni_netns, strlen(cni_netns));
	paths_from_config(&paths, in.p, in.len);
	paths_add(&paths, SLUICE_CNI_DEFAULT_AGENT_SOCKET, strlen(SLUICE_CNI_DEFAULT_AGENT_SOCKET));
	paths_add(&paths, SLUICE_CNI_DEFAULT_PIN_ROOT, strlen(SLUICE_CNI_DEFAULT_PIN_ROOT));
	paths_add(&paths, SLUICE_CNI_DEFAULT_IPAM_DATA_DIR, strlen(SLUICE_CNI_DEFAULT_IPAM_DATA_DIR));
	buf_paths(&body, &paths);
	buf_str(&body, "}");

	struct buf req = { 0 };
	buf_printf(&req, "POST /v1/cni/exec HTTP/1.1\r\nHost: sluice-agent\r\nContent-Type: application/json\r\n"
			 "Content-Length: %zu\r\nConnection: close\r\n\r\n", body.len);
	buf_add(&req, body.p, body.len);
	if (write_all(fd, req.p, req.len, MSG_NOSIGNAL) != 0)
		return try_again("cannot send the invocation to the agent at %s (%s; timeoutMs %lld); retry", sock,
				 strerror(errno), timeout_ms);

	long long wait_ms = AGENT_REQUESTS * timeout_ms + LOCAL_WORK_MS;
	struct buf resp;
	if (read_all(fd, MAX_STDIN * 2, wait_ms, &resp) != 0)
		return try_again("the agent at %s took the invocation but did not answer within %lld ms "
				 "(%d x timeoutMs %lld + %d ms); it may still complete it: retry",
				 sock, wait_ms, AGENT_REQUESTS, timeout_ms, LOCAL_WORK_MS);
	close(fd);
	char *end = strstr(resp.p, "\r\n\r\n");
	int status = 0;
	if (!end || sscanf(resp.p, "HTTP/1.1 %d", &status) != 1)
		return try_again("the agent at %s closed the connection without an answer; retry", sock);
	*end = '\0';
	const char *payload = end + 4;
	size_t payload_len = resp.len - (size_t)(payload - resp.p);

	if (status == 421 || status == 404)
		return fallback(&in, argv);
	const char *exit_h = header(resp.p, "x-sluice-cni-exit");
	const char *stdout_h = header(resp.p, "x-sluice-cni-stdout");
	const char *len_h = header(resp.p, "content-length");
	if (status != 200 || !exit_h || !stdout_h || !len_h)
		return try_again("the agent at %s did not run the plugin; retry", sock);
	size_t total = strtoul(len_h, NULL, 10), out_len = strtoul(stdout_h, NULL, 10);
	if (total != payload_len || out_len > total)
		return try_again("the agent at %s sent a truncated answer; retry", sock);
	write_all(1, payload, out_len, 0);
	write_all(2, payload + out_len, total - out_len, 0);
	return atoi(exit_h);
}
