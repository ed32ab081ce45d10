/*
 * cache.h: hubd's read cache for GET /api/v1/config/{service}: rendered
 * answers and validated API keys, kept for at most --cache-ttl and only
 * while a NOTIFY invalidates them (see cache.c for when that is).
 */
#ifndef HUBD_CACHE_H
#define HUBD_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "json.h"

/* Whether entries may be used and stored (the listener arms it). */
extern void cache_arm(bool armed);
extern bool cache_armed(void);

/*
 * Epoch of the cache before a database read: an entry read from the
 * database is stored only if no invalidation happened since.
 */
extern uint64_t cache_epoch(void);

/* Remembers that the database found key valid. */
extern void cache_key_store(const char *key, uint64_t epoch);
/* Every key: hub.api_keys changed. */
extern void cache_keys_invalidate(void);

/*
 * When key is known valid and service's answer is cached: copies the
 * answer into body and its version into version, and returns true.
 */
extern bool cache_lookup(const char *key, const char *service, JsonBuf *body,
						 char *version, size_t version_size);
extern void cache_config_store(const char *service, const char *version,
							   const char *body, size_t len, uint64_t epoch);
/* One service (NULL: all) changed. */
extern void cache_config_invalidate(const char *service);

/* For /metrics. */
extern unsigned long cache_hits_total(void);
extern unsigned long cache_misses_total(void);

#endif							/* HUBD_CACHE_H */
