/*
 * Memory: how much echod may use (memory_limit = auto) and whether all
 * connections together have reached it, the kernel's TCP memory pressure
 * (which the drain waits out), and giving freed memory back to the system
 * after a load has passed.
 */
#include "config.h"

#include <errno.h>
#include <stdatomic.h>
#include <inttypes.h>
#include <limits.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "log.h"
#include "memory.h"
#include "os.h"
#include "server.h"
#include "worker.h"

#define MEMORY_CGROUP_ROOT	"/sys/fs/cgroup"
#define MEMORY_HOLD_MAX_MS	30000	/* longest backoff a drain waits out */
#define MEMORY_HOLD_MARGIN_MS	1000

/*
 * Read a cgroup memory limit file: a number of bytes, or "max" (none).
 * Return the limit, or 0 if there is none or the file cannot be read.
 */
static uint64_t
memory_read_limit(const char *path)
{
	FILE			*f;
	char			 buf[64], *end;
	unsigned long long	 v;

	if ((f = fopen(path, "r")) == NULL)
		return (0);
	if (fgets(buf, sizeof(buf), f) == NULL) {
		fclose(f);
		return (0);
	}
	fclose(f);
	if (buf[0] < '0' || buf[0] > '9')
		return (0);		/* "max" */
	errno = 0;
	v = strtoull(buf, &end, 10);
	if (errno != 0 || (*end != '\n' && *end != '\0'))
		return (0);
	/* cgroup v1 writes "no limit" as a huge page-rounded number. */
	if (v >= (unsigned long long)INT64_MAX / 2)
		return (0);
	return ((uint64_t)v);
}

/*
 * The smallest limit set on dir and its parents up to root, each in file
 * name; 0 if none is.
 */
static uint64_t
memory_cgroup_walk(const char *root, const char *dir, const char *name)
{
	char		 path[PATH_MAX];
	char		 rel[PATH_MAX];
	char		*slash;
	uint64_t	 v, min = 0;
	int		 n;

	n = snprintf(rel, sizeof(rel), "%s", dir);
	if (n < 0 || (size_t)n >= sizeof(rel))
		return (0);
	for (;;) {
		n = snprintf(path, sizeof(path), "%s%s/%s", root, rel, name);
		if (n > 0 && (size_t)n < sizeof(path) &&
		    (v = memory_read_limit(path)) > 0 && (min == 0 || v < min))
			min = v;
		if ((slash = strrchr(rel, '/')) == NULL)
			break;
		*slash = '\0';
	}
	return (min);
}

/*
 * The memory limit of the cgroup this process runs in (v2: memory.max;
 * v1: memory.limit_in_bytes), the smallest along its path; 0 if none.
 */
static uint64_t
memory_cgroup_limit(void)
{
	FILE		*f;
	char		 line[PATH_MAX + 32], *path;
	uint64_t	 v2 = 0, v1 = 0;

	if ((f = fopen("/proc/self/cgroup", "r")) == NULL)
		return (0);
	while (fgets(line, sizeof(line), f) != NULL) {
		line[strcspn(line, "\n")] = '\0';
		/* "0::/path" (v2) or "N:memory:/path" (v1). */
		if (strncmp(line, "0::", 3) == 0) {
			path = line + 3;
			v2 = memory_cgroup_walk(MEMORY_CGROUP_ROOT, path,
			    "memory.max");
			if (v2 == 0)
				v2 = memory_cgroup_walk(MEMORY_CGROUP_ROOT
				    "/unified", path, "memory.max");
		} else if ((path = strstr(line, ":memory:")) != NULL) {
			path += strlen(":memory:");
			v1 = memory_cgroup_walk(MEMORY_CGROUP_ROOT "/memory",
			    path, "memory.limit_in_bytes");
		}
	}
	fclose(f);
	if (v1 > 0 && (v2 == 0 || v1 < v2))
		return (v1);
	return (v2);
}

/*
 * The memory echod may use: the cgroup's limit where one is set and is
 * below the physical memory, else the physical memory.  *what says which.
 */
uint64_t
memory_available(const char **what)
{
	long		 pages = sysconf(_SC_PHYS_PAGES);
	long		 size = sysconf(_SC_PAGESIZE);
	uint64_t	 phys = 0, cg;

	if (pages > 0 && size > 0)
		phys = (uint64_t)pages * (uint64_t)size;
	cg = memory_cgroup_limit();
	if (cg > 0 && (phys == 0 || cg < phys)) {
		*what = "the cgroup's memory limit";
		return (cg);
	}
	*what = "physical memory";
	return (phys);
}

