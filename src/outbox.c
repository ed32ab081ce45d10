/*-------------------------------------------------------------------------
 * outbox.c
 *	  Wake-up of the relay worker at commit.
 *
 * Writers never NOTIFY themselves (a notifying commit takes a cluster-wide
 * lock held through its WAL flush).  Instead a trigger that queued an outbox
 * row asks for a wake-up, and when the transaction commits we set the relay
 * worker's latch.  An aborted transaction wakes no one.  Without
 * shared_preload_libraries there is no shared memory and no relay: the rows
 * simply wait in hub.outbox.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"

#include "hub_catalog.h"
#include "outbox.h"

OutboxShared *outbox_shared = NULL;

static bool outbox_wake_pending = false;
static bool outbox_callback_registered = false;

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static void
outbox_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(MAXALIGN(sizeof(OutboxShared)));
}

static void
outbox_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	outbox_shared = ShmemInitStruct("central_hub outbox",
									sizeof(OutboxShared), &found);
	if (!found)
	{
		memset(outbox_shared, 0, sizeof(OutboxShared));
		SpinLockInit(&outbox_shared->mutex);
		outbox_shared->relay_latch = NULL;
		outbox_shared->wakeups = 0;
	}
	LWLockRelease(AddinShmemInitLock);
}

static void
outbox_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
			if (outbox_wake_pending && outbox_shared != NULL)
			{
				Latch	   *latch;

				SpinLockAcquire(&outbox_shared->mutex);
				latch = outbox_shared->relay_latch;
				outbox_shared->wakeups++;
				SpinLockRelease(&outbox_shared->mutex);
				if (latch != NULL)
					SetLatch(latch);
			}
			outbox_wake_pending = false;
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
			outbox_wake_pending = false;
			break;
		default:
			break;
	}
}

/*
 * Called by whatever queued an outbox row: wake the relay at commit.
 */
void
outbox_wake_relay_at_commit(void)
{
	if (!outbox_callback_registered)
	{
		RegisterXactCallback(outbox_xact_callback, NULL);
		outbox_callback_registered = true;
	}
	outbox_wake_pending = true;
}

/*
 * Queue one signal for the relay (topic 'config' or 'health', ref_id the row
 * it describes) in the current transaction; the relay is woken at commit.
 * Returns the outbox id.
 */
int64
outbox_queue(const char *topic, const char *service_name, int64 ref_id)
{
	Datum		values[OUTBOX_NATTS];
	bool		nulls[OUTBOX_NATTS] = {false};
	int64		id;

	/* an xid before the id: the relay's scan horizon relies on it */
	(void) GetCurrentTransactionId();
	values[OUTBOX_TOPIC - 1] = CStringGetTextDatum(topic);
	values[OUTBOX_SERVICE_NAME - 1] = CStringGetTextDatum(service_name);
	values[OUTBOX_REF_ID - 1] = Int64GetDatum(ref_id);
	values[OUTBOX_QUEUED_AT - 1] = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());
	nulls[OUTBOX_NOTIFIED_AT - 1] = true;
	id = hub_catalog_insert(HUB_TABLE_OUTBOX, values, nulls);
	outbox_wake_relay_at_commit();
	return id;
}

/*
 * The relay worker announces its latch (NULL when it exits).
 */
void
outbox_set_relay_latch(Latch *latch)
{
	if (outbox_shared == NULL)
		return;
	SpinLockAcquire(&outbox_shared->mutex);
	outbox_shared->relay_latch = latch;
	SpinLockRelease(&outbox_shared->mutex);
}

void
outbox_init(void)
{
	if (!process_shared_preload_libraries_in_progress)
		return;
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = outbox_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = outbox_shmem_startup;
}
