#!/usr/bin/env bash
# The service registry's SQL API: registration with defaults and
# validation (functions and plain DML alike), re-registration, heartbeat,
# discovery order and URLs, health_summary's shape, deregistration, and the
# roles' privileges.  Runs in a database of its own, which no health worker
# serves, so the statuses set here are not moved by checks.
set -uo pipefail
source "$HUB_ROOT/test/lib.sh"

db=hubtest_registry
psql -X -q -d postgres -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
psql -X -q -d "$db" -c "CREATE EXTENSION central_hub"

q() { hub_psql -d "$db" -c "$1" 2>&1; }
# sqlstate SQL [ROLE]: the SQLSTATE the statement fails with ("ok" when none)
sqlstate() {
	local out
	if [ -n "${2:-}" ]; then
		out=$(psql -X -q -t -A -v VERBOSITY=sqlstate -v ON_ERROR_STOP=1 -d "$db" \
			-c "SET ROLE $2" -c "$1" 2>&1 >/dev/null)
	else
		out=$(psql -X -q -t -A -v VERBOSITY=sqlstate -v ON_ERROR_STOP=1 -d "$db" \
			-c "$1" 2>&1 >/dev/null)
	fi
	if [ -z "$out" ]; then echo ok; else echo "$out" | sed -n 's/^ERROR: *//p' | head -n 1; fi
}

# --- registration -----------------------------------------------------------
tap_is "$(q "SELECT hub.register_service('orders', '10.0.0.5', 8001)")" "10.0.0.5:8001" \
	"register_service without instance id names the instance host:port"
tap_is "$(q "SELECT hub.register_service('orders', 'orders-b.internal', 8001, '/healthz', '{\"version\": \"1.0.0\", \"instance_id\": \"orders-b\"}')")" \
	"orders-b" "register_service takes the instance id from metadata.instance_id (the seeds' body)"
tap_is "$(q "SELECT hub.register_service('orders', '::1', 9000, instance_id => NULL, protocol => 'https')")" \
	"[::1]:9000" "an IPv6 host gives the instance id [host]:port"
tap_is "$(q "SELECT hub.register_service('orders', '10.0.0.6', 8001, instance_id => 'orders-c', ttl_seconds => 30)")" \
	"orders-c" "an explicit instance_id wins, TTL instances register too"
row=$(q "SELECT host, port, protocol, health_endpoint, metadata->>'version', status, ttl_seconds IS NULL, last_heartbeat IS NOT NULL FROM hub.service_instances WHERE instance_id = 'orders-b'")
tap_is "$row" "orders-b.internal|8001|http|/healthz|1.0.0|unknown|t|t" \
	"a registered instance is stored with its address, metadata, status unknown and a first heartbeat"

q "UPDATE hub.service_instances SET status = 'healthy', consecutive_successes = 5 WHERE instance_id = 'orders-b'" >/dev/null
tap_is "$(q "SELECT hub.register_service('orders', 'orders-b2.internal', 8002, '/healthz', '{\"instance_id\": \"orders-b\", \"zone\": \"b\"}')")" \
	"orders-b" "re-registering an instance answers its id"
row=$(q "SELECT count(*), max(host), max(port), max(metadata->>'zone'), max(status), max(consecutive_successes) FROM hub.service_instances WHERE instance_id = 'orders-b'")
tap_is "$row" "1|orders-b2.internal|8002|b|healthy|5" \
	"re-registration updates address and metadata in place and leaves the health state to the checks"

