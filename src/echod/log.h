/* Logging to stderr, with syslog priorities. */
#ifndef ECHOD_LOG_H
#define ECHOD_LOG_H

#include <stdarg.h>
#include <syslog.h>

void	log_init(int);
void	log_setlevel(int);
int	log_getlevel(void);
void	log_msg(int, const char *, ...) __attribute__((format(printf, 2, 3)));
void	log_warn(const char *, ...) __attribute__((format(printf, 1, 2)));

#define log_warnx(...)	log_msg(LOG_WARNING, __VA_ARGS__)
#define log_notice(...)	log_msg(LOG_NOTICE, __VA_ARGS__)
#define log_info(...)	log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) do {						\
	if (log_getlevel() >= LOG_DEBUG)				\
		log_msg(LOG_DEBUG, __VA_ARGS__);			\
} while (0)

#endif
