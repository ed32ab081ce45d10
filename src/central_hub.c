/*-------------------------------------------------------------------------
 * central_hub.c
 *	  Library entry point: one init call per subsystem.
 *
 * Loaded through shared_preload_libraries the library also owns shared
 * memory and registers the background workers; loaded on first use it
 * provides the config store alone.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "utils/guc.h"

#include "central_hub.h"
#include "config_store.h"
#include "health_worker.h"
#include "outbox.h"
#include "relay_worker.h"

PG_MODULE_MAGIC;

char	   *hub_worker_database = NULL;

void		_PG_init(void);

void
_PG_init(void)
{
	/*
	 * A postmaster setting can only be defined while preloading; loaded on
	 * first use there are no workers for it to steer.
	 */
	if (process_shared_preload_libraries_in_progress)
		DefineCustomStringVariable("central_hub.database",
								   "Database the central_hub background workers serve.",
								   "Create the extension in this database.",
								   &hub_worker_database,
								   "postgres",
								   PGC_POSTMASTER, 0,
								   NULL, NULL, NULL);

	config_store_init();
	outbox_init();
	relay_worker_init();
	health_worker_init();

	MarkGUCPrefixReserved("central_hub");
}
