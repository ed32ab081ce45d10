#!/usr/bin/env bash
# hubd's HTTP edges against a real hubd: API keys and roles, /health and
# /metrics without a key, malformed requests (content type, huge bodies,
# unknown routes and methods, bad percent-encoding, very long URLs),
# long-polls woken by a change, by NOTIFY and by their timeout, --no-auth,
# and a clean SIGTERM shutdown that answers parked long-polls.
set -uo pipefail
source "$HUB_ROOT/test/lib.sh"
source "$HUB_ROOT/test/lib_hubd.sh"
hub_run_dir "$HUB_RUN/hubd_http"
trap hub_cleanup EXIT

hubd_db hubtest_hubd_http
READER=$(hubd_key dashboard hub_reader)
WRITER=$(hubd_key deploy-bot hub_writer)
ADMIN=$(hubd_key ops hub_admin)
OLD=$(hubd_key old-key hub_writer)
hubd_start http --threads 3 --poll-interval 200 --max-body 65536
JSON=(-H 'Content-Type: application/json')

# --- keys and roles -------------------------------------------------------------
tap_is "${#WRITER} ${WRITER:0:4}" "68 hub_" "hub.create_api_key returns a hub_ key with 256 random bits"
tap_is "$(hub_psql -d "$HUBD_DB" -c "SELECT count(*) FROM hub.api_keys WHERE key_hash = sha256(convert_to('$WRITER', 'UTF8'))")" 1 \
	"only the SHA-256 of the key is stored"
HUBD_KEY='' hreq GET /api/v1/config/svc1
tap_is "$HTTP_STATUS $(jget 'd["error"]["code"]')" "401 missing_api_key" "a request without X-API-Key answers 401"
HUBD_KEY=wrong-key hreq GET /api/v1/config/svc1
tap_is "$HTTP_STATUS $(jget 'd["error"]["code"]')" "401 invalid_api_key" "an unknown API key answers 401"
HUBD_KEY=$WRITER hreq PUT /api/v1/config/svc1 "${JSON[@]}" -d '{"batch_size":100}'
tap_is "$HTTP_STATUS" 201 "a hub_writer key writes configs"
HUBD_KEY=$READER hreq GET /api/v1/config/svc1
tap_is "$HTTP_STATUS" 200 "a hub_reader key reads configs"
HUBD_KEY=$READER hreq POST /api/v1/config/svc1 "${JSON[@]}" -d '{"batch_size":5}'
tap_is "$HTTP_STATUS $(jget 'd["error"]["code"]')" "403 forbidden" "a hub_reader key cannot write (403)"
HUBD_KEY=$WRITER hreq POST /api/v1/discovery/register "${JSON[@]}" \
	-d '{"service_name":"svc1","host":"127.0.0.1","port":8001}'
tap_is "$HTTP_STATUS" 403 "a hub_writer key cannot register instances (403)"
HUBD_KEY=$OLD hreq GET /api/v1/config/svc1
tap_is "$HTTP_STATUS" 200 "a key works before it is disabled"
hub_psql -d "$HUBD_DB" -c "SELECT hub.disable_api_key('old-key')" >/dev/null
HUBD_KEY=$OLD hreq GET /api/v1/config/svc1
tap_is "$HTTP_STATUS" 401 "a disabled key answers 401 from the next request on"
tap_is "$(psql -X -q -t -A -d "$HUBD_DB" -v VERBOSITY=sqlstate -c "SET ROLE hub_writer" -c "SELECT hub.create_api_key('x', 'hub_admin')" 2>&1 | sed -n 's/^ERROR: *//p')" \
	"42501" "only hub_admin may create API keys"

HUBD_KEY=$WRITER

# --- /health and /metrics -------------------------------------------------------
HUBD_KEY='' hreq GET /health
tap_is "$HTTP_STATUS $(jget 'd["status"], d["checks"]["database"], d["configured_services"]')" \
	'200 ["healthy", "healthy", 1]' "GET /health needs no key and reports database and services"
tap_ok "$(jget 'd["checks"]["relay"]["backlog"] >= 0 and "registered_services" in d' | grep -qx true; echo $?)" \
	"/health reports the relay backlog and registered services"
HUBD_KEY='' hreq GET /metrics
tap_is "$HTTP_STATUS $(header Content-Type | cut -d';' -f1)" "200 text/plain" "GET /metrics needs no key and is text"
for m in 'hubd_http_requests_total{route="config_get",status="200"}' \
	'hubd_http_request_duration_seconds_bucket{route="config_put",le="+Inf"}' \
	'hubd_config_writes_total{kind="put"} 1' 'hub_relay_backlog ' 'hub_instances{status="healthy"} 0' \
	'hubd_database_up 1'; do
	tap_ok "$(grep -qF "$m" <<<"$HTTP_BODY"; echo $?)" "/metrics has $m"
