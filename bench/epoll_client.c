/*
 * A second ping-pong client for the benchmark, written apart from echoload
 * (no libevent, no shared code) to check its figures: one thread, level-
 * triggered epoll, N TCP connections, each sending S bytes, reading exactly
 * S back, comparing them and sending again.  It counts round trips over D
 * seconds after all connections are up and a warm-up of W seconds, and
 * prints one JSON line.  Any mismatch, reset, short echo or failed connect
 * makes it exit 1.  Not part of echod.
 *
 * usage: epoll_client [-c connections] [-s size] [-d seconds]
 *                     [-w seconds] host:port
 */
#define _GNU_SOURCE
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <errno.h>
#include <netdb.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#define MAXEV		256
#define MAXCONNS	100000
#define MAXSIZE		(1 << 20)
#define MAXSECS		3600.0
#define CONNECT_SECS	10.0		/* most time to get every connection up */
#define PATSHIFT	256		/* distinct start offsets in the pattern */

enum { C_CONNECTING, C_RUNNING, C_CLOSED };
enum { P_CONNECT, P_WARMUP, P_MEASURE, P_DONE };

struct conn {
	int		 fd;
	int		 state;
	unsigned	 id;
	uint32_t	 seq;		/* this connection's message number */
	size_t		 sent;		/* bytes of the message written */
	size_t		 got;		/* bytes of its echo read and checked */
	int		 out;		/* watched for EPOLLOUT */
};

static struct {
	unsigned	 conns;
	size_t		 size;
	double		 duration, warmup;
} opt = { 100, 64, 3.0, 1.0 };

static int		 ep;
static unsigned char	*pat;		/* size + PATSHIFT bytes */
static unsigned char	*scratch;	/* size bytes */
static uint64_t		 mismatches, resets, shorts, connect_fail;

/* Seconds on the monotonic clock. */
static double
now_secs(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((double)ts.tv_sec + (double)ts.tv_nsec / 1e9);
}

/* This process's user and system CPU time, in seconds. */
static double
self_cpu(void)
{
	struct rusage	 ru;

	getrusage(RUSAGE_SELF, &ru);
	return ((double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	    (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6);
}

/* The bytes a connection's current message (and its echo) must hold. */
static const unsigned char *
conn_expect(const struct conn *c)
{
	return (pat + (c->id * 37u + c->seq) % PATSHIFT);
}

/* Close a connection; it takes no further part. */
static void
conn_close(struct conn *c)
{
	if (c->state == C_CLOSED)
		return;
	close(c->fd);		/* also leaves the epoll set */
	c->fd = -1;
	c->state = C_CLOSED;
}

/* Watch a connection for reading, and for writing while a send is due. */
static int
conn_watch(struct conn *c, int op)
{
	struct epoll_event	 ev;

	c->out = c->sent < opt.size;
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN | (c->out ? EPOLLOUT : 0);
	ev.data.ptr = c;
	return (epoll_ctl(ep, op, c->fd, &ev));
}

/* Write what is left of the current message; -1 when the socket failed. */
static int
conn_send(struct conn *c)
{
	ssize_t	 w;

	while (c->sent < opt.size) {
		w = write(c->fd, conn_expect(c) + c->sent, opt.size - c->sent);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				break;
			return (-1);
		}
		c->sent += (size_t)w;
	}
	/* EPOLLOUT on while a remainder waits, off once it is out. */
	if (c->out != (c->sent < opt.size))
		return (conn_watch(c, EPOLL_CTL_MOD));
	return (0);
}

/* Start the next message on a connection. */
static int
conn_next(struct conn *c)
{
	c->seq++;
	c->got = 0;
	c->sent = 0;
	return (conn_send(c));
}

/* Read and check some of the echo; 1 when it is complete, -1 on error. */
static int
conn_recv(struct conn *c)
{
	ssize_t	 r;

	do
		r = read(c->fd, scratch, opt.size - c->got);
	while (r < 0 && errno == EINTR);
	if (r < 0) {
		if (errno == EAGAIN)
			return (0);
		resets++;
		return (-1);
	}
	if (r == 0) {
		/* Closed by the server: short if it stopped inside an echo. */
		if (c->got > 0 || c->sent > 0)
			shorts++;
		else
			resets++;
		return (-1);
	}
	if (c->got + (size_t)r > c->sent ||
	    memcmp(scratch, conn_expect(c) + c->got, (size_t)r) != 0) {
		mismatches++;
		return (-1);
	}
	c->got += (size_t)r;
	return (c->got == opt.size);
}

/* Start a non-blocking connect; the connection is CONNECTING or CLOSED. */
static void
conn_open(struct conn *c, const struct addrinfo *ai)
{
	int	 on = 1;

	c->state = C_CONNECTING;
	c->sent = opt.size;	/* nothing to send until connected */
	c->fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, ai->ai_protocol);
	if (c->fd == -1)
		goto fail;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
	if (connect(c->fd, ai->ai_addr, ai->ai_addrlen) == -1 &&
	    errno != EINPROGRESS)
		goto fail_close;
	/* Connected or not yet: EPOLLOUT says when, either way. */
	c->sent = 0;
	if (conn_watch(c, EPOLL_CTL_ADD) == -1)
		goto fail_close;
	return;
fail_close:
	close(c->fd);
fail:
	c->fd = -1;
	c->state = C_CLOSED;
	connect_fail++;
}

