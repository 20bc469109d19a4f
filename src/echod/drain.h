/* A worker's connections at shutdown (drain.c). */
#ifndef ECHOD_DRAIN_H
#define ECHOD_DRAIN_H

struct worker;

void	drain_all(struct worker *);
void	drain_cut_all(struct worker *);

#endif
