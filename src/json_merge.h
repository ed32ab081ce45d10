/*-------------------------------------------------------------------------
 * json_merge.h
 *	  RFC 7396 JSON merge patches on jsonb: apply and diff.
 *-------------------------------------------------------------------------
 */
#ifndef CENTRAL_HUB_JSON_MERGE_H
#define CENTRAL_HUB_JSON_MERGE_H

#include "utils/jsonb.h"

extern Jsonb *json_merge_apply(Jsonb *target, Jsonb *patch);
extern Jsonb *json_merge_diff(Jsonb *from, Jsonb *to);

#endif
