/* The load threads, and the main thread's measurement of them. */
#ifndef ECHOD_LOAD_H
#define ECHOD_LOAD_H

#include <stdio.h>

struct report;

int	load_start(void);
void	load_run(struct report *, FILE *);
void	load_free(void);

#endif
