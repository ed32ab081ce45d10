/*
 * cache.c: hubd's read cache (see cache.h).
 *
 * GET of a config is what a fleet does most (every instance at start, on
 * every hot-reload message, on every refresh), and each one otherwise costs
 * a database round trip that checks the API key and reads one row.  The
 * cache keeps the rendered 200 answer per service and the API keys found
 * valid, so a hit answers without the database.
 *
 * An entry is trusted only while something tells us when it goes stale:
 * the long-poll listener (longpoll.c) arms the cache while it LISTENs on
 * hub_config and hub_api_keys and the relay worker serves this database
 * (the relay sends NOTIFY hub_config after every committed change; a
 * trigger on hub.api_keys sends hub_api_keys).  A notification removes the
 * service's entry (every key entry); losing the connection or the relay
 * disarms and empties the cache.  --cache-ttl bounds the age of an entry
 * whatever happens (a NOTIFY lost to a full queue, a role's privileges
 * changed), and hubd's own writes remove their service's entry at once.
 *
 * Races: a reader that missed takes cache_epoch() before its database read
 * and stores the result only if no invalidation happened since, so an
 * answer read before a change can never be stored after the change's
 * notification.  One read-write lock guards both tables; hits take it
 * shared.
 */
#include "cache.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "hubd.h"

#define CACHE_BUCKETS 1024
/* Past these, a table is emptied before the next store (rare: a cap). */
#define CACHE_MAX_CONFIGS 10000
#define CACHE_MAX_BYTES (64 * 1024 * 1024)
#define CACHE_MAX_KEYS 1000

typedef struct CacheEntry
{
	struct CacheEntry *next;
	char	   *name;			/* service name or API key */
	char		version[HUBD_VERSION_MAX + 1];
	char	   *body;			/* rendered answer; NULL for keys */
	size_t		len;
	double		stored_at;		/* hubd_now() */
} CacheEntry;

typedef struct CacheTable
{
	CacheEntry *buckets[CACHE_BUCKETS];
	int			count;
	size_t		bytes;
	int			max_count;
} CacheTable;

static pthread_rwlock_t cache_lock = PTHREAD_RWLOCK_INITIALIZER;
static CacheTable cache_configs = {.max_count = CACHE_MAX_CONFIGS};
static CacheTable cache_keys = {.max_count = CACHE_MAX_KEYS};
static uint64_t cache_epoch_value;	/* written under the lock */
static bool cache_is_armed;		/* written under the lock */
static unsigned long cache_hits;
static unsigned long cache_misses;

static unsigned int
cache_hash(const char *s)
{
	unsigned int h = 2166136261u;

	for (; *s; s++)
		h = (h ^ (unsigned char) *s) * 16777619u;
	return h % CACHE_BUCKETS;
}

static void
cache_entry_free(CacheEntry *e)
{
	/* API keys are secrets: leave no copy behind */
	explicit_bzero(e->name, strlen(e->name));
	free(e->name);
	free(e->body);
	free(e);
}

/* Empties t; the caller holds the lock exclusively. */
static void
cache_table_clear(CacheTable *t)
{
	for (int i = 0; i < CACHE_BUCKETS; i++)
	{
		CacheEntry *e = t->buckets[i];

		while (e)
		{
			CacheEntry *next = e->next;

			cache_entry_free(e);
			e = next;
		}
		t->buckets[i] = NULL;
	}
	t->count = 0;
	t->bytes = 0;
}

/* Removes name's entry if any; the caller holds the lock exclusively. */
static void
cache_table_remove(CacheTable *t, const char *name)
{
	CacheEntry **p = &t->buckets[cache_hash(name)];

	for (; *p; p = &(*p)->next)
	{
		if (strcmp((*p)->name, name) == 0)
		{
			CacheEntry *e = *p;

			*p = e->next;
			t->count--;
			t->bytes -= e->len;
			cache_entry_free(e);
			return;
		}
	}
}

/* name's entry if it is there and young enough; the caller holds the lock. */
static CacheEntry *
cache_table_find(CacheTable *t, const char *name)
{
	CacheEntry *e;

	for (e = t->buckets[cache_hash(name)]; e; e = e->next)
		if (strcmp(e->name, name) == 0)
			return hubd_now() - e->stored_at < hubd_options.cache_ttl_ms / 1000.0 ? e : NULL;
	return NULL;
}