# --- validation -------------------------------------------------------------
tap_is "$(sqlstate "SELECT hub.register_service('bad name', 'h', 80)")" "42602" "a service name with a blank is refused (42602)"
tap_is "$(sqlstate "SELECT hub.register_service('-x', 'h', 80)")" "42602" "a service name starting with '-' is refused (42602)"
tap_is "$(sqlstate "SELECT hub.register_service('svc', '', 80)")" "22023" "an empty host is refused (22023)"
tap_is "$(sqlstate "SELECT hub.register_service('svc', 'evil.com/x#', 80)")" "22023" "a host with URL syntax in it is refused (22023)"
tap_is "$(sqlstate "SELECT hub.register_service('svc', 'user@h', 80)")" "22023" "a host with userinfo is refused (22023)"
tap_is "$(sqlstate "SELECT hub.register_service('svc', 'h', 0)")" "22023" "port 0 is refused (22023)"
tap_is "$(sqlstate "SELECT hub.register_service('svc', 'h', 65536)")" "22023" "port 65536 is refused (22023)"
tap_is "$(sqlstate "SELECT hub.register_service('svc', 'h', 65535)")" "ok" "port 65535 is accepted"
tap_is "$(sqlstate "SELECT hub.register_service('svc', 'h', 80, 'health')")" "22023" "an endpoint not starting with / is refused (22023)"
tap_is "$(sqlstate "SELECT hub.register_service('svc', 'h', 80, '/he alth')")" "22023" "an endpoint with a blank is refused (22023)"
tap_is "$(sqlstate "SELECT hub.register_service('svc', 'h', 80, protocol => 'ftp')")" "22023" "protocol ftp is refused (22023)"
tap_is "$(sqlstate "SELECT hub.register_service('svc', 'h', 80, metadata => '[1]')")" "22023" "metadata that is not an object is refused (22023)"
tap_is "$(sqlstate "SELECT hub.register_service('svc', 'h', 80, ttl_seconds => 0)")" "22023" "ttl_seconds 0 is refused (22023)"
tap_is "$(sqlstate "SELECT hub.register_service('svc', 'h', 80, instance_id => 'a/b')")" "22023" "an instance id with '/' is refused (22023)"
tap_is "$(sqlstate "SELECT hub.register_service('svc', NULL, 80)")" "22004" "a NULL host is refused (22004)"
tap_is "$(sqlstate "INSERT INTO hub.service_instances (service_name, instance_id, host, port) VALUES ('svc', 'i1', 'h', 70000)")" \
	"22023" "plain INSERT with a bad port is refused by the trigger too"
tap_is "$(sqlstate "UPDATE hub.service_instances SET health_endpoint = 'x' WHERE service_name = 'orders'")" \
	"22023" "plain UPDATE of an endpoint to a non-path is refused by the trigger"
tap_is "$(sqlstate "UPDATE hub.service_instances SET protocol = 'gopher' WHERE service_name = 'orders'")" \
	"22023" "plain UPDATE of the protocol to something else than http/https is refused"

# --- heartbeat ------------------------------------------------------------
q "UPDATE hub.service_instances SET last_heartbeat = now() - interval '1 hour' WHERE instance_id = 'orders-c'" >/dev/null
tap_is "$(q "SELECT hub.heartbeat('orders', 'orders-c')")" "unknown" "heartbeat answers the instance's status"
tap_is "$(q "SELECT last_heartbeat > now() - interval '1 minute' FROM hub.service_instances WHERE instance_id = 'orders-c'")" "t" \
	"heartbeat records the time"
tap_is "$(sqlstate "SELECT hub.heartbeat('orders', 'nope')")" "HB010" "heartbeat of an unknown instance fails with HB010"

# --- discovery and summary --------------------------------------------------
q "SELECT hub.register_service('payments', '10.0.1.1', 7001, instance_id => 'p1'), hub.register_service('payments', '10.0.1.2', 7001, instance_id => 'p2')" >/dev/null
q "SELECT hub.register_service('search', '10.0.2.1', 7002, instance_id => 's1')" >/dev/null
q "SELECT hub.register_service('ledger', '10.0.3.1', 7003, instance_id => 'l1'), hub.register_service('ledger', '10.0.3.2', 7003, instance_id => 'l2')" >/dev/null
q "UPDATE hub.service_instances SET status = CASE instance_id
	WHEN '10.0.0.5:8001' THEN 'unhealthy' WHEN 'orders-b' THEN 'healthy'
	WHEN '[::1]:9000' THEN 'unknown' WHEN 'orders-c' THEN 'degraded'
	WHEN 'p1' THEN 'healthy' WHEN 'p2' THEN 'healthy'
	WHEN 'l1' THEN 'unhealthy' WHEN 'l2' THEN 'unhealthy' ELSE status END,
	last_error = CASE instance_id WHEN 'l2' THEN 'HTTP 500' END,
	last_check_at = now()" >/dev/null
got=$(q "SELECT string_agg(instance_id || ' ' || url || ' ' || status, ',') FROM hub.discover('orders')")
tap_is "$got" "orders-b http://orders-b2.internal:8002 healthy,orders-c http://10.0.0.6:8001 degraded,[::1]:9000 https://[::1]:9000 unknown,10.0.0.5:8001 http://10.0.0.5:8001 unhealthy" \
	"discover lists instances healthy first, then degraded, unknown, unhealthy, with their base URLs"
