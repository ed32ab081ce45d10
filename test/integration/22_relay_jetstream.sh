#!/usr/bin/env bash
# JetStream mode of the relay: every change is acknowledged by a stream (with
# Nats-Msg-Id = revision), a missing stream holds rows back without holding
# NOTIFY back, health events are relayed too, oversized configs are sent
# without their config, and the subject prefix reloads on SIGHUP.
set -uo pipefail
source "$HUB_ROOT/test/lib.sh"
source "$HUB_ROOT/test/integration/relay.inc"
hub_run_dir "$HUB_RUN/relay-jetstream"
trap hub_cleanup EXIT

mkdir -p "$HUB_RUN/nats-js"
echo "max_payload: 16384" >"$HUB_RUN/nats-js/server.conf"
hub_nats_start js -c "$HUB_RUN/nats-js/server.conf" || exit 1
relay_cluster_start relay "central_hub.nats_url = '$NATS_URL'
central_hub.nats_stream = 'HUBJS'" || exit 1
hub_wait_for 20 relay_is connected t
listen_start "$HUB_RUN/listen.out" || exit 1

# --- the stream does not exist yet: rows wait, NOTIFY does not ---------------
for i in 1 2 3; do rsql "SELECT hub.put_config('early', '{\"n\": $i}')" >/dev/null; done
hub_wait_for 20 listen_has hub_config 3
tap_is "$(listen_count hub_config)" 3 "NOTIFY flows while JetStream refuses the messages (no stream yet)"
hub_wait_for 10 relay_is "last_error IS NOT NULL" t
tap_is "$(relay_field "backlog || ' ' || state")" "3 nats failing" "unacknowledged rows stay in the outbox (state 'nats failing')"
tap_ok $(relay_field last_error | grep -qi jetstream && echo 0 || echo 1) \
	"relay_status.last_error says why: $(relay_field last_error)"

"$HUB_SUB" -s "$NATS_URL" --add-stream HUBJS 'config.update.>' 'health.>' 'cfg.v2.>' || exit 1
hub_wait_for 20 relay_backlog_is 0
tap_is "$(relay_field backlog)" 0 "once the stream exists the waiting rows are acknowledged and removed"

# --- 200 changes, each stored once with its revision as Nats-Msg-Id ---------
before=$(rsql "SELECT max(id) FROM hub.config_audit_log")
for i in $(seq 1 200); do
	echo "SELECT hub.put_config('js-$((i % 7))', '{\"n\": $i}');"
done | hub_psql -d "$RELAY_DB" >/dev/null
rsql "SELECT id FROM hub.config_audit_log WHERE id > $before ORDER BY id" >"$HUB_RUN/want"
hub_wait_for 30 relay_backlog_is 0
"$HUB_SUB" -s "$NATS_URL" --dump-stream HUBJS >"$HUB_RUN/dump" || exit 1
check=$("$HUB_PYTHON" - "$HUB_RUN/dump" "$HUB_RUN/want" "$before" <<'PY'
import json, sys
want = [int(x) for x in open(sys.argv[2]).read().split()]
before = int(sys.argv[3])
got = []
bad_ids = 0
for line in open(sys.argv[1]):
    msg_id, subject, body = line.rstrip("\n").split(" ", 2)
    m = json.loads(body)
    if subject.startswith("config.update.") and m["revision"] > before:
        got.append(m["revision"])
        if msg_id != str(m["revision"]):
            bad_ids += 1
print("ok" if got == want and bad_ids == 0 else
      "got %d (%d bad ids), want %d" % (len(got), bad_ids, len(want)))
PY
)
tap_is "$check" ok "the stream holds each of 200 changes exactly once, in order, Nats-Msg-Id = revision"
tap_is "$(relay_field "sent >= 203")" t "relay_status.sent counts the acknowledged messages"
hub_wait_for 10 listen_has hub_config 203
tap_is "$(listen_count hub_config)" 203 "LISTEN hub_config saw every change once"