/*
 * Tell whether the kernel's TCP memory is under pressure, as the kernel
 * decides it: from when the pages TCP uses (/proc/net/sockstat) reach the
 * pressure threshold of net.ipv4.tcp_mem until they fall below its low
 * one; was says whether it was under pressure at the last look.  Under
 * pressure the kernel drops segments it receives and senders back off, so
 * data in flight can take seconds to arrive.  Return 1, 0, or -1 if it
 * cannot tell.
 */
int
memory_tcp_pressure(int was)
{
	FILE			*f;
	char			 line[256], *p;
	unsigned long long	 low, pressure, high, mem;
	int			 found = 0;

	if ((f = fopen("/proc/sys/net/ipv4/tcp_mem", "r")) == NULL)
		return (-1);
	if (fscanf(f, "%llu %llu %llu", &low, &pressure, &high) != 3) {
		fclose(f);
		return (-1);
	}
	fclose(f);
	if ((f = fopen("/proc/net/sockstat", "r")) == NULL)
		return (-1);
	while (!found && fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, "TCP:", 4) == 0 &&
		    (p = strstr(line, " mem ")) != NULL &&
		    sscanf(p, " mem %llu", &mem) == 1)
			found = 1;
	fclose(f);
	if (!found)
		return (-1);
	return (mem >= pressure || (was && mem >= low));
}

/*
 * Give memory freed since the last call back to the system, if the data
 * held has fallen by at least MEMORY_TRIM_STEP since its peak: after a
 * burst of clients the allocator otherwise keeps the pages of their
 * buffers.  held is the bytes of echo data held now, conns the open
 * connections, ms the time (now_ms); trimming locks each of the
 * allocator's arenas in turn, so it happens at most every
 * MEMORY_TRIM_EVERY_MS.  Return 1 if it trimmed.
 */
int
memory_trim(struct memory_trim *t, uint64_t held, uint64_t conns,
    uint64_t ms)
{
	/* About what a connection costs beyond its buffered data. */
	uint64_t	 now = held + conns * 2048;

	if (now > t->peak)
		t->peak = now;
	if (t->peak - now < MEMORY_TRIM_STEP ||
	    ms - t->last_ms < MEMORY_TRIM_EVERY_MS)
		return (0);
	t->peak = now;
	t->last_ms = ms;
#ifdef HAVE_MALLOC_TRIM
	malloc_trim(0);
	return (1);
#else
	return (0);
#endif
}

/*
 * Tell whether the echo data held by all workers has reached memory_limit.
 * Called by the workers, on their slow path only (echo left over).
 */
int
memory_over(struct server *srv)
{
	uint64_t	 limit;

	limit = atomic_load_explicit(&srv->live.memory_limit,
	    memory_order_relaxed);
	return (limit > 0 && memory_buffered(srv) >= limit);
}

/* The echo data held now by all workers. */
uint64_t
memory_buffered(struct server *srv)
{
	uint64_t	 sum = 0;
	unsigned	 i;

	for (i = 0; i < srv->nworkers; i++)
		sum += STAT_GET(&srv->workers[i], buffered);
	return (sum);
}

/*
 * Follow the kernel's TCP memory pressure for the drain.  Under pressure
 * the kernel drops what it receives and senders back off exponentially, so
 * a client's last data can arrive seconds after the previous byte, later
 * than any quiet period based on the connection's own timers.  A backoff
 * cannot have grown beyond the pressure episode that caused it, so no
 * connection gets its FIN before the episode's length (at most
 * MEMORY_HOLD_MAX_MS) plus a margin has passed since it ended.
 */
static void
memory_pressure(struct server *srv)
{
	uint64_t	 now = now_ms(), len;
	int		 p = memory_tcp_pressure(srv->pressure_since != 0);

	if (p == 1 && srv->pressure_since == 0)
		srv->pressure_since = now;
	if (srv->pressure_since == 0)
		return;
	len = now - srv->pressure_since;
	if (len > MEMORY_HOLD_MAX_MS)
		len = MEMORY_HOLD_MAX_MS;
	atomic_store_explicit(&srv->drain_hold_ms, now + len +
	    MEMORY_HOLD_MARGIN_MS, memory_order_relaxed);
	if (srv->draining && !srv->pressure_logged) {
		srv->pressure_logged = 1;
		log_notice("TCP memory is under pressure: the drain waits for "
		    "clients' retransmissions until it has been over for as "
		    "long as it lasted");
	}
	if (p != 1)
		srv->pressure_since = 0;	/* the episode is over */
}

/* Timer callback: memory pressure, and memory back after a load. */
void
memory_cb(evutil_socket_t fd, short what, void *arg)
{
	struct server	*srv = arg;
	struct totals	 t;

	memory_pressure(srv);
	server_totals(srv, &t);
	if (memory_trim(&srv->trim, memory_buffered(srv), t.conns_active,
	    now_ms()))
		log_debug("gave freed memory back to the system in %" PRIu64
		    " ms", now_ms() - srv->trim.last_ms);
}
