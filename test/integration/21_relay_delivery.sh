#!/usr/bin/env bash
# The relay worker delivers every committed config change to LISTEN hub_config
# and to NATS (core mode), at least once, in revision order, through NATS
# outages, a crash of the relay itself, and reloads of its settings.
set -uo pipefail
source "$HUB_ROOT/test/lib.sh"
source "$HUB_ROOT/test/integration/relay.inc"
hub_run_dir "$HUB_RUN/relay-delivery"
trap hub_cleanup EXIT

OUTAGE_SECONDS=${OUTAGE_SECONDS:-5}

hub_nats_start main || exit 1
relay_cluster_start relay "central_hub.nats_url = '$NATS_URL'" || exit 1
"$HUB_SUB" -s "$NATS_URL" --add-stream HUB 'config.update.>' || exit 1

hub_wait_for 20 relay_is connected t
tap_is "$(relay_field connected)" t "relay connects to NATS at start (hub.relay_status.connected)"
tap_is "$(rsql "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'central_hub relay' AND datname = '$RELAY_DB'")" 1 \
	"relay worker shows in pg_stat_activity as 'central_hub relay'"

# --- every kind of change, once, in order, with the right body -------------
listen_start "$HUB_RUN/listen.out" || exit 1
sub_start all 'config.update.>' || exit 1
first=$(rsql "SELECT coalesce(max(id), 0) FROM hub.config_audit_log")
hub_psql -d "$RELAY_DB" >/dev/null <<'SQL'
SELECT hub.put_config('svc-a', '{"a": 1, "nested": {"k": [1, 2]}}', changed_by => 'alice');
SELECT hub.patch_config('svc-a', '{"b": "two", "a": null}');
SELECT hub.put_config('svc-b', '{"x": true}', '2.0.0');
SELECT hub.delete_config('svc-b', changed_by => 'bob');
SELECT hub.rollback_config('svc-b', '2.0.0');
INSERT INTO hub.service_configs (service_name, config_json) VALUES ('svc-c', '{"c": 3}');
UPDATE hub.service_configs SET config_json = '{"c": 4}' WHERE service_name = 'svc-c';
DELETE FROM hub.service_configs WHERE service_name = 'svc-c';
BEGIN;
SELECT hub.put_config('svc-rolled-back', '{"never": 1}');
ROLLBACK;
SQL
rsql "SELECT id FROM hub.config_audit_log WHERE id > $first ORDER BY id" >"$HUB_RUN/want1"
tap_is "$(wc -l <"$HUB_RUN/want1")" 8 "eight changes committed (put, patch, put, delete, rollback, insert, update, delete)"
hub_wait_for 20 sub_lines_at_least all 8
sleep 0.3 # let any duplicate or stray message arrive before counting
tap_is "$(wc -l <"$HUB_RUN/sub-all.out")" 8 "NATS subscriber receives exactly one message per change, nothing for the rolled-back one"

rsql "SELECT json_build_object('revision', id, 'service_name', service_name,
	'config', config_json, 'version', version, 'previous_version', previous_version,
	'action', action, 'updated_at', floor(extract(epoch FROM changed_at) * 1000)::int8,
	'updated_by', changed_by) FROM hub.config_audit_log WHERE id > $first ORDER BY id" >"$HUB_RUN/audit1"
check=$("$HUB_PYTHON" - "$HUB_RUN/sub-all.out" "$HUB_RUN/audit1" <<'PY'
import json, sys
msgs = [l.rstrip("\n").split(" ", 1) for l in open(sys.argv[1]) if l.strip()]
audit = [json.loads(l) for l in open(sys.argv[2]) if l.strip()]
keys = {"service_name", "config", "version", "previous_version", "action",
        "revision", "updated_at", "updated_by"}
problems = []
if len(msgs) != len(audit):
    problems.append("count %d != %d" % (len(msgs), len(audit)))
for (subject, body), a in zip(msgs, audit):
    m = json.loads(body)
    if set(m) != keys:
        problems.append("keys %s" % sorted(m))
    if subject != "config.update." + a["service_name"]:
        problems.append("subject %s for %s" % (subject, a["service_name"]))
    want_config = None if a["action"] == "deleted" else a["config"]
    for k in ("service_name", "version", "previous_version", "action",
              "revision", "updated_at", "updated_by"):
        if m[k] != a[k]:
            problems.append("rev %s: %s = %r, want %r" % (a["revision"], k, m[k], a[k]))
    if m["config"] != want_config:
        problems.append("rev %s: config %r, want %r" % (a["revision"], m["config"], want_config))
print("ok" if not problems else "; ".join(problems[:5]))
PY
)
tap_is "$check" ok "message bodies match the audit rows (config null for deleted, updated_at in ms, updated_by) in revision order"
tap_is "$(cut -d' ' -f1 "$HUB_RUN/sub-all.out" | tr '\n' ' ')" \
	"config.update.svc-a config.update.svc-a config.update.svc-b config.update.svc-b config.update.svc-b config.update.svc-c config.update.svc-c config.update.svc-c " \
	"subjects are config.update.<service_name>"

