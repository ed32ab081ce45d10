#!/usr/bin/env bash
# Without shared_preload_libraries the library loads on first use and the
# config store works on its own (no workers, no wake-up): changes wait in
# the outbox.
set -uo pipefail
source "$HUB_ROOT/test/lib.sh"
hub_run_dir "$HUB_RUN/nopreload"
trap hub_cleanup EXIT

hub_pg_start nopreload "shared_preload_libraries = ''" >/dev/null || exit 1
createdb hub
out=$(psql -X -q -t -A -v ON_ERROR_STOP=1 -d hub -c "CREATE EXTENSION central_hub" 2>&1)
tap_is "$out" "" "CREATE EXTENSION works without preloading the library"
tap_is "$(hub_psql -d hub -c "SELECT hub.put_config('data-bridge', '{\"a\": 1}')")" "1.0.0" \
	"put_config works in a session that loaded the library on first use"
tap_is "$(hub_psql -d hub -c "SELECT hub.patch_config('data-bridge', '{\"a\": 2}')")" "1.0.1" \
	"patch_config too"
tap_is "$(hub_psql -d hub -c "SELECT count(*) FROM hub.outbox")" "2" \
	"with no relay running the changes wait in the outbox"
tap_is "$(hub_psql -d hub -c "SELECT count(*) FROM pg_stat_activity WHERE backend_type LIKE 'central_hub%'")" "0" \
	"no background worker runs"
tap_done
