#!/usr/bin/env bash
# central_hub.health_allowed_hosts is checked against the resolved address
# before any connection (disallowed instances never see a connection), its
# entries are CIDR blocks, addresses and host names, a bad value is
# refused; and the worker serves SIGHUP and SIGTERM at once while a
# request hangs mid-cycle.
set -uo pipefail
source "$HUB_ROOT/test/lib.sh"
hub_run_dir "$HUB_RUN/health_allowed"
trap hub_cleanup EXIT
source "$HUB_ROOT/test/health_lib.sh"

HEALTH_PORT=$(hub_free_port)
GUARDED_PORT=$(hub_free_port)
health_endpoints "$HEALTH_PORT" "$GUARDED_PORT" || { echo "Bail out! endpoints did not start"; exit 1; }
health_cluster allowed "central_hub.health_interval = '200ms'
central_hub.health_timeout = '600ms'
central_hub.health_allowed_hosts = '10.0.0.0/8, fd00::/8, example.internal'" || { echo "Bail out! cluster did not start"; exit 1; }

set_allowed() {
	health_q "ALTER SYSTEM SET central_hub.health_allowed_hosts = '$1'" >/dev/null &&
		health_q "SELECT pg_reload_conf()" >/dev/null
}
status_error() {
	health_q "SELECT status || '|' || coalesce(last_error, '') FROM hub.service_instances WHERE instance_id = '$1'"
}

out=$(psql -X -q -d hh -v VERBOSITY=sqlstate -c "ALTER SYSTEM SET central_hub.health_allowed_hosts = '10.0.0.0/33'" 2>&1)
tap_ok $([[ $out == *22023* ]] && echo 0 || echo 1) "a CIDR block with a bad prefix is refused (22023)"
out=$(psql -X -q -d hh -v VERBOSITY=sqlstate -c "ALTER SYSTEM SET central_hub.health_allowed_hosts = 'bad host!'" 2>&1)
tap_ok $([[ $out == *22023* ]] && echo 0 || echo 1) "an entry that is neither address, CIDR nor name is refused (22023)"

health_q "SELECT hub.register_service('guarded', '127.0.0.1', $GUARDED_PORT, '/ok', instance_id => 'by-ip')" >/dev/null
health_q "SELECT hub.register_service('guarded', 'localhost', $GUARDED_PORT, '/ok', instance_id => 'by-name')" >/dev/null
health_wait 15 "SELECT bool_and(status = 'unhealthy') FROM hub.service_instances WHERE service_name = 'guarded'"
tap_ok $? "instances outside the allowed hosts turn unhealthy"
tap_is "$(status_error by-ip)" "unhealthy|address 127.0.0.1 is not in central_hub.health_allowed_hosts" \
	"last_error names the refused address"
got=$(status_error by-name)
tap_ok $([[ $got =~ ^unhealthy\|address\ (127.0.0.1|::1)\ is\ not\ in ]] && echo 0 || echo 1) \
	"a host name is refused by the address it resolves to ($got)"
tap_is "$(health_stats_accepts "$GUARDED_PORT")" "0" "no connection ever reached the disallowed endpoint"

set_allowed "192.168.0.0/16, 127.0.0.0/8"
health_wait 15 "SELECT status = 'healthy' FROM hub.service_instances WHERE instance_id = 'by-ip'"
tap_ok $? "after reload with 127.0.0.0/8 allowed the instance turns healthy"
tap_ok $(( $(health_stats_accepts "$GUARDED_PORT") > 0 ? 0 : 1 )) "and its endpoint now sees connections"

set_allowed "localhost"
health_wait 15 "SELECT status = 'unhealthy' FROM hub.service_instances WHERE instance_id = 'by-ip'"
tap_ok $? "a reload that drops an address refuses it again (pooled connections are dropped too)"
health_wait 15 "SELECT status = 'healthy' FROM hub.service_instances WHERE instance_id = 'by-name'"
tap_ok $? "a host name entry allows the instance registered with that name"

# --- signals mid-cycle ----------------------------------------------------------
set_allowed ""
health_q "ALTER SYSTEM SET central_hub.health_timeout = '60s'" >/dev/null
health_q "SELECT pg_reload_conf()" >/dev/null
health_q "SELECT hub.register_service('stuck', '127.0.0.1', $HEALTH_PORT, '/hang', instance_id => 'h1')" >/dev/null
checking() {
	[ "$(health_q "SELECT query FROM pg_stat_activity WHERE backend_type = 'central_hub health worker'")" = "health: checking instances" ]
}
hub_wait_for 20 checking
c0=$(health_q "SELECT cycles FROM hub.health_worker")
sleep 1.5 # (not a wait for a condition: the time the cycle must stay stuck)
checking
tap_is "$?|$(health_q "SELECT cycles FROM hub.health_worker")" "0|$c0" \
	"with a 60 s timeout reloaded, a cycle waits on a hanging endpoint"
pid=$(health_worker_pid)
t0=$(date +%s%N)
kill -HUP "$pid"
kill -HUP "$pid"
health_q "SELECT 1" >/dev/null
tap_ok $(kill -0 "$pid" 2>/dev/null && echo 0 || echo 1) "SIGHUP mid-cycle is served and the worker goes on"
t0=$(date +%s%N)
kill -TERM "$pid"
hub_wait_for 10 bash -c "! kill -0 $pid"
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
tap_ok $(( ms < 1000 ? 0 : 1 )) "SIGTERM mid-cycle ends the worker in $ms ms (waits on the latch, not the request)"
echo "# health worker exit after SIGTERM mid-cycle: $ms ms"
health_q "ALTER SYSTEM SET central_hub.health_timeout = '600ms'" >/dev/null
health_q "SELECT pg_reload_conf()" >/dev/null
hub_wait_for 20 bash -c "[ -n \"\$(psql -X -q -t -A -d hh -c \"SELECT pid FROM pg_stat_activity WHERE backend_type = 'central_hub health worker'\")\" ]"
tap_ok $? "the postmaster starts the worker again"
health_wait 15 "SELECT status = 'unhealthy' AND last_error LIKE 'timeout%600 ms' FROM hub.service_instances WHERE instance_id = 'h1'"
tap_ok $? "the restarted worker checks with the reloaded timeout"
tap_is "$(grep -c -E 'PANIC|was terminated by signal|TRAP' "$HUB_RUN/pg-allowed/log")" "0" "the server log shows no crash"
tap_done
