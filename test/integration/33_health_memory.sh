#!/usr/bin/env bash
# The health worker's memory stays flat across 100 cycles of hostile
# endpoints (hanging, dripping, endless, garbage, closing, redirecting,
# refused, resolved by name in libcurl's resolver threads).
set -uo pipefail
source "$HUB_ROOT/test/lib.sh"
hub_run_dir "$HUB_RUN/health_memory"
trap hub_cleanup EXIT
source "$HUB_ROOT/test/health_lib.sh"

HEALTH_PORT=$(hub_free_port)
DEAD_PORT=$(hub_free_port)
health_endpoints "$HEALTH_PORT" || { echo "Bail out! endpoints did not start"; exit 1; }
health_cluster memory "central_hub.health_interval = '20ms'
central_hub.health_timeout = '150ms'
central_hub.health_concurrency = 16" || { echo "Bail out! cluster did not start"; exit 1; }

n=0
for ep in /ok /plain /degraded /unhealthy /429 /500 /close /hang /drip /endless /big /redirect /garbage /deep; do
	for host in 127.0.0.1 localhost; do
		n=$((n + 1))
		health_q "SELECT hub.register_service('mem', '$host', $HEALTH_PORT, '$ep', instance_id => 'i$n')" >/dev/null
	done
done
health_q "SELECT hub.register_service('mem', '127.0.0.1', $DEAD_PORT, '/health', instance_id => 'dead')" >/dev/null
health_q "SELECT hub.register_service('mem', 'no-such-host.invalid', 80, '/health', instance_id => 'nxdomain')" >/dev/null

rss() { awk '/^RssAnon/ {print $2}' "/proc/$1/status"; }
health_wait 60 "SELECT cycles >= 20 FROM hub.health_worker"
pid=$(health_worker_pid)
c1=$(health_q "SELECT cycles FROM hub.health_worker")
r1=$(rss "$pid")
health_wait 120 "SELECT cycles >= $c1 + 100 FROM hub.health_worker"
tap_ok $? "100 more cycles of $((n + 2)) hostile checks ran"
c2=$(health_q "SELECT cycles FROM hub.health_worker")
r2=$(rss "$pid")
echo "# worker RssAnon after cycle $c1: $r1 kB, after cycle $c2: $r2 kB"
[[ $r1 =~ ^[0-9]+$ && $r2 =~ ^[0-9]+$ ]] || r2=999999999 r1=0
tap_ok $(( r2 - r1 < 512 ? 0 : 1 )) "the worker's anonymous memory grew by less than 512 kB over 100 cycles ($r1 -> $r2 kB)"
tap_is "$(health_worker_pid)" "$pid" "the same worker process ran all cycles"
tap_is "$(health_q "SELECT failed_cycles FROM hub.health_worker")" "0" "no cycle failed"
tap_is "$(health_q "SELECT status || ' ' || last_error FROM hub.service_instances WHERE instance_id = 'nxdomain'")" \
	"unhealthy Couldn't resolve host name: Could not resolve host: no-such-host.invalid" "an unresolvable host is unhealthy with the resolver's reason"
tap_is "$(grep -c -E 'PANIC|was terminated by signal|TRAP' "$HUB_RUN/pg-memory/log")" "0" "the server log shows no crash"
tap_done
