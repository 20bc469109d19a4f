/* echoload's command line (options.c). */
#ifndef ECHOD_OPTIONS_H
#define ECHOD_OPTIONS_H

int	options_read(int, char *[]);

#endif
