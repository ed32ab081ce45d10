/*-------------------------------------------------------------------------
 * outbox.h
 *	  Waking the relay worker when a transaction that queued outbox rows
 *	  commits.
 *-------------------------------------------------------------------------
 */
#ifndef CENTRAL_HUB_OUTBOX_H
#define CENTRAL_HUB_OUTBOX_H

#include "storage/latch.h"
#include "storage/spin.h"

/* Shared state between writers and the relay worker. */
typedef struct OutboxShared
{
	slock_t		mutex;
	Latch	   *relay_latch;	/* the relay worker's latch, NULL when none */
	uint64		wakeups;		/* commits that woke the relay */
} OutboxShared;

extern OutboxShared *outbox_shared;

extern void outbox_init(void);
extern int64 outbox_queue(const char *topic, const char *service_name,
						  int64 ref_id);
extern void outbox_wake_relay_at_commit(void);
extern void outbox_set_relay_latch(Latch *latch);

#endif
