#!/usr/bin/env bash
# Concurrent writers on one service: versions stay strictly increasing with
# no gaps or duplicates, every change is audited once, compare-and-set lets
# exactly one of two racing writers win, and writers in new sessions never
# trip over relcache invalidations of the hub's tables.
set -uo pipefail
source "$HUB_ROOT/test/lib.sh"

db=hubtest_concurrency
psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
psql -X -q -d "$db" -c "CREATE EXTENSION central_hub"

# 4 clients x 250 patches on the same service, through pgbench
cat >"$HUB_RUN/patch.sql" <<'SQL'
\set n random(1, 1000000)
SELECT hub.patch_config('race', jsonb_build_object('operational', jsonb_build_object('n', :n, 'client', :client_id)));
SQL
psql -X -q -d "$db" -c "SELECT hub.put_config('race', '{\"operational\": {}}')" >/dev/null
pgbench -n -c 4 -j 2 -t 250 -f "$HUB_RUN/patch.sql" "$db" >"$HUB_RUN/pgbench.out" 2>&1
tap_ok $? "pgbench: 4 clients x 250 patches on one service complete without errors"

audited=$(hub_psql -d "$db" -c "SELECT count(*) FROM hub.config_audit_log WHERE service_name = 'race'")
changed=$(hub_psql -d "$db" -c "SELECT count(*) FROM hub.config_audit_log WHERE service_name = 'race' AND action = 'updated'")
# pgbench may draw the same n twice in a row for a client: those are no-ops
tap_ok $(( audited >= 2 && audited <= 1001 ? 0 : 1 )) "audit rows counted: $audited (one per real change)"

gaps=$(hub_psql -d "$db" -c "
	WITH v AS (
		SELECT id, split_part(version, '.', 3)::int AS patch,
			   lag(split_part(version, '.', 3)::int) OVER (ORDER BY id) AS prev,
			   previous_version,
			   lag(version) OVER (ORDER BY id) AS prev_version
		FROM hub.config_audit_log WHERE service_name = 'race')
	SELECT count(*) FROM v WHERE prev IS NOT NULL AND (patch <> prev + 1 OR previous_version <> prev_version)")
tap_is "$gaps" "0" "versions increase by exactly one patch per change in revision order, previous_version chains"

current=$(hub_psql -d "$db" -c "SELECT version FROM hub.service_configs WHERE service_name = 'race'")
last=$(hub_psql -d "$db" -c "SELECT version FROM hub.config_audit_log WHERE service_name = 'race' ORDER BY id DESC LIMIT 1")
tap_is "$current" "$last" "current version is the last audited version"

outbox=$(hub_psql -d "$db" -c "SELECT count(*) FROM hub.outbox WHERE service_name = 'race'")
tap_is "$outbox" "$audited" "one outbox row per audited change"

# compare-and-set: two writers read the same version; only one may write
v=$(hub_psql -d "$db" -c "SELECT version FROM hub.service_configs WHERE service_name = 'race'")
psql -X -q -d "$db" -v ON_ERROR_STOP=1 >"$HUB_RUN/cas1.out" 2>&1 <<SQL &
BEGIN;
SELECT hub.patch_config('race', '{"owner": "first"}', expected_version => '$v');
SELECT pg_sleep(0.5);
COMMIT;
SQL
first=$!
hub_wait_for 10 bash -c "psql -X -t -A -d $db -c \"SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation WHERE c.relname = 'service_configs' AND l.mode = 'RowExclusiveLock' AND NOT l.pid = pg_backend_pid()\" | grep -q '^1$'"
second=$(psql -X -q -t -A -d "$db" -c "SELECT hub.patch_config('race', '{\"owner\": \"second\"}', expected_version => '$v')" 2>&1)
wait $first
tap_ok $? "first compare-and-set writer commits"
case "$second" in
*"is at version"*"expected $v"*) tap_ok 0 "second writer with the same expected_version fails with a version conflict" ;;
*) tap_ok 1 "second writer with the same expected_version fails with a version conflict (got: $second)" ;;
esac
owner=$(hub_psql -d "$db" -c "SELECT hub.get_config('race')->>'owner'")
tap_is "$owner" "first" "the first writer's change stands"

# new sessions write while the hub's tables are analyzed over and over: the
# relcache invalidations arrive while a session first looks its tables up
cat >"$HUB_RUN/fresh.sql" <<'SQL'
SELECT hub.patch_config('inval', jsonb_build_object('n', random()));
SQL
(
	end=$((SECONDS + 5))
	while [ $SECONDS -lt $end ]; do
		psql -X -q -d "$db" -c "ANALYZE hub.outbox" -c "ANALYZE hub.config_audit_log" \
			-c "ANALYZE hub.service_configs" >/dev/null 2>&1
	done
) &
analyzer=$!
pgbench -n -C -c 4 -j 2 -T 5 -f "$HUB_RUN/fresh.sql" "$db" >"$HUB_RUN/fresh.out" 2>&1
status=$?
wait $analyzer
tap_ok $(( status == 0 && $(grep -c 'ERROR' "$HUB_RUN/fresh.out") == 0 ? 0 : 1 )) \
	"writers in new sessions never fail while relcache invalidations arrive (ANALYZE in a loop)"
[ "$status" -eq 0 ] || grep -i -m 3 error "$HUB_RUN/fresh.out" | sed "s/^/#   /"

psql -X -q -d postgres -c "DROP DATABASE $db"
tap_done