tap_is "$(q "SELECT metadata->>'zone' FROM hub.discover('orders') LIMIT 1")" "b" "discover returns each instance's metadata"
tap_is "$(q "SELECT count(*) FROM hub.discover('nobody')")" "0" "discover of an unregistered service is empty"
got=$(q "SELECT hub.health_summary()")
tap_is "$got" '{"healthy": 1, "unknown": 2, "degraded": 1, "services": {"svc": "unknown", "ledger": "unhealthy", "orders": "degraded", "search": "unknown", "payments": "healthy"}, "unhealthy": 1, "total_services": 5}' \
	"health_summary counts services healthy (all healthy), degraded (some), unhealthy (none), unknown (none checked)"
got=$(q "SELECT service_status, instances, worst_status, last_error FROM hub.health_status WHERE service_name IN ('orders', 'ledger') ORDER BY 1")
tap_is "$got" "degraded|1/4|unhealthy|
unhealthy|0/2|unhealthy|l2: HTTP 500" "health_status shows healthy/total, the worst status and the last error per service"

# --- deregistration ---------------------------------------------------------
tap_is "$(q "SELECT hub.deregister_service('orders', 'orders-c')")" "1" "deregister_service removes one instance"
tap_is "$(q "SELECT hub.deregister_service('ledger')")" "2" "deregister_service without instance removes all the service's instances"
tap_is "$(sqlstate "SELECT hub.deregister_service('ledger')")" "HB010" "deregistering a service with no instances fails with HB010"
tap_is "$(sqlstate "SELECT hub.deregister_service('orders', 'orders-c')")" "HB010" "deregistering an unknown instance fails with HB010"

# --- privileges -------------------------------------------------------------
psql -X -q -d "$db" >/dev/null 2>&1 <<'SQL'
DROP ROLE IF EXISTS reg_reader; DROP ROLE IF EXISTS reg_writer; DROP ROLE IF EXISTS reg_admin;
CREATE ROLE reg_reader IN ROLE hub_reader; CREATE ROLE reg_writer IN ROLE hub_writer;
CREATE ROLE reg_admin IN ROLE hub_admin; CREATE ROLE reg_nobody;
SQL
tap_is "$(sqlstate "SELECT hub.register_service('svc2', 'h', 80)" reg_reader)" "42501" "a hub_reader cannot register (42501)"
tap_is "$(sqlstate "SELECT hub.register_service('svc2', 'h', 80)" reg_writer)" "42501" "a hub_writer cannot register (42501)"
tap_is "$(sqlstate "INSERT INTO hub.service_instances (service_name, instance_id, host, port) VALUES ('svc2', 'x', 'h', 80)" reg_writer)" \
	"42501" "a hub_writer cannot insert into hub.service_instances either"
tap_is "$(sqlstate "SELECT hub.heartbeat('payments', 'p1')" reg_writer)" "42501" "a hub_writer cannot send heartbeats"
tap_is "$(sqlstate "SELECT hub.register_service('svc2', 'h', 80)" reg_admin)" "ok" "a hub_admin can register"
tap_is "$(sqlstate "SELECT hub.heartbeat('svc2', 'h:80')" reg_admin)" "ok" "a hub_admin can send heartbeats"
tap_is "$(sqlstate "SELECT hub.deregister_service('svc2')" reg_admin)" "ok" "a hub_admin can deregister"
tap_is "$(sqlstate "SELECT * FROM hub.discover('payments'); SELECT hub.health_summary(); SELECT * FROM hub.health_status" reg_reader)" \
	"ok" "a hub_reader can discover, read health_summary and health_status"
tap_is "$(sqlstate "SELECT * FROM hub.discover('payments')" reg_nobody)" "42501" "a role without hub_reader cannot discover"
tap_is "$(sqlstate "SELECT hub.health_summary()" reg_nobody)" "42501" "a role without hub_reader cannot read health_summary"

psql -X -q -d postgres -c "DROP DATABASE $db" >/dev/null
psql -X -q -d postgres -c "DROP ROLE reg_reader, reg_writer, reg_admin, reg_nobody" >/dev/null
tap_done
