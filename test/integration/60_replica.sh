#!/usr/bin/env bash
# Reads scale on streaming replicas: configs and their history replicate,
# get_config and get_config_history answer on a hot standby, writes there
# fail cleanly, and a promoted standby continues each service's versions.
# (The relay's delivery of the old primary's outbox: 23_relay_failover.sh.)
set -uo pipefail
source "$HUB_ROOT/test/lib.sh"
hub_run_dir "$HUB_RUN/replica"
trap hub_cleanup EXIT

hub_pg_start primary "central_hub.database = 'hub'" >/dev/null || exit 1
createdb hub
psql -X -q -d hub -c "CREATE EXTENSION central_hub"
hub_psql -d hub -c "SELECT hub.put_config('tick-aggregator', '{\"operational\": {\"batch_size\": 1}}')" >/dev/null

hub_pg_replica standby primary
tap_ok $? "a hot standby starts from a base backup of the hub"

hub_pg_env primary
hub_psql -d hub -c "SELECT hub.patch_config('tick-aggregator', '{\"operational\": {\"batch_size\": 2}}')" >/dev/null
hub_pg_env standby
hub_wait_for 20 bash -c "psql -X -t -A -d hub -c \"SELECT hub.get_config('tick-aggregator')->'operational'->>'batch_size'\" | grep -qx 2"
tap_ok $? "a change on the primary is visible through hub.get_config on the standby"

tap_is "$(hub_psql -d hub -c "SELECT string_agg(version || ':' || action, ',') FROM hub.get_config_history('tick-aggregator')")" \
	"1.0.1:updated,1.0.0:created" "history reads on the standby"
tap_is "$(hub_psql -d hub -c "SELECT hub.config_diff('tick-aggregator', '1.0.0', '1.0.1')")" \
	'{"operational": {"batch_size": 2}}' "config_diff reads on the standby"

err=$(psql -X -q -t -A -d hub -c "SELECT hub.patch_config('tick-aggregator', '{\"x\": 1}')" 2>&1)
case "$err" in
*"read-only transaction"*) tap_ok 0 "a write on the standby fails as read-only" ;;
*) tap_ok 1 "a write on the standby fails as read-only (got: $err)" ;;
esac

hub_pg_stop primary
hub_pg_promote standby
tap_ok $? "the standby is promoted"
v=$(hub_psql -d hub -c "SELECT hub.patch_config('tick-aggregator', '{\"operational\": {\"batch_size\": 3}}')" 2>&1)
tap_is "$v" "1.0.2" "after promotion the service's versions continue where the primary left off"

tap_done
