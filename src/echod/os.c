/*
 * What echod asks of the operating system at start: how many CPUs it may
 * use, as many descriptors as it may have, and whom to run as.
 */
#include "config.h"

#include <sys/resource.h>
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <sched.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "log.h"
#include "os.h"
#include "server.h"

/* Descriptors kept aside for pipes, logging and the like. */
#define OS_FD_RESERVE	64

/* How many workers "auto" means: the CPUs this process may run on. */
unsigned
os_ncpus(void)
{
	cpu_set_t	 set;
	long		 n;

	if (sched_getaffinity(0, sizeof(set), &set) == 0 &&
	    CPU_COUNT(&set) > 0)
		return ((unsigned)CPU_COUNT(&set));
	n = sysconf(_SC_NPROCESSORS_ONLN);
	return (n > 0 ? (unsigned)n : 1);
}

/*
 * Raise the soft descriptor limit to the hard one, and warn if
 * max_connections cannot fit under it.
 */
void
os_raise_nofile(struct server *srv)
{
	struct rlimit	 rl;
	size_t		 max = (size_t)srv->conf.max_connections, i;
	rlim_t		 reserve = OS_FD_RESERVE;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1) {
		log_warn("getrlimit");
		return;
	}
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) == -1)
			log_warn("cannot raise the descriptor limit");
		else if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
			return;
	}
	/* A socket per worker for every address of every group. */
	for (i = 0; i < srv->conf.ngroups; i++)
		reserve += (rlim_t)srv->conf.groups[i].listen.n * srv->nworkers;
	/* The metrics endpoint never holds more than its own cap. */
	if (srv->conf.metrics_listen.n > 0)
		reserve += srv->conf.metrics_max_connections +
		    srv->conf.metrics_listen.n;
	if (max > 0 && rl.rlim_cur != RLIM_INFINITY &&
	    (rlim_t)max + reserve > rl.rlim_cur)
		log_warnx("max_connections %zu does not fit the descriptor "
		    "limit of %llu; connections beyond about %llu will wait",
		    max, (unsigned long long)rl.rlim_cur,
		    (unsigned long long)(rl.rlim_cur > reserve ?
		    rl.rlim_cur - reserve : 0));
	log_info("descriptor limit %llu", (unsigned long long)rl.rlim_cur);
}

/*
 * With user set and started as root: become that user, and its group, for
 * good, now that the sockets are bound.  Return 0 or a sysexits code.
 */
int
os_drop_privileges(struct server *srv)
{
	const char	*user = srv->conf.user;
	struct passwd	*pw;

	if (*user == '\0')
		return (EX_OK);
	if (geteuid() != 0) {
		log_warnx("user = %s is ignored: echod was not started as root",
		    user);
		return (EX_OK);
	}
	errno = 0;
	if ((pw = getpwnam(user)) == NULL) {
		log_msg(LOG_ERR, "user %s: %s", user,
		    errno != 0 ? strerror(errno) : "no such user");
		return (EX_NOUSER);
	}
	if (setgroups(1, &pw->pw_gid) == -1 ||
	    setresgid(pw->pw_gid, pw->pw_gid, pw->pw_gid) == -1 ||
	    setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid) == -1) {
		log_msg(LOG_ERR, "cannot become user %s: %s", user,
		    strerror(errno));
		return (EX_OSERR);
	}
	if (pw->pw_uid != 0 && (setuid(0) != -1 || seteuid(0) != -1)) {
		log_msg(LOG_ERR, "could become root again after dropping to "
		    "%s", user);
		return (EX_OSERR);
	}
	log_info("running as user %s (uid %u, gid %u)", user,
	    (unsigned)pw->pw_uid, (unsigned)pw->pw_gid);
	return (EX_OK);
}
