/*
 * Log lines go to stderr, one line each.  Under systemd (stderr is the
 * journal, as JOURNAL_STREAM says) each line starts with a "<N>" syslog
 * priority that journald turns into the entry's priority; elsewhere each line
 * starts with a UTC timestamp.  libevent's own messages are routed in here.
 */
#include "config.h"

#include <sys/stat.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "conf.h"
#include "log.h"

#define LOG_REPEAT_SECONDS	1	/* identical warnings: one per second */

static _Atomic int	log_level = LOG_INFO;
static int		log_journal;

/* The last warning or error, to hold back identical repeats. */
static pthread_mutex_t	log_mu = PTHREAD_MUTEX_INITIALIZER;
static char		log_last[1024];
static time_t		log_last_shown;
static unsigned		log_suppressed;

/* Tell whether stderr is the stream that JOURNAL_STREAM names. */
static int
log_is_journal(void)
{
	const char		*js = getenv("JOURNAL_STREAM");
	unsigned long long	 dev, ino;
	struct stat		 st;

	if (js == NULL || sscanf(js, "%llu:%llu", &dev, &ino) != 2)
		return (0);
	if (fstat(STDERR_FILENO, &st) == -1)
		return (0);
	return ((unsigned long long)st.st_dev == dev &&
	    (unsigned long long)st.st_ino == ino);
}

/* Forward libevent's messages to our log. */
static void
log_event_cb(int severity, const char *msg)
{
	switch (severity) {
	case EVENT_LOG_DEBUG:
		log_debug("libevent: %s", msg);
		break;
	case EVENT_LOG_MSG:
		log_info("libevent: %s", msg);
		break;
	default:
		log_warnx("libevent: %s", msg);
		break;
	}
}

/* Set up logging at the given level. */
void
log_init(int level)
{
	log_setlevel(level);
	log_journal = log_is_journal();
	event_set_log_callback(log_event_cb);
}

/* Change the level, as a reload does. */
void
log_setlevel(int level)
{
	atomic_store_explicit(&log_level, level, memory_order_relaxed);
}

/* The current level. */
int
log_getlevel(void)
{
	return (atomic_load_explicit(&log_level, memory_order_relaxed));
}

/* Write one finished line at priority pri. */
static void
log_line(int pri, const char *msg)
{
	char		 ts[32];
	struct timespec	 now;
	struct tm	 tm;

	if (log_journal) {
		fprintf(stderr, "<%d>%s\n", pri, msg);
		return;
	}
	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	fprintf(stderr, "%s.%03ldZ %s: %s\n", ts, now.tv_nsec / 1000000,
	    conf_log_level_name(pri), msg);
}

/*
 * Log one message at priority pri, with an optional errno text.  A
 * warning or error identical to the last one is held back if that was
 * shown less than a second ago; the next one shown says how many were.
 */
static void
log_vwrite(int pri, const char *errstr, const char *fmt, va_list ap)
{
	char		 msg[1024], line[1100];
	size_t		 len;
	time_t		 now;

	if (pri > atomic_load_explicit(&log_level, memory_order_relaxed))
		return;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (errstr != NULL) {
		len = strlen(msg);
		snprintf(msg + len, sizeof(msg) - len, ": %s", errstr);
	}
	if (pri > LOG_WARNING) {
		log_line(pri, msg);
		return;
	}
	now = time(NULL);
	pthread_mutex_lock(&log_mu);
	if (strcmp(msg, log_last) == 0) {
		if (now - log_last_shown < LOG_REPEAT_SECONDS) {
			log_suppressed++;
			pthread_mutex_unlock(&log_mu);
			return;
		}
		if (log_suppressed > 0) {
			snprintf(line, sizeof(line), "%s (%u identical messages "
			    "suppressed)", msg, log_suppressed);
			log_line(pri, line);
		} else
			log_line(pri, msg);
	} else {
		if (log_suppressed > 0) {
			snprintf(line, sizeof(line), "%u more of: %s",
			    log_suppressed, log_last);
			log_line(LOG_WARNING, line);
		}
		snprintf(log_last, sizeof(log_last), "%s", msg);
		log_line(pri, msg);
	}
	log_suppressed = 0;
	log_last_shown = now;
	pthread_mutex_unlock(&log_mu);
}

/* Log a message at priority pri. */
void
log_msg(int pri, const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	log_vwrite(pri, NULL, fmt, ap);
	va_end(ap);
}

/* Log a warning followed by the text of errno. */
void
log_warn(const char *fmt, ...)
{
	va_list	 ap;
	int	 saved = errno;

	va_start(ap, fmt);
	log_vwrite(LOG_WARNING, strerror(saved), fmt, ap);
	va_end(ap);
}
