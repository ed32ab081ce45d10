/*
 * db.h: hubd's database access: one libpq connection per worker thread,
 * every statement prepared at connect, each request sent as one pipeline
 * (one round trip) that runs as one implicit transaction.
 */
#ifndef HUBD_DB_H
#define HUBD_DB_H

#include <stdbool.h>

typedef enum DbStmt
{
	STMT_AUTH,					/* $1 key: checks it, SET LOCAL ROLE + actor */
	STMT_NO_AUTH,				/* $1 actor: --no-auth mode */
	STMT_AUTH_CONFIG_GET,		/* $1 key $2 service: STMT_AUTH + STMT_CONFIG_GET */
	STMT_CONFIG_GET,			/* $1 service */
	STMT_CONFIG_PATCH,			/* $1 service $2 patch $3 version $4 reason $5 expected */
	STMT_CONFIG_PUT,			/* same, whole config */
	STMT_CONFIG_DELETE,			/* $1 service $2 reason $3 expected */
	STMT_CONFIG_ROLLBACK,		/* $1 service $2 body $3 expected */
	STMT_CONFIG_LAST_CHANGE,	/* $1 service: revision, previous_version, changed */
	STMT_CONFIG_HISTORY,		/* $1 service $2 limit */
	STMT_STATUS,				/* backlog, oldest age, services, instances */
	STMT_INSTANCES_BY_STATUS,	/* status, count */
	STMT_REGISTER,				/* $1 body */
	STMT_DEREGISTER,			/* $1 service $2 instance (NULL = all) */
	STMT_HEARTBEAT,				/* $1 service $2 instance */
	STMT_DISCOVER,				/* $1 service */
	STMT_DISCOVER_ALL,
	STMT_HEALTH_SUMMARY,
	STMT_COUNT
} DbStmt;

#define DB_MAX_CALLS 4
#define DB_MAX_PARAMS 6

typedef struct DbCall
{
	DbStmt		stmt;
	int			nparams;
	const char *params[DB_MAX_PARAMS];	/* NULL = SQL NULL */
} DbCall;

typedef struct DbOutcome
{
	int			ncalls;
	void	   *results[DB_MAX_CALLS];	/* PGresult of each call, or NULL */
	int			failed_call;	/* index of the failing call, -1 when none */
	char		sqlstate[6];	/* of the failure ("" when none) */
	char		message[512];	/* primary message of the failure */
	bool		unavailable;	/* no connection / connection lost: 503 */
} DbOutcome;

/* Must be called once before any thread uses the database. */
extern void db_setup(const char *conninfo);

/*
 * db_execute: runs calls in one pipeline on this thread's connection
 * (connecting, or reconnecting at most every DB_RECONNECT_MS, as needed).
 * Returns true when every call succeeded.  db_outcome_clear frees results.
 */
extern bool db_execute(const DbCall *calls, int ncalls, DbOutcome *out);
extern void db_outcome_clear(DbOutcome *out);

/* Result accessors: call's tuple count, a value (NULL when SQL NULL). */
extern int	db_ntuples(const DbOutcome *out, int call);
extern const char *db_value(const DbOutcome *out, int call, int row, int col);

/* Counters for /metrics. */
extern unsigned long db_connects_total(void);
extern unsigned long db_connect_failures_total(void);

#endif							/* HUBD_DB_H */
