/*-------------------------------------------------------------------------
 * hub_catalog.h
 *	  Direct access to the hub's own tables from C, for the hot paths.
 *-------------------------------------------------------------------------
 */
#ifndef CENTRAL_HUB_CATALOG_H
#define CENTRAL_HUB_CATALOG_H

typedef enum HubTable
{
	HUB_TABLE_CONFIGS,			/* hub.service_configs */
	HUB_TABLE_AUDIT,			/* hub.config_audit_log */
	HUB_TABLE_OUTBOX,			/* hub.outbox */
	HUB_TABLE_COUNT
} HubTable;

/* Column numbers (1-based) of the rows hub_catalog_insert() writes. */
enum
{
	AUDIT_ID = 1, AUDIT_SERVICE_NAME, AUDIT_CONFIG_JSON, AUDIT_VERSION,
	AUDIT_PREVIOUS_VERSION, AUDIT_ACTION, AUDIT_CHANGED_BY, AUDIT_CHANGED_AT,
	AUDIT_CHANGE_REASON, AUDIT_DB_USER, AUDIT_NATTS = AUDIT_DB_USER
};
enum
{
	OUTBOX_ID = 1, OUTBOX_TOPIC, OUTBOX_SERVICE_NAME, OUTBOX_REF_ID,
	OUTBOX_QUEUED_AT, OUTBOX_NOTIFIED_AT, OUTBOX_NATTS = OUTBOX_NOTIFIED_AT
};

extern Oid	hub_catalog_relid(HubTable table);
extern int64 hub_catalog_insert(HubTable table, Datum *values, bool *nulls);

#endif