hub_wait_for 20 listen_has hub_config 8
listen_payloads hub_config >"$HUB_RUN/payloads1"
check=$("$HUB_PYTHON" - "$HUB_RUN/payloads1" "$HUB_RUN/audit1" <<'PY'
import json, sys
pl = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
audit = [json.loads(l) for l in open(sys.argv[2]) if l.strip()]
want = [{"service_name": a["service_name"], "version": a["version"],
         "revision": a["revision"], "action": a["action"]} for a in audit]
print("ok" if pl == want else "got %s want %s" % (pl[:3], want[:3]))
PY
)
tap_is "$check" ok "LISTEN hub_config gets {service_name, version, revision, action} for each change, in order"
hub_wait_for 10 relay_backlog_is 0
tap_is "$(relay_field "backlog || ' ' || (sent >= 8) || ' ' || (last_publish_at IS NOT NULL)")" "0 true true" \
	"confirmed rows leave the outbox; relay_status counts them and the publish time"

# --- NATS down for a while: NOTIFY goes on, 1,000 changes wait, then arrive --
echo "# $(date +%T) outage"
hub_nats_stop main
hub_wait_for 20 relay_is connected f
tap_is "$(relay_field connected)" f "relay_status shows the NATS outage"
before=$(rsql "SELECT max(id) FROM hub.config_audit_log")
notes_before=$(listen_count hub_config)
for i in $(seq 1 1000); do
	echo "SELECT hub.put_config('load-$((i % 10))', '{\"n\": $i}');"
done >"$HUB_RUN/load.sql"
hub_psql -d "$RELAY_DB" -f "$HUB_RUN/load.sql" >/dev/null
rsql "SELECT id FROM hub.config_audit_log WHERE id > $before ORDER BY id" >"$HUB_RUN/want2"
tap_is "$(wc -l <"$HUB_RUN/want2")" 1000 "1,000 changes commit while nats-server is stopped"
hub_wait_for 30 listen_has hub_config $((notes_before + 1000))
tap_is "$(($(listen_count hub_config) - notes_before))" 1000 "LISTEN hub_config sees all 1,000 changes while NATS is down"
hub_wait_for 10 relay_is unnotified 0
tap_is "$(relay_field "backlog || ' ' || unnotified || ' ' || state || ' ' || (oldest_pending_age > '0'::interval)")" \
	"1000 0 nats down true" "the 1,000 rows wait in the outbox, already notified (backlog, unnotified, state, oldest_pending_age)"
sleep "$OUTAGE_SECONDS" # the outage itself: the relay keeps retrying meanwhile
hub_nats_start main || exit 1
start_ms=$(($(date +%s%N) / 1000000))
hub_wait_for 60 relay_backlog_is 0
tap_is "$(relay_field backlog)" 0 "after nats-server restarts the relay reconnects and drains the backlog"
echo "# backlog drained $(($(date +%s%N) / 1000000 - start_ms)) ms after the restart"
"$HUB_SUB" -s "$NATS_URL" --dump-stream HUB >"$HUB_RUN/stream2" || exit 1
bodies_revisions "$HUB_RUN/stream2" | awk -v b="$before" '$1 > b' >"$HUB_RUN/got2"
tap_is "$(check_revisions "$HUB_RUN/got2" "$HUB_RUN/want2")" ok "all 1,000 changes reach NATS after the restart, in revision order"

echo "# $(date +%T) kill"
# --- the relay killed with SIGKILL mid-batch: nothing missing ---------------
relay_set central_hub.relay_batch_size 2 # a slow drain, to kill it midway
hub_nats_stop main
hub_wait_for 20 relay_is connected f
before=$(rsql "SELECT max(id) FROM hub.config_audit_log")
for i in $(seq 1 3000); do
	echo "SELECT hub.put_config('kill-$((i % 20))', '{\"n\": $i}');"
done >"$HUB_RUN/load3.sql"
hub_psql -d "$RELAY_DB" -f "$HUB_RUN/load3.sql" >/dev/null
rsql "SELECT id FROM hub.config_audit_log WHERE id > $before ORDER BY id" >"$HUB_RUN/want3"
old_pid=$(relay_field pid)
sent_before=$(relay_field sent)
echo "# $(date +%T) loaded"
hub_nats_start main || exit 1
hub_wait_for 30 relay_is "sent > $sent_before" t
left=$(relay_field backlog)
kill -9 "$old_pid"
tap_ok $([ "$left" -gt 0 ] && [ "$left" -lt 3000 ] && echo 0 || echo 1) \
	"relay killed with SIGKILL while draining ($left of 3000 rows left)"
