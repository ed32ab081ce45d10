/*
 * metrics.h: hubd's in-process counters, rendered by GET /metrics in the
 * Prometheus text format together with gauges read from the database.
 */
#ifndef HUBD_METRICS_H
#define HUBD_METRICS_H

#include "json.h"
#include "router.h"

/* Counts one answered request (status 100..599) and its latency. */
extern void metrics_record_request(RouteId route, int status, double seconds);

/* Counts one config change made through hubd (route = the writing route). */
extern void metrics_count_config_write(RouteId route);

/* Gauges of long-polls parked right now. */
extern void metrics_waiters_add(int delta);

/* Appends every in-process metric to out. */
extern void metrics_render(JsonBuf *out);

#endif							/* HUBD_METRICS_H */
