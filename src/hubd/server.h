/*
 * server.h: the HTTP server of hubd (libmicrohttpd), see server.c.
 */
#ifndef HUBD_SERVER_H
#define HUBD_SERVER_H

#include "hubd.h"

/* Starts listening; false (logged) when it cannot. */
extern bool server_start(void);

/* Stops accepting, answers parked long-polls, then stops the threads. */
extern void server_stop(void);

#endif							/* HUBD_SERVER_H */