# --- health events ----------------------------------------------------------
hid=$(rsql "WITH e AS (INSERT INTO hub.health_events (service_name, instance_id,
		previous_status, status, service_status, error)
	VALUES ('svc-h', 'i-1', 'healthy', 'unhealthy', 'degraded', 'connection refused')
	RETURNING id, service_name)
	INSERT INTO hub.outbox (topic, service_name, ref_id)
	SELECT 'health', service_name, id FROM e RETURNING ref_id")
hub_wait_for 20 listen_has hub_health 1
tap_is "$(listen_payloads hub_health)" \
	"{\"service_name\" : \"svc-h\", \"instance_id\" : \"i-1\", \"previous_status\" : \"healthy\", \"status\" : \"unhealthy\", \"service_status\" : \"degraded\", \"revision\" : $hid}" \
	"NOTIFY hub_health carries service, instance, statuses and revision"
hub_wait_for 20 relay_backlog_is 0
"$HUB_SUB" -s "$NATS_URL" --dump-stream HUBJS | grep " health\.svc-h " >"$HUB_RUN/health" || true
at_ms=$(rsql "SELECT floor(extract(epoch FROM at) * 1000)::int8 FROM hub.health_events WHERE id = $hid")
check=$("$HUB_PYTHON" - "$HUB_RUN/health" "$hid" "$at_ms" <<'PY'
import json, sys
lines = open(sys.argv[1]).read().splitlines()
hid, at = int(sys.argv[2]), int(sys.argv[3])
want = {"service_name": "svc-h", "instance_id": "i-1", "previous_status": "healthy",
        "status": "unhealthy", "service_status": "degraded", "at": at,
        "error": "connection refused", "revision": hid}
if len(lines) != 1:
    print("%d messages" % len(lines))
else:
    msg_id, subject, body = lines[0].split(" ", 2)
    m = json.loads(body)
    print("ok" if m == want and msg_id == "health-%d" % hid else "%s %s" % (msg_id, m))
PY
)
tap_is "$check" ok "health events go to health.<service> with the full body, Nats-Msg-Id health-<id>"

# --- a config larger than NATS's max payload --------------------------------
big_rev=$(rsql "SELECT hub.put_config('big', jsonb_build_object('blob', repeat('x', 20000)))" >/dev/null &&
	rsql "SELECT max(id) FROM hub.config_audit_log")
hub_wait_for 20 relay_backlog_is 0
body=$("$HUB_SUB" -s "$NATS_URL" --dump-stream HUBJS | grep " config\.update\.big " | cut -d' ' -f3-)
check=$(echo "$body" | "$HUB_PYTHON" -c '
import json, sys
m = json.loads(sys.stdin.read())
print("ok" if m.get("config_omitted") is True and m["config"] is None
      and m["revision"] == int(sys.argv[1]) and m["version"] == "1.0.0" else m)' "$big_rev")
tap_is "$check" ok "a config over the NATS max payload is sent without it, flagged config_omitted: true"

# --- the subject prefix reloads on SIGHUP -----------------------------------
relay_set central_hub.nats_subject_prefix cfg.v2
hub_wait_for 10 bash -c "[ \"\$(psql -X -t -A -d $RELAY_DB -c 'SHOW central_hub.nats_subject_prefix')\" = cfg.v2 ]"
rsql "SELECT hub.put_config('svc-p', '{\"p\": 1}')" >/dev/null
hub_wait_for 20 relay_backlog_is 0
tap_is "$("$HUB_SUB" -s "$NATS_URL" --dump-stream HUBJS | grep -c " cfg\.v2\.svc-p ")" 1 \
	"after a reload of nats_subject_prefix changes go to cfg.v2.<service>"
tap_ok $(rsql "SET central_hub.nats_subject_prefix = 'bad prefix'" >/dev/null 2>&1 && echo 1 || echo 0) \
	"a subject prefix with blanks is refused"

tap_done