done

# --- malformed requests ------------------------------------------------------------
hreq POST /api/v1/config/svc1 -H 'Content-Type: text/plain' -d '{"a":1}'
tap_is "$HTTP_STATUS $(jget 'd["error"]["code"]')" "415 unsupported_media_type" "a body that is not application/json answers 415"
head -c 200000 /dev/zero | tr '\0' 'x' >"$HUB_RUN/big"
hreq POST /api/v1/config/svc1 "${JSON[@]}" --data-binary @"$HUB_RUN/big"
tap_is "$HTTP_STATUS $(jget 'd["error"]["code"]')" "413 too_large" "a Content-Length above --max-body answers 413"
hreq POST /api/v1/config/svc1 "${JSON[@]}" -H 'Transfer-Encoding: chunked' --data-binary @"$HUB_RUN/big"
tap_is "$HTTP_STATUS" 413 "a chunked body growing above --max-body answers 413"
hreq GET /api/v1/nothing
tap_is "$HTTP_STATUS $(jget 'd["error"]["code"]')" "404 not_found" "an unknown route answers 404"
hreq GET /
tap_is "$HTTP_STATUS" 404 "the root path answers 404"
hreq PATCH /api/v1/config/svc1 "${JSON[@]}" -d '{}'
tap_is "$HTTP_STATUS $(header Allow)" "405 GET, POST, PUT, DELETE" "an unsupported method answers 405 with Allow"
hreq GET /api/v1/config/%zz
tap_is "$HTTP_STATUS $(jget 'd["error"]["code"]')" "400 bad_path" "a malformed percent-escape answers 400"
hreq GET /api/v1/config/a%00b
tap_is "$HTTP_STATUS" 400 "an encoded NUL answers 400"
hreq GET /api/v1/config/svc%31
tap_is "$HTTP_STATUS $(jget 'd["service_name"]')" "200 svc1" "percent-encoded names are decoded"
hreq GET "/api/v1/config/svc1?version=%G1&wait=1"
tap_is "$HTTP_STATUS" 400 "a malformed query escape answers 400"
hreq GET "/api/v1/config/$(head -c 400 /dev/zero | tr '\0' 'a')"
tap_is "$HTTP_STATUS" 414 "a path segment longer than 256 bytes answers 414"
hreq GET "/api/v1/config/$(head -c 100000 /dev/zero | tr '\0' 'a')"
tap_ok "$([[ $HTTP_STATUS =~ ^(414|431)$ ]]; echo $?)" "a 100 kB URL is refused with 414/431 (got $HTTP_STATUS)"
HUBD_KEY='' hreq GET /health
tap_is "$HTTP_STATUS" 200 "hubd still answers after the malformed requests"

# --- long-poll ------------------------------------------------------------------------
waiting() {
	curl -s "$HUBD_URL/metrics" | grep -qx "hubd_longpoll_waiting $1"
}
lp="$HUB_RUN/longpoll.out"
start=$(date +%s%N)
curl -s -o "$lp" -w '%{http_code}' -H "X-API-Key: $WRITER" \
	"$HUBD_URL/api/v1/config/svc1?wait=30&version=1.0.0" >"$lp.status" &
lp_pid=$!
hub_wait_for 10 waiting 1
tap_ok $? "a long-poll on the current version is parked (no thread held)"
HUBD_KEY=$WRITER hreq POST /api/v1/config/svc1 "${JSON[@]}" -d '{"batch_size":200}'
wait $lp_pid
elapsed=$((($(date +%s%N) - start) / 1000000))
HTTP_BODY=$(cat "$lp")
tap_is "$(cat "$lp.status") $(jget 'd["version"], d["config"]["batch_size"]')" '200 ["1.0.1", 200]' \
	"the long-poll returns the new config when the version changes"
tap_ok "$((elapsed < 10000 ? 0 : 1))" "it returns soon after the change (${elapsed} ms), not at its timeout"

start=$(date +%s%N)
hreq GET "/api/v1/config/svc1?wait=1&version=1.0.1"
elapsed=$((($(date +%s%N) - start) / 1000000))
tap_is "$HTTP_STATUS $(jget 'd["version"]')" "200 1.0.1" "a long-poll without change answers the current config at its timeout"
tap_ok "$((elapsed >= 1000 && elapsed < 5000 ? 0 : 1))" "the timeout is honoured (${elapsed} ms for wait=1)"
hreq GET "/api/v1/config/svc1?wait=1" -H 'If-None-Match: "1.0.1"'
tap_is "$HTTP_STATUS" 304 "a long-poll keyed by If-None-Match answers 304 at its timeout"
hreq GET "/api/v1/config/svc1?wait=30&version=1.0.0"
tap_is "$HTTP_STATUS $(jget 'd["version"]')" "200 1.0.1" "a long-poll on an old version answers at once"

