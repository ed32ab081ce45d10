/*
 * metrics.c: request counters by route and status, latency histograms by
 * route, config writes by kind, parked long-polls (see metrics.h).  All
 * counters are updated with relaxed atomics from the worker threads; a
 * scrape reads them without locking (each value is consistent by itself).
 */
#include "metrics.h"

#include "cache.h"
#include "db.h"

#define METRICS_STATUS_MIN 100
#define METRICS_STATUS_MAX 599

static const double metrics_buckets[] = {
	0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
	1, 2.5, 5, 10, 30, 60, 300
};

#define METRICS_NBUCKETS (sizeof(metrics_buckets) / sizeof(metrics_buckets[0]))

static unsigned long metrics_requests[ROUTE_COUNT][METRICS_STATUS_MAX - METRICS_STATUS_MIN + 1];
static unsigned long metrics_latency_buckets[ROUTE_COUNT][METRICS_NBUCKETS];
static unsigned long metrics_latency_count[ROUTE_COUNT];
static unsigned long metrics_latency_sum_us[ROUTE_COUNT];
static unsigned long metrics_config_writes[ROUTE_COUNT];
static long metrics_waiters;

void
metrics_record_request(RouteId route, int status, double seconds)
{
	if (route < 0 || route >= ROUTE_COUNT)
		route = ROUTE_NONE;
	if (status < METRICS_STATUS_MIN || status > METRICS_STATUS_MAX)
		status = 500;
	__atomic_add_fetch(&metrics_requests[route][status - METRICS_STATUS_MIN], 1,
					   __ATOMIC_RELAXED);
	for (size_t i = 0; i < METRICS_NBUCKETS; i++)
	{
		if (seconds <= metrics_buckets[i])
		{
			__atomic_add_fetch(&metrics_latency_buckets[route][i], 1, __ATOMIC_RELAXED);
			break;
		}
	}
	__atomic_add_fetch(&metrics_latency_count[route], 1, __ATOMIC_RELAXED);
	__atomic_add_fetch(&metrics_latency_sum_us[route],
					   (unsigned long) (seconds * 1e6), __ATOMIC_RELAXED);
}

void
metrics_count_config_write(RouteId route)
{
	if (route >= 0 && route < ROUTE_COUNT)
		__atomic_add_fetch(&metrics_config_writes[route], 1, __ATOMIC_RELAXED);
}

void
metrics_waiters_add(int delta)
{
	__atomic_add_fetch(&metrics_waiters, delta, __ATOMIC_RELAXED);
}

static unsigned long
metrics_load(const unsigned long *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

void
metrics_render(JsonBuf *out)
{
	static const struct
	{
		RouteId		route;
		const char *kind;
	}			writes[] = {
		{ROUTE_CONFIG_PATCH, "patch"},
		{ROUTE_CONFIG_PUT, "put"},
		{ROUTE_CONFIG_DELETE, "delete"},
		{ROUTE_CONFIG_ROLLBACK, "rollback"},
	};

	jsonbuf_puts(out,
				 "# HELP hubd_http_requests_total HTTP requests answered, by route and status.\n"
				 "# TYPE hubd_http_requests_total counter\n");
	for (int r = 0; r < ROUTE_COUNT; r++)
		for (int s = 0; s <= METRICS_STATUS_MAX - METRICS_STATUS_MIN; s++)
		{
			unsigned long n = metrics_load(&metrics_requests[r][s]);

			if (n > 0)
				jsonbuf_printf(out,
							   "hubd_http_requests_total{route=\"%s\",status=\"%d\"} %lu\n",
							   router_route_name(r), s + METRICS_STATUS_MIN, n);
		}

	jsonbuf_puts(out,
				 "# HELP hubd_http_request_duration_seconds Time from request arrival to response, by route.\n"
				 "# TYPE hubd_http_request_duration_seconds histogram\n");
	for (int r = 0; r < ROUTE_COUNT; r++)
	{
		unsigned long count = metrics_load(&metrics_latency_count[r]);
		unsigned long cumulative = 0;

		if (count == 0)
			continue;
		for (size_t i = 0; i < METRICS_NBUCKETS; i++)
		{
			cumulative += metrics_load(&metrics_latency_buckets[r][i]);
			jsonbuf_printf(out,
						   "hubd_http_request_duration_seconds_bucket{route=\"%s\",le=\"%g\"} %lu\n",
						   router_route_name(r), metrics_buckets[i], cumulative);
		}
		jsonbuf_printf(out,
					   "hubd_http_request_duration_seconds_bucket{route=\"%s\",le=\"+Inf\"} %lu\n"
					   "hubd_http_request_duration_seconds_sum{route=\"%s\"} %.6f\n"
					   "hubd_http_request_duration_seconds_count{route=\"%s\"} %lu\n",
					   router_route_name(r), count, router_route_name(r),
					   metrics_load(&metrics_latency_sum_us[r]) / 1e6,
					   router_route_name(r), count);
	}

	jsonbuf_puts(out,
				 "# HELP hubd_config_writes_total Config changes made through this hubd, by kind.\n"
				 "# TYPE hubd_config_writes_total counter\n");
	for (size_t i = 0; i < sizeof(writes) / sizeof(writes[0]); i++)
		jsonbuf_printf(out, "hubd_config_writes_total{kind=\"%s\"} %lu\n",
					   writes[i].kind, metrics_load(&metrics_config_writes[writes[i].route]));

	jsonbuf_printf(out,
				   "# HELP hubd_longpoll_waiting Long-poll requests parked now.\n"
				   "# TYPE hubd_longpoll_waiting gauge\n"
				   "hubd_longpoll_waiting %ld\n"
				   "# HELP hubd_db_connects_total Database connections opened by worker threads.\n"
				   "# TYPE hubd_db_connects_total counter\n"
				   "hubd_db_connects_total %lu\n"
				   "# HELP hubd_db_connect_failures_total Failed database connection attempts.\n"
				   "# TYPE hubd_db_connect_failures_total counter\n"
				   "hubd_db_connect_failures_total %lu\n",
				   __atomic_load_n(&metrics_waiters, __ATOMIC_RELAXED),
				   db_connects_total(), db_connect_failures_total());
	jsonbuf_printf(out,
				   "# HELP hubd_config_cache_armed 1 while the read cache is kept exact by NOTIFY (relay serving this database).\n"
				   "# TYPE hubd_config_cache_armed gauge\n"
				   "hubd_config_cache_armed %d\n"
				   "# HELP hubd_config_cache_hits_total GETs of a config answered from the read cache.\n"
				   "# TYPE hubd_config_cache_hits_total counter\n"
				   "hubd_config_cache_hits_total %lu\n"
				   "# HELP hubd_config_cache_misses_total GETs of a config the read cache could not answer.\n"
				   "# TYPE hubd_config_cache_misses_total counter\n"
				   "hubd_config_cache_misses_total %lu\n",
				   cache_armed() ? 1 : 0, cache_hits_total(), cache_misses_total());
}
