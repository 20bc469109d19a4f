/*
 * A preload library for the live tests (LD_PRELOAD): every other write(2)
 * to a TCP socket fails with EAGAIN, as it does when the socket's send
 * buffer is full, so that every write OpenSSL makes for echod meets a full
 * socket once, its close_notify too.  On loopback the kernel nearly always
 * has room for a record as small as a close_notify, even under a client
 * that reads slowly, so the tests could not otherwise make that case
 * happen.  echod's own writes of plain TCP echo go through writev(2) and
 * are left alone.  With EAGAIN_STUCK=N in the environment, writes of N
 * bytes or fewer to a TCP socket always fail, as they would to a client
 * that never reads: N=31 holds back a close_notify (24 bytes in TLS 1.3,
 * 31 in TLS 1.2 with AES-GCM) for good.  At exit it says how many writes
 * it failed.
 *
 * Built by the tests themselves: cc -shared -fPIC -o eagain.so eagain.c
 */
#define _GNU_SOURCE
#include <sys/socket.h>
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define EAGAIN_FDS	65536

static unsigned char	 eagain_failed[EAGAIN_FDS];	/* by descriptor */
static unsigned long	 eagain_count;
static size_t		 eagain_stuck;		/* EAGAIN_STUCK */

ssize_t	write(int, const void *, size_t);

/* Tell whether fd is a TCP socket. */
static int
eagain_tcp(int fd)
{
	struct sockaddr_storage	 ss;
	socklen_t		 len = sizeof(ss);
	int			 type, e = errno;
	socklen_t		 tlen = sizeof(type);

	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tlen) == -1 ||
	    type != SOCK_STREAM ||
	    getsockname(fd, (struct sockaddr *)&ss, &len) == -1) {
		errno = e;
		return (0);
	}
	errno = e;
	return (ss.ss_family == AF_INET || ss.ss_family == AF_INET6);
}

/* write(2), failing every other call on a TCP socket with EAGAIN. */
ssize_t
write(int fd, const void *buf, size_t len)
{
	static ssize_t	(*next)(int, const void *, size_t);

	if (next == NULL)
		*(void **)&next = dlsym(RTLD_NEXT, "write");
	if (fd >= 0 && fd < EAGAIN_FDS && len > 0 && eagain_tcp(fd)) {
		/* A descriptor is written by one thread of echod's at a time. */
		eagain_failed[fd] = !eagain_failed[fd];
		if (eagain_failed[fd] || len <= eagain_stuck) {
			__atomic_add_fetch(&eagain_count, 1, __ATOMIC_RELAXED);
			errno = EAGAIN;
			return (-1);
		}
	}
	return (next(fd, buf, len));
}

/* Read EAGAIN_STUCK. */
__attribute__((constructor)) static void
eagain_init(void)
{
	const char	*e = getenv("EAGAIN_STUCK");

	if (e != NULL)
		eagain_stuck = strtoul(e, NULL, 10);
}

/* Say how many writes failed, for the tests to see that it worked. */
__attribute__((destructor)) static void
eagain_report(void)
{
	char	 line[64];
	int	 n;

	n = snprintf(line, sizeof(line), "eagain.so: %lu writes failed\n",
	    __atomic_load_n(&eagain_count, __ATOMIC_RELAXED));
	if (n > 0 && (size_t)n < sizeof(line))
		(void)!write(STDERR_FILENO, line, (size_t)n);
}