curl -s -o "$lp" -w '%{http_code}' -H "X-API-Key: $WRITER" \
	"$HUBD_URL/api/v1/config/brand-new?wait=30&version=" >"$lp.status" &
lp_pid=$!
hub_wait_for 10 waiting 1
HUBD_KEY=$WRITER hreq PUT /api/v1/config/brand-new "${JSON[@]}" -d '{"x":1}'
wait $lp_pid
HTTP_BODY=$(cat "$lp")
tap_is "$(cat "$lp.status") $(jget 'd["version"]')" "200 1.0.0" "version= (empty) waits for a service to be created"

# NOTIFY path: a second hubd whose timer re-check is off (60 s)
main_url=$HUBD_URL
hubd_start notify --poll-interval 60000
curl -s -o "$lp" -w '%{http_code}' -H "X-API-Key: $WRITER" \
	"$HUBD_URL/api/v1/config/svc1?wait=30&version=1.0.1" >"$lp.status" &
lp_pid=$!
hub_wait_for 10 waiting 1
start=$(date +%s%N)
hub_psql -d "$HUBD_DB" -c "SELECT hub.patch_config('svc1', '{\"batch_size\":300}')" \
	-c "NOTIFY hub_config, '{\"service_name\":\"svc1\",\"version\":\"1.0.2\",\"revision\":1,\"action\":\"updated\"}'" >/dev/null
wait $lp_pid
elapsed=$((($(date +%s%N) - start) / 1000000))
HTTP_BODY=$(cat "$lp")
tap_is "$(cat "$lp.status") $(jget 'd["version"]')" "200 1.0.2" "NOTIFY hub_config wakes the long-poll of its service"
tap_ok "$((elapsed < 5000 ? 0 : 1))" "woken by the notification (${elapsed} ms), not by the 60 s timer"

# SIGTERM: a parked long-poll is answered, hubd exits 0
curl -s -o "$lp" -w '%{http_code}' -H "X-API-Key: $WRITER" \
	"$HUBD_URL/api/v1/config/svc1?wait=60&version=1.0.2" >"$lp.status" &
lp_pid=$!
hub_wait_for 10 waiting 1
kill -TERM "$HUBD_PID"
wait $lp_pid
tap_is "$(cat "$lp.status")" 200 "on SIGTERM a parked long-poll is answered with the current config"
wait "$HUBD_PID"
tap_is "$?" 0 "hubd exits 0 after SIGTERM"
tap_ok "$(grep -q 'stopped' "$HUBD_LOG"; echo $?)" "hubd logs its clean stop"
HUBD_URL=$main_url

# --- --default-key-file: the seeds' clients send no key ------------------------------
echo "$READER" >"$HUB_RUN/legacy.key"
hubd_start legacy --default-key-file "$HUB_RUN/legacy.key"
HUBD_KEY='' hreq GET /api/v1/config/svc1
tap_is "$HTTP_STATUS $(jget 'd["service_name"]')" "200 svc1" \
	"with --default-key-file a GET without X-API-Key runs as that key (the seeds' ConfigClient)"
HUBD_KEY='' hreq POST /api/v1/config/svc1 "${JSON[@]}" -d '{"x":2}'
tap_is "$HTTP_STATUS" 403 "and is limited to that key's role (hub_reader: no writes)"
HUBD_KEY=$WRITER hreq POST /api/v1/config/svc1 "${JSON[@]}" -d '{"x":2}'
tap_is "$HTTP_STATUS" 200 "an explicit X-API-Key still takes precedence"
hub_psql -d "$HUBD_DB" -c "SELECT hub.disable_api_key('dashboard')" >/dev/null
HUBD_KEY='' hreq GET /api/v1/config/svc1
tap_is "$HTTP_STATUS" 401 "disabling the default key shuts keyless clients out"

# --- --no-auth -----------------------------------------------------------------------------
hubd_start noauth --no-auth
tap_ok "$(grep -q 'WITHOUT AN API KEY' "$HUBD_LOG"; echo $?)" "--no-auth says so loudly in the log"
HUBD_KEY='' hreq PUT /api/v1/config/dev-svc "${JSON[@]}" -d '{"x":1}'
tap_is "$HTTP_STATUS" 201 "--no-auth accepts requests without a key"
tap_is "$(hub_psql -d "$HUBD_DB" -c "SELECT changed_by FROM hub.config_audit_log WHERE service_name = 'dev-svc'")" \
	"hubd-no-auth" "--no-auth changes are audited as hubd-no-auth"

tap_done