/*
 * Stores (or replaces) name's entry, unless the cache is disarmed or was
 * invalidated since epoch.  Takes the lock.
 */
static void
cache_table_store(CacheTable *t, const char *name, const char *version,
				  const char *body, size_t len, uint64_t epoch)
{
	CacheEntry *e = calloc(1, sizeof(CacheEntry));

	if (e == NULL || (e->name = strdup(name)) == NULL ||
		(body != NULL && (e->body = malloc(len)) == NULL))
	{
		if (e)
		{
			free(e->name);
			free(e);
		}
		return;
	}
	if (body != NULL)
		memcpy(e->body, body, len);
	e->len = len;
	if (version)
		strncpy(e->version, version, HUBD_VERSION_MAX);
	e->stored_at = hubd_now();

	pthread_rwlock_wrlock(&cache_lock);
	if (!cache_is_armed || epoch != cache_epoch_value)
	{
		pthread_rwlock_unlock(&cache_lock);
		cache_entry_free(e);
		return;
	}
	cache_table_remove(t, name);
	if (t->count >= t->max_count || t->bytes + len > CACHE_MAX_BYTES)
		cache_table_clear(t);
	e->next = t->buckets[cache_hash(name)];
	t->buckets[cache_hash(name)] = e;
	t->count++;
	t->bytes += len;
	pthread_rwlock_unlock(&cache_lock);
}

void
cache_arm(bool armed)
{
	pthread_rwlock_wrlock(&cache_lock);
	if (armed != cache_is_armed)
	{
		cache_is_armed = armed;
		cache_epoch_value++;
		cache_table_clear(&cache_configs);
		cache_table_clear(&cache_keys);
	}
	pthread_rwlock_unlock(&cache_lock);
}

bool
cache_armed(void)
{
	bool		armed;

	pthread_rwlock_rdlock(&cache_lock);
	armed = cache_is_armed;
	pthread_rwlock_unlock(&cache_lock);
	return armed;
}

uint64_t
cache_epoch(void)
{
	uint64_t	epoch;

	pthread_rwlock_rdlock(&cache_lock);
	epoch = cache_epoch_value;
	pthread_rwlock_unlock(&cache_lock);
	return epoch;
}

void
cache_key_store(const char *key, uint64_t epoch)
{
	if (hubd_options.cache_ttl_ms > 0 && key != NULL)
		cache_table_store(&cache_keys, key, NULL, NULL, 0, epoch);
}

void
cache_keys_invalidate(void)
{
	pthread_rwlock_wrlock(&cache_lock);
	cache_epoch_value++;
	cache_table_clear(&cache_keys);
	pthread_rwlock_unlock(&cache_lock);
}

bool
cache_lookup(const char *key, const char *service, JsonBuf *body,
			 char *version, size_t version_size)
{
	CacheEntry *e = NULL;

	if (hubd_options.cache_ttl_ms == 0 || key == NULL)
		return false;
	pthread_rwlock_rdlock(&cache_lock);
	if (cache_is_armed && cache_table_find(&cache_keys, key) != NULL)
		e = cache_table_find(&cache_configs, service);
	if (e != NULL)
	{
		jsonbuf_append(body, e->body, e->len);
		strncpy(version, e->version, version_size - 1);
		version[version_size - 1] = '\0';
	}
	pthread_rwlock_unlock(&cache_lock);
	__atomic_add_fetch(e ? &cache_hits : &cache_misses, 1, __ATOMIC_RELAXED);
	return e != NULL;
}

void
cache_config_store(const char *service, const char *version, const char *body,
				   size_t len, uint64_t epoch)
{
	if (hubd_options.cache_ttl_ms > 0 && strlen(version) <= HUBD_VERSION_MAX)
		cache_table_store(&cache_configs, service, version, body, len, epoch);
}

void
cache_config_invalidate(const char *service)
{
	pthread_rwlock_wrlock(&cache_lock);
	cache_epoch_value++;
	if (service == NULL)
		cache_table_clear(&cache_configs);
	else
		cache_table_remove(&cache_configs, service);
	pthread_rwlock_unlock(&cache_lock);
}

unsigned long
cache_hits_total(void)
{
	return __atomic_load_n(&cache_hits, __ATOMIC_RELAXED);
}

unsigned long
cache_misses_total(void)
{
	return __atomic_load_n(&cache_misses, __ATOMIC_RELAXED);
}