/* A CONNECTING connection is writable: up (send the first message) or not. */
static int
conn_connected(struct conn *c)
{
	socklen_t	 sl = sizeof(int);
	int		 err = 0;

	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &sl) == -1 ||
	    err != 0) {
		connect_fail++;
		conn_close(c);
		return (-1);
	}
	c->state = C_RUNNING;
	if (conn_send(c) == -1) {
		resets++;
		conn_close(c);
		return (-1);
	}
	return (0);
}

/* Parse a number of seconds in [lo, MAXSECS]. */
static double
arg_secs(const char *name, const char *s, double lo)
{
	char	*end;
	double	 v;

	errno = 0;
	v = strtod(s, &end);
	if (errno != 0 || end == s || *end != '\0' ||
	    !(v >= lo && v <= MAXSECS)) {
		fprintf(stderr, "epoll_client: %s must be %g to %g seconds\n",
		    name, lo, MAXSECS);
		exit(EX_USAGE);
	}
	return (v);
}

/* Parse a whole number in [lo, hi]. */
static unsigned long
arg_num(const char *name, const char *s, unsigned long lo, unsigned long hi)
{
	char		*end;
	unsigned long	 v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || *s == '-' || v < lo ||
	    v > hi) {
		fprintf(stderr, "epoll_client: %s must be %lu to %lu\n", name,
		    lo, hi);
		exit(EX_USAGE);
	}
	return (v);
}

/* Resolve host:port ([v6]:port too) to one TCP address. */
static struct addrinfo *
resolve(char *target)
{
	struct addrinfo	 hints, *ai;
	char		*host = target, *port;
	int		 e;

	port = strrchr(target, ':');
	if (port == NULL || port == target || port[1] == '\0')
		return (NULL);
	*port++ = '\0';
	if (host[0] == '[' && port[-2] == ']') {
		host++;
		port[-2] = '\0';
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	if ((e = getaddrinfo(host, port, &hints, &ai)) != 0) {
		fprintf(stderr, "epoll_client: %s: %s\n", host,
		    gai_strerror(e));
		return (NULL);
	}
	return (ai);
}

/* Enough descriptors for every connection, raising the soft limit. */
static int
raise_nofile(unsigned need)
{
	struct rlimit	 rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
		return (-1);
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need) {
		if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need)
			return (-1);
		rl.rlim_cur = need;
		if (setrlimit(RLIMIT_NOFILE, &rl) == -1)
			return (-1);
	}
	return (0);
}

static void
usage(void)
{
	fprintf(stderr, "usage: epoll_client [-c connections] [-s size] "
	    "[-d seconds] [-w seconds] host:port\n");
	exit(EX_USAGE);
}

