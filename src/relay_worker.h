/*-------------------------------------------------------------------------
 * relay_worker.h
 *	  The relay background worker: outbox -> NOTIFY and NATS.
 *-------------------------------------------------------------------------
 */
#ifndef CENTRAL_HUB_RELAY_WORKER_H
#define CENTRAL_HUB_RELAY_WORKER_H

#include "postgres.h"

extern void relay_worker_init(void);
extern PGDLLEXPORT void relay_worker_main(Datum main_arg);

#endif