hub_wait_for 30 bash -c "p=\$(psql -X -t -A -d $RELAY_DB -c 'SELECT pid FROM hub.relay_status' 2>/dev/null) && [ -n \"\$p\" ] && [ \"\$p\" != $old_pid ]"
hub_wait_for 60 relay_backlog_is 0
tap_is "$(relay_field backlog)" 0 "the restarted relay drains the rest"
"$HUB_SUB" -s "$NATS_URL" --dump-stream HUB >"$HUB_RUN/stream3" || exit 1
bodies_revisions "$HUB_RUN/stream3" | awk -v b="$before" '$1 > b' >"$HUB_RUN/got3"
tap_is "$(check_revisions "$HUB_RUN/got3" "$HUB_RUN/want3")" ok "after the crash nothing is missing (duplicates allowed, first arrivals in order)"
echo "# $(($(wc -l <"$HUB_RUN/got3") - 3000)) duplicates after the crash"
relay_set central_hub.relay_batch_size 1000
# the crash restarted every backend, the listening session too
exec 7>&-
listen_start "$HUB_RUN/listen2.out" || exit 1

echo "# $(date +%T) no nats"
# --- central_hub.nats_url empty: notifications only, outbox kept empty -------
relay_set central_hub.nats_url ''
hub_wait_for 20 relay_is nats_configured f
notes_before=$(listen_count hub_config)
lines_before=$(wc -l <"$HUB_RUN/sub-all.out")
for i in 1 2 3; do rsql "SELECT hub.put_config('quiet', '{\"n\": $i}')" >/dev/null; done
hub_wait_for 20 listen_has hub_config $((notes_before + 3))
tap_is "$(($(listen_count hub_config) - notes_before))" 3 "with nats_url empty (reloaded by SIGHUP) LISTEN still sees every change"
hub_wait_for 10 relay_backlog_is 0
tap_is "$(rsql "SELECT count(*) FROM hub.outbox")" 0 "with nats_url empty the outbox is cleared"
tap_is "$(wc -l <"$HUB_RUN/sub-all.out")" "$lines_before" "with nats_url empty nothing is published"
dead_port=$(hub_free_port)
relay_set central_hub.nats_url "nats://127.0.0.1:$dead_port, $NATS_URL"
hub_wait_for 20 relay_is connected t
tap_is "$(relay_field connected)" t "setting nats_url again (SIGHUP) to a comma-separated list with a dead server connects"
rsql "SELECT hub.put_config('listed', '{}')" >/dev/null
hub_wait_for 20 relay_backlog_is 0
tap_is "$(tail -n 1 "$HUB_RUN/sub-all.out" | cut -d' ' -f1)" config.update.listed "and publishing resumes through the live server"

# --- a lower outbox id that commits after higher ones is not passed over ----
# (the relay reads from a horizon past the rows it deleted; a 60 s sweep
# timer leaves only the horizon rule to find the late row)
relay_set central_hub.relay_interval 60s
psql -X -q -d "$RELAY_DB" -c "BEGIN" -c "SELECT hub.put_config('late-commit', '{\"n\": 1}')" \
	-c "SELECT pg_sleep(3)" -c "COMMIT" >/dev/null 2>&1 &
late_pid=$!
hub_wait_for 10 bash -c "[ \"\$(psql -X -t -A -d $RELAY_DB -c \"SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query = 'SELECT pg_sleep(3)'\")\" = 1 ]"
for i in $(seq 1 30); do rsql "SELECT hub.put_config('early-$i', '{}')" >/dev/null; done
hub_wait_for 20 relay_backlog_is 0
tap_is "$(grep -c '^config.update.late-commit ' "$HUB_RUN/sub-all.out")" 0 \
	"a change still uncommitted is not sent while 30 later ones are"
wait $late_pid
tap_ok "$(hub_wait_for 3 grep -q '^config.update.late-commit ' "$HUB_RUN/sub-all.out"; echo $?)" \
	"once it commits, it is sent at once although its outbox id is below theirs"
relay_set central_hub.relay_interval 500ms

# --- SIGTERM with NATS unreachable is fast ----------------------------------
hub_nats_stop main
hub_wait_for 20 relay_is connected f
rsql "SELECT hub.put_config('waiting', '{}')" >/dev/null
start_ms=$(($(date +%s%N) / 1000000))
hub_pg_stop relay
took=$(($(date +%s%N) / 1000000 - start_ms))
tap_ok $([ "$took" -lt 5000 ] && echo 0 || echo 1) "fast shutdown with NATS unreachable and rows waiting takes ${took} ms (< 5 s)"
hub_pg_up relay
tap_is "$(rsql "SELECT count(*) FROM hub.outbox")" 1 "the waiting row survives the restart"

tap_done
