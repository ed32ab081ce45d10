/*-------------------------------------------------------------------------
 * hub_catalog.c
 *	  Direct access to the hub's own tables from C.
 *
 * Every config change writes an audit row and an outbox row.  Through SPI
 * each would cost a parse-free but full executor cycle; instead the triggers
 * insert them the way PostgreSQL (and TimescaleDB, for its own catalog)
 * insert catalog rows: form the tuple, take the id from the table's owned
 * sequence, heap insert, index insert.  These are tables only the extension
 * writes, with plain column indexes and no insert triggers, so nothing the
 * executor would add is skipped; the column layout is checked on lookup.
 *
 * Table OIDs are looked up once per backend and forgotten on relcache
 * invalidation, so DROP/CREATE EXTENSION in a session is safe.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/dependency.h"
#include "catalog/indexing.h"
#include "catalog/namespace.h"
#include "commands/sequence.h"
#include "nodes/pg_list.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

#include "hub_catalog.h"

typedef struct HubTableInfo
{
	const char *name;
	const char *const *columns;	/* expected layout, NULL-terminated; NULL = any */
	Oid			relid;
	Oid			seqid;			/* owned sequence of the id column */
} HubTableInfo;

static const char *const audit_columns[] = {
	"id", "service_name", "config_json", "version", "previous_version",
	"action", "changed_by", "changed_at", "change_reason", "db_user", NULL
};
static const char *const outbox_columns[] = {
	"id", "topic", "service_name", "ref_id", "queued_at", "notified_at", NULL
};

static HubTableInfo hub_tables[HUB_TABLE_COUNT] = {
	[HUB_TABLE_CONFIGS] = {"service_configs", NULL},
	[HUB_TABLE_AUDIT] = {"config_audit_log", audit_columns},
	[HUB_TABLE_OUTBOX] = {"outbox", outbox_columns},
};

static bool hub_catalog_callback_registered = false;

static void
hub_catalog_invalidate(Datum arg, Oid relid)
{
	for (int i = 0; i < HUB_TABLE_COUNT; i++)
		if (relid == InvalidOid || relid == hub_tables[i].relid)
			hub_tables[i].relid = InvalidOid;
}

/* Check that a table has exactly the columns the inserts assume. */
static void
hub_catalog_check_layout(HubTableInfo *info, Oid relid)
{
	Relation	rel = table_open(relid, AccessShareLock);
	TupleDesc	desc = RelationGetDescr(rel);
	int			n = 0;

	for (; info->columns[n] != NULL; n++)
	{
		if (n >= desc->natts ||
			strcmp(NameStr(TupleDescAttr(desc, n)->attname), info->columns[n]) != 0 ||
			TupleDescAttr(desc, n)->attisdropped)
			elog(ERROR, "table hub.%s does not have the layout central_hub expects",
				 info->name);
	}
	if (n != desc->natts)
		elog(ERROR, "table hub.%s does not have the layout central_hub expects",
			 info->name);
	table_close(rel, AccessShareLock);
}

/*
 * OID of one of the hub's tables; errors when the extension is not there.
 *
 * The OID is kept in info only once every check is done, and the local one
 * is returned: opening the table for the checks accepts invalidations, and
 * the callback may forget info->relid meanwhile (any relcache invalidation
 * of the table does, e.g. autovacuum updating its statistics).
 */
Oid
hub_catalog_relid(HubTable table)
{
	HubTableInfo *info = &hub_tables[table];
	Oid			relid;

	if (OidIsValid(info->relid))
		return info->relid;

	if (!hub_catalog_callback_registered)
	{
		CacheRegisterRelcacheCallback(hub_catalog_invalidate, (Datum) 0);
		hub_catalog_callback_registered = true;
	}

	relid = get_relname_relid(info->name, get_namespace_oid("hub", false));
	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("table hub.%s does not exist", info->name),
				 errhint("Is the central_hub extension created in this database?")));
	if (info->columns != NULL)
	{
		List	   *seqs = getOwnedSequences(relid);

		if (list_length(seqs) != 1)
			elog(ERROR, "table hub.%s must own exactly one sequence", info->name);
		hub_catalog_check_layout(info, relid);
		info->seqid = linitial_oid(seqs);
	}
	info->relid = relid;
	return relid;
}

/*
 * Insert a row into the audit log or the outbox; values[0] (the id) is
 * taken from the table's sequence and returned.
 */
int64
hub_catalog_insert(HubTable table, Datum *values, bool *nulls)
{
	Oid			relid = hub_catalog_relid(table);
	HubTableInfo *info = &hub_tables[table];
	Relation	rel;
	HeapTuple	tuple;
	int64		id;

	Assert(info->columns != NULL);
	id = nextval_internal(info->seqid, false);
	values[0] = Int64GetDatum(id);
	nulls[0] = false;

	rel = table_open(relid, RowExclusiveLock);
	tuple = heap_form_tuple(RelationGetDescr(rel), values, nulls);
	CatalogTupleInsert(rel, tuple);
	heap_freetuple(tuple);
	table_close(rel, NoLock);

	return id;
}