int
main(int argc, char *argv[])
{
	struct epoll_event	 evs[MAXEV];
	struct addrinfo		*ai;
	struct conn		*conns, *c;
	double			 t0, now, t_up = 0, t_meas = 0, t_end = 0, next;
	double			 cpu_meas = 0, cpu_end = 0, secs;
	uint64_t		 msgs = 0, errors;
	uint32_t		 x;
	unsigned		 i, live, pending;
	int			 ch, n, k, phase, timeout, r;

	t0 = now_secs();
	while ((ch = getopt(argc, argv, "c:s:d:w:")) != -1) {
		switch (ch) {
		case 'c':
			opt.conns = (unsigned)arg_num("-c", optarg, 1,
			    MAXCONNS);
			break;
		case 's':
			opt.size = arg_num("-s", optarg, 1, MAXSIZE);
			break;
		case 'd':
			opt.duration = arg_secs("-d", optarg, 0.1);
			break;
		case 'w':
			opt.warmup = arg_secs("-w", optarg, 0);
			break;
		default:
			usage();
		}
	}
	if (argc - optind != 1)
		usage();
	if ((ai = resolve(argv[optind])) == NULL)
		usage();
	signal(SIGPIPE, SIG_IGN);
	if (raise_nofile(opt.conns + 16) == -1) {
		fprintf(stderr, "epoll_client: cannot have %u descriptors\n",
		    opt.conns + 16);
		return (EX_OSERR);
	}

	/* One pattern; message k of connection i starts at (37i + k) % 256. */
	pat = malloc(opt.size + PATSHIFT);
	scratch = malloc(opt.size);
	conns = calloc(opt.conns, sizeof(*conns));
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (pat == NULL || scratch == NULL || conns == NULL || ep == -1) {
		perror("epoll_client");
		return (EX_OSERR);
	}
	for (i = 0, x = 12345; i < opt.size + PATSHIFT; i++) {
		x = x * 1103515245u + 12345u;
		pat[i] = (unsigned char)(x >> 16);
	}

	for (i = 0; i < opt.conns; i++) {
		conns[i].id = i;
		conn_open(&conns[i], ai);
	}
	freeaddrinfo(ai);
	pending = opt.conns - (unsigned)connect_fail;
	live = pending;

	phase = P_CONNECT;
	while (phase != P_DONE && live > 0) {
		now = now_secs();
		/* Phases move on the clock, before this batch of events. */
		if (phase == P_CONNECT && (pending == 0 ||
		    now >= t0 + CONNECT_SECS)) {
			for (i = 0; i < opt.conns; i++) {
				if (conns[i].state == C_CONNECTING) {
					connect_fail++;
					conn_close(&conns[i]);
					live--;
				}
			}
			pending = 0;
			phase = P_WARMUP;
			t_up = now;
		}
		if (phase == P_WARMUP && now >= t_up + opt.warmup) {
			phase = P_MEASURE;
			t_meas = now;
			cpu_meas = self_cpu();
		}
		if (phase == P_MEASURE && now >= t_meas + opt.duration) {
			t_end = now;
			cpu_end = self_cpu();
			phase = P_DONE;
			break;
		}
		next = phase == P_CONNECT ? t0 + CONNECT_SECS :
		    phase == P_WARMUP ? t_up + opt.warmup :
		    t_meas + opt.duration;
		timeout = (int)((next - now) * 1000) + 1;
		if (timeout < 1)
			timeout = 1;
		if (timeout > 1000)
			timeout = 1000;

		n = epoll_wait(ep, evs, MAXEV, timeout);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			perror("epoll_client: epoll_wait");
			return (EX_OSERR);
		}
		for (k = 0; k < n; k++) {
			c = evs[k].data.ptr;
			if (c->state == C_CLOSED)
				continue;
			if (c->state == C_CONNECTING) {
				pending--;
				if (conn_connected(c) == -1)
					live--;
				continue;
			}
			if (evs[k].events & EPOLLOUT && conn_send(c) == -1) {
				resets++;
				goto close;
			}
			if (!(evs[k].events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
				continue;
			/* EPOLLERR and EPOLLHUP too: read says what went wrong. */
			if ((r = conn_recv(c)) == -1)
				goto close;
			if (r == 1) {
				if (phase == P_MEASURE)
					msgs++;
				if (conn_next(c) == -1) {
					resets++;
					goto close;
				}
			}
			continue;
close:
			conn_close(c);
			live--;
		}
	}
	if (phase == P_MEASURE) {
		/* Every connection is gone: the window ends here. */
		t_end = now_secs();
		cpu_end = self_cpu();
	}
	for (i = 0; i < opt.conns; i++)
		conn_close(&conns[i]);

	secs = t_meas > 0 ? t_end - t_meas : 0;
	errors = mismatches + resets + shorts + connect_fail;
	printf("{\"client\":\"epoll_client\",\"connections\":%u,\"size\":%zu,"
	    "\"messages\":%llu,\"seconds\":%.3f,\"messages_per_sec\":%.1f,"
	    "\"window_start\":%.3f,\"client_cpu\":%.3f,\"errors\":%llu,"
	    "\"mismatches\":%llu,\"resets\":%llu,\"short\":%llu,"
	    "\"connect_failures\":%llu,\"ok\":%s}\n", opt.conns, opt.size,
	    (unsigned long long)msgs, secs, secs > 0 ? (double)msgs / secs : 0,
	    t_meas > 0 ? t_meas - t0 : 0, secs > 0 ? (cpu_end - cpu_meas) /
	    secs : 0, (unsigned long long)errors,
	    (unsigned long long)mismatches, (unsigned long long)resets,
	    (unsigned long long)shorts, (unsigned long long)connect_fail,
	    errors == 0 && secs > 0 ? "true" : "false");
	free(conns);
	free(scratch);
	free(pat);
	return (errors == 0 && secs > 0 ? 0 : 1);
}
