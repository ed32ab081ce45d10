/*-------------------------------------------------------------------------
 * config_store.h
 *	  Rules of the config store, enforced by triggers on hub.service_configs.
 *-------------------------------------------------------------------------
 */
#ifndef CENTRAL_HUB_CONFIG_STORE_H
#define CENTRAL_HUB_CONFIG_STORE_H

/* SQLSTATEs of the hub's own faults (documented in README). */
#define ERRCODE_HUB_SECRET_KEY			MAKE_SQLSTATE('H','B','0','0','1')
#define ERRCODE_HUB_VERSION_NOT_NEWER	MAKE_SQLSTATE('H','B','0','0','2')
#define ERRCODE_HUB_VERSION_CONFLICT	MAKE_SQLSTATE('H','B','0','0','3')
#define ERRCODE_HUB_UNKNOWN_SERVICE		MAKE_SQLSTATE('H','B','0','0','4')
#define ERRCODE_HUB_UNKNOWN_VERSION		MAKE_SQLSTATE('H','B','0','0','5')

#define HUB_SERVICE_NAME_MAX	100

/*
 * What a hub.* writing function tells the triggers about the change it is
 * making, and what the triggers report back.  Plain DML runs without one.
 */
typedef struct ConfigWriteContext
{
	/* set by the function */
	const char *service_name;	/* the row this context is about */
	const char *version;		/* version the caller asked for, or NULL */
	const char *changed_by;		/* explicit actor, or NULL */
	const char *reason;			/* change_reason, or NULL */
	const char *action;			/* "rollback", or NULL for the natural one */
	const char *expected_version;	/* compare-and-set: NULL none, "" absent */

	MemoryContext result_cxt;	/* where the triggers put their results */

	/* set by the triggers */
	bool		noop;			/* the update changed nothing */
	char	   *result_version; /* version now current (or deleted) */
	char	   *previous_version;
	int64		revision;		/* audit id of the change, 0 when none */
} ConfigWriteContext;

extern ConfigWriteContext *config_write_context;

extern void config_store_init(void);
extern void config_check_service_name(const char *service_name);
extern bool config_service_name_is_valid(const char *service_name);

#endif
