#!/usr/bin/env bash
# The health worker against real endpoints on loopback: every kind of
# answer ends in the status DESIGN.md gives it (with the reason in
# last_error), thresholds move statuses one cycle at a time, every
# transition writes a health_events row and an outbox row in the same
# transaction, a hanging endpoint costs one timeout and delays no other
# check, connections are reused across cycles, TTL instances expire,
# deregister_after removes the long unhealthy.
set -uo pipefail
source "$HUB_ROOT/test/lib.sh"
hub_run_dir "$HUB_RUN/health_checks"
trap hub_cleanup EXIT
source "$HUB_ROOT/test/health_lib.sh"

HEALTH_PORT=$(hub_free_port)
REUSE_PORT=$(hub_free_port)
DEAD_PORT=$(hub_free_port) # nothing listens there
health_endpoints "$HEALTH_PORT" "$REUSE_PORT" || { echo "Bail out! endpoints did not start"; exit 1; }
health_cluster checks "central_hub.health_interval = '200ms'
central_hub.health_timeout = '600ms'" || { echo "Bail out! cluster did not start"; exit 1; }

reg() { # service instance port endpoint [host]
	health_q "SELECT hub.register_service('$1', '${5:-127.0.0.1}', $3, '$4', instance_id => '$2')" >/dev/null
}

# --- every kind of answer ----------------------------------------------------
P=$HEALTH_PORT
reg answers ok $P /ok
reg answers plain $P /plain
reg answers degraded $P /degraded
reg answers body-unhealthy $P /unhealthy
reg answers r429 $P /429
reg answers r500 $P /500
reg answers close $P /close
reg answers hang $P /hang
reg answers drip $P /drip
reg answers endless $P /endless
reg answers big $P /big
reg answers redirect $P /redirect
reg answers garbage $P /garbage
reg answers deep $P /deep
reg answers refused $DEAD_PORT /health
reg answers by-name $P /ok localhost

health_wait 30 "SELECT count(*) = 0 FROM hub.service_instances WHERE service_name = 'answers' AND status = 'unknown'"
tap_ok $? "every polled instance leaves unknown after its thresholds"

expect() { # instance status error-pattern name
	local got
	got=$(health_q "SELECT status || '|' || coalesce(last_error, '') FROM hub.service_instances WHERE instance_id = '$1'")
	if [[ $got == "$2|"$3 ]]; then tap_ok 0 "$4"; else tap_ok 1 "$4"; echo "#   got: $got"; fi
}
expect ok healthy "" "200 with a JSON status ok is healthy, last_error empty"
expect plain healthy "" "200 with a non-JSON body is healthy"
expect by-name healthy "" "an instance registered by host name (resolved in a thread) is checked"
expect degraded degraded "*degraded*" "200 with {\"status\":\"degraded\"} is degraded"
expect body-unhealthy unhealthy "*unhealthy*" "200 with {\"status\":\"unhealthy\"} is unhealthy"
expect r429 degraded "HTTP 429*" "429 is degraded"
expect r500 unhealthy "HTTP 500" "500 is unhealthy with last_error HTTP 500"
# libcurl reports "nothing" on a fresh connection; on a reused one that the
# server closes it retries and reports "Connection died" instead
shopt -s extglob
expect close unhealthy "*@(nothing|Connection died)*" "a connection closed without an answer is unhealthy"
expect hang unhealthy "timeout*600 ms" "an endpoint that never answers is unhealthy by timeout"
expect drip unhealthy "timeout*" "an endpoint dripping one byte a second is unhealthy by timeout"
expect endless unhealthy "response body larger than 16384 bytes" "an endless body is cut at the cap and is unhealthy"
expect big unhealthy "response body larger than 16384 bytes" "a body announced larger than the cap is unhealthy"
expect redirect unhealthy "HTTP 302" "a redirect is not followed and is unhealthy"
expect garbage unhealthy "?*" "an endpoint speaking garbage is unhealthy"
expect deep healthy "" "a deeply nested body is not parsed to the bottom and the 200 counts"
expect refused unhealthy "*onnect*" "a closed port is unhealthy with the connect error"

