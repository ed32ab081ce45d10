/*-------------------------------------------------------------------------
 * registry.h
 *	  The service registry: hub.service_instances and its SQL functions.
 *-------------------------------------------------------------------------
 */
#ifndef CENTRAL_HUB_REGISTRY_H
#define CENTRAL_HUB_REGISTRY_H

/* No instance matches (heartbeat, deregister_service); documented in docs/health.md. */
#define ERRCODE_HUB_UNKNOWN_INSTANCE	MAKE_SQLSTATE('H','B','0','1','0')

#define REGISTRY_INSTANCE_ID_MAX	200
#define REGISTRY_HOST_MAX			253
#define REGISTRY_ENDPOINT_MAX		1024
#define REGISTRY_TTL_MAX			86400

#endif
