/*
 * routes.h: the route handlers and the helpers they share.
 */
#ifndef HUBD_ROUTES_H
#define HUBD_ROUTES_H

#include "db.h"
#include "hubd.h"

/* The request's API key: X-API-Key, else --default-key-file's (or NULL). */
extern const char *routes_api_key(HubRequest *req);

/*
 * routes_run: runs calls as the request's caller: prepends the API-key check
 * (SET LOCAL ROLE and actor) and sends everything as one transaction,
 * retrying serialization failures.  On failure the response is filled in
 * (401, 403, 404, 409, 412, 422, 503, ...) and false returned; on success
 * the caller reads out (its calls start at index *first) and clears it.
 */
extern bool routes_run(HubRequest *req, HubResponse *resp,
					   const DbCall *calls, int ncalls,
					   DbOutcome *out, int *first);

/* Reads the body as JSON: false (and 400 filled in) when malformed. */
extern bool routes_body_json(HubRequest *req, HubResponse *resp);

/*
 * The If-Match version (unquoted, W/ dropped) or NULL; malformed -> 400.
 * Sets *bad on a malformed header.
 */
extern const char *routes_if_match(HubRequest *req, char *out, size_t outsize,
								   bool *bad);

/* routes_config.c */
extern void routes_config_get(HubRequest *req, HubResponse *resp);
extern void routes_config_write(HubRequest *req, HubResponse *resp);
extern void routes_config_delete(HubRequest *req, HubResponse *resp);
extern void routes_config_history(HubRequest *req, HubResponse *resp);
extern void routes_config_rollback(HubRequest *req, HubResponse *resp);

/* routes_discovery.c */
extern void routes_discovery_register(HubRequest *req, HubResponse *resp);
extern void routes_discovery_deregister(HubRequest *req, HubResponse *resp);
extern void routes_discovery_heartbeat(HubRequest *req, HubResponse *resp);
extern void routes_discovery_list(HubRequest *req, HubResponse *resp);
extern void routes_health_services(HubRequest *req, HubResponse *resp);

/* routes_status.c */
extern void routes_health(HubRequest *req, HubResponse *resp);
extern void routes_metrics(HubRequest *req, HubResponse *resp);

#endif							/* HUBD_ROUTES_H */