got=$(health_q "SELECT bool_and(last_latency_ms < 300) FROM hub.service_instances WHERE instance_id IN ('ok', 'plain', 'r500', 'degraded')")
got2=$(health_q "SELECT round(last_latency_ms / 100) * 100 FROM hub.service_instances WHERE instance_id = 'hang'")
tap_is "$got|$got2" "t|600" "a hanging endpoint costs one timeout (600 ms) while the others answer in < 300 ms"
got=$(health_q "SELECT last_cycle_ms < 600 + 350 FROM hub.health_worker")
tap_is "$got" "t" "a whole cycle with 4 hanging or dripping endpoints lasts one timeout, not four"
got=$(health_q "SELECT service_status FROM hub.health_status WHERE service_name = 'answers'")
tap_is "$got" "degraded" "a service with some healthy instances is degraded"

# --- thresholds and events ----------------------------------------------------
curl -s "http://127.0.0.1:$P/_set/a/200" >/dev/null
reg flip a $P /switch/a
health_wait 10 "SELECT consecutive_successes = 1 FROM hub.service_instances WHERE instance_id = 'a'"
tap_is "$(health_q "SELECT status FROM hub.service_instances WHERE instance_id = 'a'")" "unknown" \
	"after 1 pass (threshold 2) a new instance is still unknown"
health_wait 10 "SELECT consecutive_successes = 2 FROM hub.service_instances WHERE instance_id = 'a'"
tap_is "$(health_q "SELECT status FROM hub.service_instances WHERE instance_id = 'a'")" "healthy" \
	"after 2 passes it is healthy"
curl -s "http://127.0.0.1:$P/_set/a/500" >/dev/null
health_wait 10 "SELECT consecutive_failures = 2 FROM hub.service_instances WHERE instance_id = 'a'"
tap_is "$(health_q "SELECT status || ' ' || last_error FROM hub.service_instances WHERE instance_id = 'a'")" "healthy HTTP 500" \
	"after 2 fails (threshold 3) it is still healthy, the failure in last_error"
health_wait 10 "SELECT consecutive_failures = 3 FROM hub.service_instances WHERE instance_id = 'a'"
tap_is "$(health_q "SELECT status FROM hub.service_instances WHERE instance_id = 'a'")" "unhealthy" \
	"after 3 fails it is unhealthy"
curl -s "http://127.0.0.1:$P/_set/a/200" >/dev/null
health_wait 10 "SELECT consecutive_successes = 1 FROM hub.service_instances WHERE instance_id = 'a'"
tap_is "$(health_q "SELECT status || ' ' || consecutive_failures || ' ' || coalesce(last_error, '-') FROM hub.service_instances WHERE instance_id = 'a'")" \
	"unhealthy 0 -" "one pass resets the failures and clears last_error, the status waits for the threshold"
health_wait 10 "SELECT consecutive_successes = 2 FROM hub.service_instances WHERE instance_id = 'a'"
tap_is "$(health_q "SELECT status FROM hub.service_instances WHERE instance_id = 'a'")" "healthy" \
	"after 2 passes it is healthy again"

got=$(health_q "SELECT string_agg(previous_status || '>' || status || '/' || service_status, ' ' ORDER BY id) FROM hub.health_events WHERE instance_id = 'a'")
tap_is "$got" "unknown>healthy/healthy healthy>unhealthy/unhealthy unhealthy>healthy/healthy" \
	"each transition, and only transitions, is a health_events row with the service's status"
tap_is "$(health_q "SELECT error FROM hub.health_events WHERE instance_id = 'a' AND status = 'unhealthy'")" "HTTP 500" \
	"the event of a failing transition carries the reason"
