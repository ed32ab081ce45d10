/*-------------------------------------------------------------------------
 * nats_client.h
 *	  The relay worker's connection to NATS (the only user of cnats).
 *
 * A client connects in the background and reconnects forever; publishing a
 * batch returns true only once NATS has confirmed every message of it (a
 * flush round trip in core mode, one JetStream ack per message when a
 * stream is configured).  Nothing here touches PostgreSQL state from cnats
 * threads: the callbacks only set the caller's latch.
 *-------------------------------------------------------------------------
 */
#ifndef CENTRAL_HUB_NATS_CLIENT_H
#define CENTRAL_HUB_NATS_CLIENT_H

#include "storage/latch.h"

typedef struct NatsClient NatsClient;

/* One message of a batch. */
typedef struct NatsClientMessage
{
	const char *subject;
	const char *body;
	int			body_len;
	const char *msg_id;			/* JetStream Nats-Msg-Id, for dedupe */
} NatsClientMessage;

extern NatsClient *nats_client_open(const char *urls, const char *stream,
									Latch *latch, char *errbuf, size_t errlen);
extern bool nats_client_connected(NatsClient *client);
extern int64 nats_client_max_payload(NatsClient *client);
extern bool nats_client_publish_batch(NatsClient *client,
									  const NatsClientMessage *msgs, int count,
									  int timeout_ms,
									  char *errbuf, size_t errlen);
extern void nats_client_close(NatsClient *client);

#endif
