/*
 * sluice-cni front end: what a container runtime execs. It hands the
 * invocation (CNI_* environment, the config from stdin, its own namespace
 * identity) to the warm agent over its unix socket (POST /v1/cni/exec), which
 * runs the same TypeScript plugin in-process, and writes back exactly the
 * stdout, stderr and exit code the agent returns. A node process per ADD
 * costs ~26 ms of start-up and ~60 ms CPU; this costs ~1 ms.
 *
 * Fallback: the Node plugin (<dir of this binary>/sluice-cni-node, the
 * installer's wrapper), exec'd with the same environment and stdin replayed
 * from a memfd, when
 *   - CNI_COMMAND is VERSION, missing, or SLUICE_CNI_IN_PROCESS=0, or a crash
 *     test hook (SLUICE_CNI_TEST_CRASH_AT) is set, or stdin exceeds 4 MiB;
 *   - the config's agentSocket cannot be read with the minimal scan below (the
 *     Node plugin then reports the config error exactly as before);
 *   - the socket cannot be connected (agent down: the Node plugin answers 11,
 *     or 50 for STATUS, as it always did);
 *   - the agent answers 421 ("not mine": another socket in the config,
 *     "not here": another network or mount namespace) or 404 (an agent
 *     without this endpoint). Both come before the agent did any work.
 * Never both: once the request may have reached the agent's plugin code, a
 * failure is reported as code 11 and the shim does not fall back.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* The installer recognises its own binary by this string (never overwrites another's). */
const char sluice_cni_marker[] = "# sluice-cni wrapper: written by `sluice-cni install` (shim)";

#define DEFAULT_SOCKET "/var/run/sluice/agent.sock"
#define FALLBACK_NAME "sluice-cni-node"
#define MAX_STDIN (4u << 20)

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

/*
 * The config's top-level "agentSocket" string, or the default when the key is
 * absent. Returns 0 when it cannot tell (not an object, not a plain string,
 * escapes): the caller falls back and the Node plugin judges the config.
 */
static int scan_agent_socket(const char *s, size_t n, char *out, size_t outsz)
{
	size_t i = 0;
	int depth = 0;
	int expect_key = 0;
	const char *key = NULL;
	size_t keylen = 0;
	int found = 0;

	while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
		i++;
	if (i >= n || s[i] != '{')
		return 0;
	for (; i < n; i++) {
		char c = s[i];
		if (c == '"') {
			size_t start = ++i;
			while (i < n && s[i] != '"') {
				if (s[i] == '\\')
					i++;
				i++;
			}
			if (i >= n)
				return 0;
			if (depth == 1 && expect_key) {
				key = s + start;
				keylen = i - start;
				expect_key = 0;
			} else if (depth == 1 && key && keylen == 11 && memcmp(key, "agentSocket", 11) == 0) {
				size_t len = i - start;
				if (memchr(s + start, '\\', len) || len == 0 || len >= outsz || found)
					return 0;
				memcpy(out, s + start, len);
				out[len] = '\0';
				found = 1;
				key = NULL;
			} else {
				key = NULL;
			}
		} else if (c == '{' || c == '[') {
			if (depth == 1 && key && keylen == 11 && memcmp(key, "agentSocket", 11) == 0)
				return 0; /* not a string */
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
		} else if (depth == 1 && key && keylen == 11 && memcmp(key, "agentSocket", 11) == 0 &&
			   c != ':' && c != ' ' && c != '\t' && c != '\n' && c != '\r') {
			return 0; /* a number, true, null: not a string */
		}
	}
	if (depth != 0)
		return 0;
	if (!found) {
		if (strlen(DEFAULT_SOCKET) >= outsz)
			return 0;
		strcpy(out, DEFAULT_SOCKET);
	}
	return 1;
}

/* Everything until EOF; limit: at most that many bytes (0: no limit). */
static struct buf read_all(int fd, size_t limit)
{
	struct buf b = { 0 };
	char chunk[65536];
	for (;;) {
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
	return b;
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
static int try_again(const char *fmt, const char *detail)
{
	char msg[512];
	snprintf(msg, sizeof(msg), fmt, detail);
	struct buf b = { 0 };
	buf_str(&b, "{\"cniVersion\":\"1.1.0\",\"code\":11,\"msg\":");
	buf_json_string(&b, msg, strlen(msg));
	buf_str(&b, "}\n");
	write_all(1, b.p, b.len, 0);
	fprintf(stderr, "sluice-cni: error 11: %s\n", msg);
	return 1;
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

int main(int argc, char **argv)
{
	(void)argc;
	struct buf in = read_all(0, 0);
	const char *cmd = getenv("CNI_COMMAND");
	const char *mode = getenv("SLUICE_CNI_IN_PROCESS");
	char sock[sizeof(((struct sockaddr_un *)0)->sun_path)];

	if (!cmd || !*cmd || strcmp(cmd, "VERSION") == 0 || (mode && strcmp(mode, "0") == 0) ||
	    getenv("SLUICE_CNI_TEST_CRASH_AT") || in.len > MAX_STDIN || /* more than the agent takes */
	    !scan_agent_socket(in.p, in.len, sock, sizeof(sock)))
		return fallback(&in, argv);

	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	strcpy(addr.sun_path, sock);
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
	buf_printf(&body, ",\"namespaces\":{\"net\":\"%s\",\"mnt\":\"%s\"}}", netns, mntns);

	struct buf req = { 0 };
	buf_printf(&req, "POST /v1/cni/exec HTTP/1.1\r\nHost: sluice-agent\r\nContent-Type: application/json\r\n"
			 "Content-Length: %zu\r\nConnection: close\r\n\r\n", body.len);
	buf_add(&req, body.p, body.len);
	if (write_all(fd, req.p, req.len, MSG_NOSIGNAL) != 0)
		return try_again("cannot send the invocation to the agent at %s; retry", sock);

	struct buf resp = read_all(fd, MAX_STDIN * 2);
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