got=$(health_q "SELECT count(*) FILTER (WHERE o.topic = 'health' AND o.service_name = e.service_name AND x.xid = o.logged_xid), count(*)
	FROM hub.health_events e JOIN events_xid x ON x.id = e.id LEFT JOIN outbox_log o ON o.ref_id = e.id AND o.topic = 'health'")
tap_ok $([[ $got =~ ^([0-9]+)\|([0-9]+)$ ]] && [ "${BASH_REMATCH[1]}" = "${BASH_REMATCH[2]}" ] && [ "${BASH_REMATCH[2]}" -ge 18 ] && echo 0 || echo 1) \
	"every health event (${got#*|}) queued exactly one outbox row (topic health) in its own transaction"

# --- connection reuse ---------------------------------------------------------
reg reuse r1 "$REUSE_PORT" /ok
health_wait 10 "SELECT status = 'healthy' FROM hub.service_instances WHERE instance_id = 'r1'"
c0=$(health_q "SELECT cycles FROM hub.health_worker")
health_wait 20 "SELECT cycles >= $c0 + 5 FROM hub.health_worker"
tap_is "$(health_stats_accepts "$REUSE_PORT")" "1" "an instance checked 7+ cycles in a row used one connection (reused across cycles)"

# --- TTL instances ------------------------------------------------------------
health_q "SELECT hub.register_service('beat', '10.255.255.1', 9, instance_id => 't1', ttl_seconds => 1)" >/dev/null
health_wait 10 "SELECT status = 'healthy' FROM hub.service_instances WHERE instance_id = 't1'"
tap_ok $? "a TTL instance is healthy after registering (registration is a heartbeat) and is never polled"
for _ in 1 2 3 4 5 6; do health_q "SELECT hub.heartbeat('beat', 't1')" >/dev/null; sleep 0.3; done
tap_is "$(health_q "SELECT status FROM hub.service_instances WHERE instance_id = 't1'")" "healthy" \
	"heartbeats within the TTL keep it healthy past its TTL"
health_wait 10 "SELECT status = 'unhealthy' FROM hub.service_instances WHERE instance_id = 't1'"
tap_is "$(health_q "SELECT last_error FROM hub.service_instances WHERE instance_id = 't1'")" "no heartbeat within 1 s" \
	"without heartbeat for its TTL it turns unhealthy, reason in last_error"
health_q "SELECT hub.heartbeat('beat', 't1')" >/dev/null
health_wait 10 "SELECT status = 'healthy' FROM hub.service_instances WHERE instance_id = 't1'"
tap_ok $? "a heartbeat makes it healthy again"
tap_is "$(health_q "SELECT string_agg(previous_status || '>' || status, ' ' ORDER BY id) FROM hub.health_events WHERE instance_id = 't1'")" \
	"unknown>healthy healthy>unhealthy unhealthy>healthy" "TTL transitions are events too"

# --- deregister_after ---------------------------------------------------------
health_q "ALTER SYSTEM SET central_hub.deregister_after = '1s'" >/dev/null
health_q "SELECT pg_reload_conf()" >/dev/null
health_wait 15 "SELECT NOT EXISTS (SELECT 1 FROM hub.service_instances WHERE instance_id = 'r500')"
tap_ok $? "central_hub.deregister_after removes an instance unhealthy for longer"
tap_is "$(health_q "SELECT count(*) FROM hub.service_instances WHERE instance_id IN ('ok', 'degraded', 'r429')")" "3" \
	"deregister_after keeps healthy and degraded instances"
health_q "ALTER SYSTEM RESET central_hub.deregister_after" >/dev/null
health_q "SELECT pg_reload_conf()" >/dev/null

tap_is "$(health_q "SELECT failed_cycles FROM hub.health_worker")" "0" "no cycle failed"
tap_is "$(grep -c -E 'PANIC|server process .* was terminated|TRAP' "$HUB_RUN/pg-checks/log")" "0" "the server log shows no crash"
tap_done
