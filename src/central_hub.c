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
#include "utils/guc.h"

#include "config_store.h"
#include "outbox.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

void
_PG_init(void)
{
	config_store_init();
	outbox_init();

	MarkGUCPrefixReserved("central_hub");
}
