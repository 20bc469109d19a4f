/*
 * Log lines go to stderr, one line each.  Under systemd (stderr is the
 * journal, as JOURNAL_STREAM says) each line starts with a "<N>" syslog
 * priority that journald turns into the entry's priority; elsewhere each line
 * starts with a UTC timestamp.  libevent's own messages are routed in here.
 */
#include "config.h"

#include <sys/stat.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "conf.h"
#include "log.h"

static int	log_level = LOG_INFO;
static int	log_journal;

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
	log_level = level;
	log_journal = log_is_journal();
	event_set_log_callback(log_event_cb);
}

/* Change the level, as a reload does. */
void
log_setlevel(int level)
{
	log_level = level;
}

/* The current level. */
int
log_getlevel(void)
{
	return (log_level);
}

/* Write one line at priority pri, with an optional errno text. */
static void
log_vwrite(int pri, const char *errstr, const char *fmt, va_list ap)
{
	char		 msg[1024], ts[32];
	struct timespec	 now;
	struct tm	 tm;

	if (pri > log_level)
		return;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (log_journal) {
		fprintf(stderr, "<%d>%s%s%s\n", pri, msg,
		    errstr != NULL ? ": " : "", errstr != NULL ? errstr : "");
		return;
	}
	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	fprintf(stderr, "%s.%03ldZ %s: %s%s%s\n", ts, now.tv_nsec / 1000000,
	    conf_log_level_name(pri), msg, errstr != NULL ? ": " : "",
	    errstr != NULL ? errstr : "");
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

/* Log an error with the text of errno and exit with a sysexits code. */
void
fatal(int ex, const char *fmt, ...)
{
	va_list	 ap;
	int	 saved = errno;

	va_start(ap, fmt);
	log_vwrite(LOG_ERR, strerror(saved), fmt, ap);
	va_end(ap);
	exit(ex);
}

/* Log an error and exit with a sysexits code. */
void
fatalx(int ex, const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	log_vwrite(LOG_ERR, NULL, fmt, ap);
	va_end(ap);
	exit(ex);
}
