# test/health_lib.sh: helpers of the health suites (sourced after lib.sh).
#
#   health_cluster NAME "conf lines"   own cluster serving database hh, with
#                                      the extension and an outbox log
#   health_endpoints PORT...           start test/http_endpoints.py
#   health_q SQL                       query database hh
#   health_wait SECONDS SQL            wait until SQL answers t
#   health_stats_accepts PORT          connections the endpoints accepted on PORT

health_cluster() {
	local name=$1 conf=$2
	hub_pg_start "$name" "central_hub.database = 'hh'
$conf" || return 1
	createdb hh || return 1
	# a log of every outbox row, so that tests see what was queued even
	# after a relay worker has drained the outbox
	psql -X -q -v ON_ERROR_STOP=1 -d hh >/dev/null <<'SQL' || return 1
CREATE EXTENSION central_hub;
CREATE TABLE outbox_log (LIKE hub.outbox, logged_xid xid8 DEFAULT pg_current_xact_id());
CREATE FUNCTION outbox_log() RETURNS trigger LANGUAGE plpgsql AS
$$BEGIN INSERT INTO outbox_log SELECT NEW.*; RETURN NEW; END$$;
CREATE TRIGGER outbox_log AFTER INSERT ON hub.outbox FOR EACH ROW EXECUTE FUNCTION outbox_log();
CREATE TABLE events_xid (id bigint, xid xid8);
CREATE FUNCTION events_xid() RETURNS trigger LANGUAGE plpgsql AS
$$BEGIN INSERT INTO events_xid VALUES (NEW.id, pg_current_xact_id()); RETURN NEW; END$$;
CREATE TRIGGER events_xid AFTER INSERT ON hub.health_events FOR EACH ROW EXECUTE FUNCTION events_xid();
SQL
}

health_endpoints() {
	local ports
	ports=$(IFS=,; echo "$*")
	rm -f "$HUB_RUN/endpoints.ready"
	"$HUB_PYTHON" "$HUB_ROOT/test/http_endpoints.py" --ports "$ports" \
		--ready "$HUB_RUN/endpoints.ready" --lifetime 900 --max-conn-seconds 60 \
		>>"$HUB_RUN/endpoints.log" 2>&1 &
	hub_track_pid $! endpoints
	hub_wait_for 20 test -f "$HUB_RUN/endpoints.ready"
}

health_q() {
	hub_psql -d hh -c "$1"
}

health_true() {
	[ "$(psql -X -q -t -A -d hh -c "$1" 2>/dev/null)" = t ]
}

health_wait() {
	hub_wait_for "$1" health_true "$2"
}

health_stats_accepts() {
	curl -s --max-time 5 "http://127.0.0.1:$HEALTH_PORT/_stats" |
		"$HUB_PYTHON" -c "import json,sys; print(json.load(sys.stdin)['accepts'].get('$1', 0))"
}

health_worker_pid() {
	health_q "SELECT pid FROM pg_stat_activity WHERE backend_type = 'central_hub health worker'"
}
