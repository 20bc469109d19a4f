/* SIGHUP (reload.c). */
#ifndef ECHOD_RELOAD_H
#define ECHOD_RELOAD_H

struct server;

void	reload_start(struct server *);
void	reload_wait_cb(int, short, void *);

#endif
