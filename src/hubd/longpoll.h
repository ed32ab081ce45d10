/*
 * longpoll.h: parks GET /api/v1/config/{service}?wait=S&version=V requests
 * (suspended: no thread is held) and wakes them when the service's version
 * changes or their deadline passes.
 */
#ifndef HUBD_LONGPOLL_H
#define HUBD_LONGPOLL_H

#include <stdbool.h>

#include "hubd.h"

/* Starts the listener thread (its own connection, LISTEN hub_config). */
extern bool longpoll_start(const char *conninfo);

/* Stops the listener and wakes every parked request; later parks fail. */
extern void longpoll_stop(void);

/*
 * Parks req (its wait_* fields set) and suspends it; false when hubd is
 * stopping or too many requests are parked: answer at once then.
 */
extern bool longpoll_park(HubRequest *req);

/* Removes req from the parked list if it is there (request ended). */
extern void longpoll_unpark(HubRequest *req);

#endif							/* HUBD_LONGPOLL_H */
