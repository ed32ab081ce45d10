/*-------------------------------------------------------------------------
 * hub_spi.c
 *	  Kept SPI plans and argument helpers shared by the hub's C functions
 *	  and workers: every statement runs with parameters, never with values
 *	  spliced into its text.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/builtins.h"

#include "hub_spi.h"

/*
 * Run a kept plan (SPI must be connected), preparing it on first use;
 * returns the SPI result code.
 */
int
hub_plan_run(HubPlan *p, Datum *args, const char *nulls, bool read_only)
{
	int			ret;

	if (p->plan == NULL)
	{
		SPIPlanPtr	plan = SPI_prepare(p->sql, p->nargs, p->argtypes);

		if (plan == NULL)
			elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
		SPI_keepplan(plan);
		p->plan = plan;
	}
	ret = SPI_execute_plan(p->plan, args, nulls, read_only, 0);
	if (ret < 0)
		elog(ERROR, "SPI_execute_plan failed: %s", SPI_result_code_string(ret));
	return ret;
}

/*
 * Text argument n as a C string; a NULL required argument is an error that
 * names it.
 */
char *
hub_arg_text(FunctionCallInfo fcinfo, int n, const char *name, bool required)
{
	if (PG_ARGISNULL(n))
	{
		if (required)
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("%s must not be NULL", name)));
		return NULL;
	}
	return text_to_cstring(PG_GETARG_TEXT_PP(n));
}
