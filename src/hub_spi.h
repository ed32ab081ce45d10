/*-------------------------------------------------------------------------
 * hub_spi.h
 *	  Kept SPI plans and argument helpers shared by the hub's C functions
 *	  and workers.
 *-------------------------------------------------------------------------
 */
#ifndef CENTRAL_HUB_SPI_H
#define CENTRAL_HUB_SPI_H

#include "fmgr.h"
#include "executor/spi.h"

#define HUB_PLAN_MAX_ARGS	12

/* A statement with parameters, prepared and kept on first use. */
typedef struct HubPlan
{
	const char *sql;
	int			nargs;
	Oid			argtypes[HUB_PLAN_MAX_ARGS];
	SPIPlanPtr	plan;
} HubPlan;

extern int	hub_plan_run(HubPlan *p, Datum *args, const char *nulls,
						 bool read_only);
extern char *hub_arg_text(FunctionCallInfo fcinfo, int n, const char *name,
						  bool required);

#endif
