/*
 * bench/lb-tool: the traffic of bench/lb, in C so that no event loop or
 * collector adds its own jitter to the tails. Run inside a pod's network
 * namespace (ip netns exec):
 *
 *   serve <ip> <port> <name>
 *       answers every TCP connection: reads the request (one read), writes
 *       "<name>\n" and closes (the server closes first, so TIME_WAIT stays
 *       on the server and the client's ports are free again at once).
 *       Prints "listening" once it listens; runs until killed.
 *   connect <ip> <port> <count> <timeout_ms>
 *       <count> times, one after the other: a new TCP connection, a 5-byte
 *       request, the whole answer, close; each timed from socket() to the
 *       answer's end (CLOCK_MONOTONIC). Prints one line:
 *       "ok <count> <failures> p50 <us> p90 <us> p99 <us> max <us>".
 *   wait <ip> <port> <name> <timeout_ms> <gap_us>
 *       prints "ready", then asks again and again (new connection each
 *       time, <gap_us> apart) until the answer is "<name>"; prints
 *       "answered <CLOCK_REALTIME µs at the start of that attempt> <attempts>",
 *       or "timeout <attempts>".
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static double now_us(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int parse_addr(const char *ip, const char *port, struct sockaddr_in *sa)
{
	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	sa->sin_port = htons((unsigned short)atoi(port));
	return inet_pton(AF_INET, ip, &sa->sin_addr) == 1 ? 0 : -1;
}

static int serve(const struct sockaddr_in *sa, const char *name)
{
	int one = 1;
	int ls = socket(AF_INET, SOCK_STREAM, 0);
	char answer[256];
	char buf[256];
	int len = snprintf(answer, sizeof(answer), "%s\n", name);

	if (ls < 0 || setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(ls, (const struct sockaddr *)sa, sizeof(*sa)) < 0 || listen(ls, 1024) < 0) {
		perror("listen");
		return 1;
	}
	printf("listening\n");
	fflush(stdout);
	for (;;) {
		int c = accept(ls, NULL, NULL);

		if (c < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			perror("accept");
			return 1;
		}
		setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if (read(c, buf, sizeof(buf)) > 0)
			(void)!write(c, answer, (size_t)len);
		close(c);
	}
}

/*
 * One request/response on a new connection; the answer (without its
 * newline) in out. Returns 0, or -1 on any failure or timeout.
 */
static int ask(const struct sockaddr_in *sa, int timeout_ms, char *out, size_t outlen)
{
	struct timeval tv = { .tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000 };
	int one = 1;
	size_t got = 0;
	int s = socket(AF_INET, SOCK_STREAM, 0);
	int ret = -1;

	if (s < 0)
		return -1;
	setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)); /* bounds connect() */
	setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(s, (const struct sockaddr *)sa, sizeof(*sa)) < 0 || write(s, "ping\n", 5) != 5)
		goto out;
	for (;;) {
		ssize_t n = read(s, out + got, outlen - 1 - got);

		if (n < 0)
			goto out;
		if (n == 0)
			break;
		got += (size_t)n;
		if (got == outlen - 1)
			break;
	}
	out[got] = '\0';
	if (got > 0 && out[got - 1] == '\n')
		out[got - 1] = '\0';
	ret = got > 0 ? 0 : -1;
out:
	close(s);
	return ret;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double quantile(const double *sorted, int n, double q)
{
	int i = (int)(q * n);

	return n == 0 ? 0 : sorted[i >= n ? n - 1 : i];
}

static int connect_loop(const struct sockaddr_in *sa, int count, int timeout_ms)
{
	double *t = calloc((size_t)count, sizeof(double));
	char answer[256];
	int n = 0, failures = 0;

	if (t == NULL)
		return 1;
	for (int i = 0; i < count; i++) {
		double t0 = now_us(CLOCK_MONOTONIC);

		if (ask(sa, timeout_ms, answer, sizeof(answer)) < 0) {
			failures++;
			continue;
		}
		t[n++] = now_us(CLOCK_MONOTONIC) - t0;
	}
	qsort(t, (size_t)n, sizeof(double), cmp_double);
	printf("ok %d %d p50 %.1f p90 %.1f p99 %.1f max %.1f\n", n, failures, quantile(t, n, 0.5), quantile(t, n, 0.9),
	       quantile(t, n, 0.99), n > 0 ? t[n - 1] : 0);
	free(t);
	return 0;
}

static int wait_for(const struct sockaddr_in *sa, const char *name, int timeout_ms, long gap_us)
{
	const struct timespec gap = { .tv_sec = gap_us / 1000000, .tv_nsec = (gap_us % 1000000) * 1000 };
	double deadline = now_us(CLOCK_MONOTONIC) + timeout_ms * 1e3;
	char answer[256];
	long attempts = 0;

	printf("ready\n");
	fflush(stdout);
	while (now_us(CLOCK_MONOTONIC) < deadline) {
		double start = now_us(CLOCK_REALTIME);

		attempts++;
		if (ask(sa, 200, answer, sizeof(answer)) == 0 && strcmp(answer, name) == 0) {
			printf("answered %.0f %ld\n", start, attempts);
			return 0;
		}
		nanosleep(&gap, NULL);
	}
	printf("timeout %ld\n", attempts);
	return 0;
}

int main(int argc, char **argv)
{
	struct sockaddr_in sa;

	if (argc == 5 && parse_addr(argv[2], argv[3], &sa) == 0) {
		if (strcmp(argv[1], "serve") == 0)
			return serve(&sa, argv[4]);
	}
	if (argc == 6 && parse_addr(argv[2], argv[3], &sa) == 0) {
		if (strcmp(argv[1], "connect") == 0)
			return connect_loop(&sa, atoi(argv[4]), atoi(argv[5]));
	}
	if (argc == 7 && parse_addr(argv[2], argv[3], &sa) == 0 && strcmp(argv[1], "wait") == 0)
		return wait_for(&sa, argv[4], atoi(argv[5]), atol(argv[6]));
	fprintf(stderr, "usage: lb-tool serve <ip> <port> <name> | connect <ip> <port> <count> <timeout_ms> | wait <ip> <port> <name> <timeout_ms> <gap_us>\n");
	return 2;
}
