#!/usr/bin/env bash
# hubd with the database going away under it: answers 503 (with
# Retry-After) while PostgreSQL is down, never crashes, reconnects by
# itself when it is back, survives its connections being terminated, and
# its long-poll listener LISTENs again after the restart.
set -uo pipefail
source "$HUB_ROOT/test/lib.sh"
source "$HUB_ROOT/test/lib_hubd.sh"
hub_run_dir "$HUB_RUN/hubd_restart"
trap hub_cleanup EXIT

hub_pg_start hubd_restart || exit 1
hubd_db hubtest_hubd_restart
HUBD_KEY=$(hubd_key ops hub_admin)
hubd_start restart --threads 2 --poll-interval 60000
JSON=(-H 'Content-Type: application/json')

hreq PUT /api/v1/config/svc1 "${JSON[@]}" -d '{"a":1}'
tap_is "$HTTP_STATUS" 201 "hubd serves requests with the database up"

hub_pg_stop hubd_restart
hreq GET /api/v1/config/svc1
tap_is "$HTTP_STATUS $(jget 'd["error"]["code"]') $(header Retry-After)" "503 database_unavailable 1" \
	"with the database down a request answers 503 with Retry-After"
hreq GET /api/v1/config/svc1
tap_is "$HTTP_STATUS" 503 "and keeps answering 503 while it is down"
HUBD_KEY='' hreq GET /health
tap_is "$HTTP_STATUS $(jget 'd["status"], d["checks"]["database"]')" '503 ["unhealthy", "unhealthy"]' \
	"/health answers 503 unhealthy while the database is down"
tap_ok "$(kill -0 "$HUBD_PID"; echo $?)" "hubd is still running"

hub_pg_up hubd_restart
ok_again() {
	[ "$(curl -s -o /dev/null -w '%{http_code}' -H "X-API-Key: $HUBD_KEY" "$HUBD_URL/api/v1/config/svc1")" = 200 ]
}
hub_wait_for 20 ok_again
tap_ok $? "hubd reconnects by itself once the database is back"
hreq POST /api/v1/config/svc1 "${JSON[@]}" -d '{"a":2}'
tap_is "$HTTP_STATUS $(jget 'd["version"]')" "200 1.0.1" "writes work again after the restart"

# the long-poll listener LISTENs again (its 60 s timer is off: only NOTIFY wakes)
listening() {
	[ "$(hub_psql -d "$HUBD_DB" -c "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'hubd-longpoll'")" = 1 ]
}
hub_wait_for 20 listening
waiting() { curl -s "$HUBD_URL/metrics" | grep -qx "hubd_longpoll_waiting 1"; }
lp="$HUB_RUN/lp.out"
curl -s -o "$lp" -H "X-API-Key: $HUBD_KEY" "$HUBD_URL/api/v1/config/svc1?wait=30&version=1.0.1" &
lp_pid=$!
hub_wait_for 10 waiting
hub_psql -d "$HUBD_DB" -c "SELECT hub.patch_config('svc1', '{\"a\":3}')" \
	-c "NOTIFY hub_config, '{\"service_name\":\"svc1\"}'" >/dev/null
start=$(date +%s)
wait $lp_pid
HTTP_BODY=$(cat "$lp")
tap_is "$(jget 'd["version"]')" "1.0.2" "after the restart NOTIFY wakes long-polls again"
tap_ok "$(($(date +%s) - start < 10 ? 0 : 1))" "promptly, not at the long-poll's timeout"

hub_psql -d "$HUBD_DB" -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name LIKE 'hubd%'" >/dev/null
codes=""
for i in 1 2 3 4; do
	hreq GET /api/v1/config/svc1
	codes="$codes $HTTP_STATUS"
done
tap_ok "$([[ $codes =~ 200$ ]]; echo $?)" "terminated connections are replaced (statuses:$codes)"
tap_ok "$(kill -0 "$HUBD_PID"; echo $?)" "hubd survived its connections being terminated"

tap_done
