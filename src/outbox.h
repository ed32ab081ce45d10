/*-------------------------------------------------------------------------
 * outbox.h
 *	  Waking the relay worker when a transaction that queued outbox rows
 *	  commits.
 *-------------------------------------------------------------------------
 */
#ifndef CENTRAL_HUB_OUTBOX_H
#define CENTRAL_HUB_OUTBOX_H

#include "datatype/timestamp.h"
#include "storage/latch.h"
#include "storage/spin.h"

#define OUTBOX_RELAY_STATE_LEN	64
#define OUTBOX_RELAY_ERROR_LEN	256

/*
 * Shared state between writers and the relay worker, and the relay's status
 * counters (hub.relay_status).  All fields are protected by mutex.
 */
typedef struct OutboxShared
{
	slock_t		mutex;
	Latch	   *relay_latch;	/* the relay worker's latch, NULL when none */
	uint64		wakeups;		/* commits that woke the relay */

	int			relay_pid;		/* 0 when no relay runs */
	bool		relay_nats_configured;	/* central_hub.nats_url set */
	bool		relay_connected;	/* connected to a NATS server */
	uint64		relay_sent;		/* messages confirmed by NATS */
	uint64		relay_notified; /* NOTIFYs committed */
	TimestampTz relay_last_publish_at;	/* last confirmed batch, 0 = never */
	TimestampTz relay_last_error_at;	/* 0 = no error yet */
	char		relay_state[OUTBOX_RELAY_STATE_LEN];
	char		relay_last_error[OUTBOX_RELAY_ERROR_LEN];
} OutboxShared;

extern OutboxShared *outbox_shared;

extern void outbox_init(void);
extern int64 outbox_queue(const char *topic, const char *service_name,
						  int64 ref_id);
extern void outbox_wake_relay_at_commit(void);
extern void outbox_set_relay_latch(Latch *latch);

#endif
