/*-------------------------------------------------------------------------
 * health_worker.h
 *	  The health background worker: polls the registered instances'
 *	  health endpoints and records their status.
 *-------------------------------------------------------------------------
 */
#ifndef CENTRAL_HUB_HEALTH_WORKER_H
#define CENTRAL_HUB_HEALTH_WORKER_H

#include "fmgr.h"

extern void health_worker_init(void);
extern PGDLLEXPORT void health_worker_main(Datum main_arg);

#endif
