#!/usr/bin/env bash
# hubd's read cache of GET /api/v1/config/{service}: armed only while the
# relay serves the database (its NOTIFY hub_config keeps the cache exact),
# hits answer like the database would (body, ETag, 304), every kind of
# change is seen at once (plain SQL through NOTIFY, hubd's own writes,
# deletes), disabled keys are refused at once (NOTIFY hub_api_keys), the
# TTL bounds a change that sent no NOTIFY, and without a relay, with the
# relay gone or with --cache-ttl 0 nothing is served from the cache.
set -uo pipefail
source "$HUB_ROOT/test/lib.sh"
source "$HUB_ROOT/test/lib_hubd.sh"
hub_run_dir "$HUB_RUN/hubd_cache"
trap hub_cleanup EXIT

# the shared cluster's relay serves $HUB_DB
HUBD_DB=$HUB_DB
q() { hub_psql -d "$HUBD_DB" -c "$1"; }
q "DELETE FROM hub.api_keys WHERE name LIKE 'cache-%'" >/dev/null
READER=$(hubd_key cache-reader hub_reader)
WRITER=$(hubd_key cache-writer hub_writer)
OTHER=$(hubd_key cache-other hub_reader)
q "SELECT hub.put_config('cache-svc', '{\"operational\":{\"batch_size\":100}}', version => '7.0.0')" >/dev/null
JSON=(-H 'Content-Type: application/json')

# metric NAME: its value in hubd's /metrics
metric() {
	curl -s "$HUBD_URL/metrics" | awk -v m="$1" '$1 == m { print $2 }'
}
# version_is V: GET answers version V
version_is() {
	hreq GET /api/v1/config/cache-svc
	[ "$HTTP_STATUS" = 200 ] && [ "$(jget 'd["version"]')" = "$1" ]
}

# A long TTL: whatever turns up fresh below came by invalidation, not age.
hubd_start cache --threads 2 --cache-ttl 600000
tap_ok "$(hub_wait_for 10 bash -c "[ \"\$(curl -s $HUBD_URL/metrics | awk '\$1 == \"hubd_config_cache_armed\" { print \$2 }')\" = 1 ]"; echo $?)" \
	"the cache arms while the relay serves the database"

HUBD_KEY=$READER
hreq GET /api/v1/config/cache-svc
first_body=$HTTP_BODY
hits0=$(metric hubd_config_cache_hits_total)
hreq GET /api/v1/config/cache-svc
tap_is "$HTTP_STATUS $(header ETag) $(($(metric hubd_config_cache_hits_total) - hits0))" '200 "7.0.0" 1' \
	"a second GET is a cache hit with the version as ETag"
tap_is "$HTTP_BODY" "$first_body" "the cached answer is the database's answer byte for byte"
hreq GET /api/v1/config/cache-svc -H 'If-None-Match: "7.0.0"'
tap_is "$HTTP_STATUS $(header ETag) $(($(metric hubd_config_cache_hits_total) - hits0))" '304 "7.0.0" 2' \
	"If-None-Match with the cached version answers 304 from the cache"
HUBD_KEY=$OTHER hreq GET /api/v1/config/cache-svc
HUBD_KEY=wrong-key hreq GET /api/v1/config/cache-svc
tap_is "$HTTP_STATUS $(jget 'd["error"]["code"]')" "401 invalid_api_key" \
	"a cached config is never served to an unknown key"
HUBD_KEY='' hreq GET /api/v1/config/cache-svc
tap_is "$HTTP_STATUS" 401 "nor to a request without a key"

# plain SQL: the relay's NOTIFY hub_config drops the entry
q "UPDATE hub.service_configs SET config_json = '{\"operational\":{\"batch_size\":200}}' WHERE service_name = 'cache-svc'" >/dev/null
tap_ok "$(hub_wait_for 5 version_is 7.0.1; echo $?)" "a change made in psql is seen through the cache (NOTIFY invalidates)"
hreq GET /api/v1/config/cache-svc
tap_is "$(jget 'd["config"]["operational"]["batch_size"]')" 200 "with its new content"

# hubd's own writes: read-your-writes on the next request, every time
ok=0
for i in $(seq 1 10); do
	HUBD_KEY=$WRITER hreq POST /api/v1/config/cache-svc "${JSON[@]}" -d "{\"operational\":{\"n\":$i}}"
	want=$(jget 'd["version"]')
	hreq GET /api/v1/config/cache-svc
	[ "$(jget 'd["version"]') $(jget 'd["config"]["operational"]["n"]')" = "$want $i" ] || ok=1
done
tap_ok $ok "a GET right after a write through hubd sees that write (10 of 10)"

# delete, then create again
q "SELECT hub.delete_config('cache-svc')" >/dev/null
tap_ok "$(hub_wait_for 5 bash -c "[ \"\$(curl -s -o /dev/null -w '%{http_code}' -H 'X-API-Key: $READER' $HUBD_URL/api/v1/config/cache-svc)\" = 404 ]"; echo $?)" \
	"a deleted config answers 404 through the cache"
q "SELECT hub.put_config('cache-svc', '{\"operational\":{\"batch_size\":1}}', version => '8.0.0')" >/dev/null
tap_ok "$(hub_wait_for 5 version_is 8.0.0; echo $?)" "and a config created again is served"

# keys: disabling one (function or plain UPDATE) sends NOTIFY hub_api_keys
hreq GET /api/v1/config/cache-svc
hreq GET /api/v1/config/cache-svc
q "SELECT hub.disable_api_key('cache-reader')" >/dev/null
tap_ok "$(hub_wait_for 5 bash -c "[ \"\$(curl -s -o /dev/null -w '%{http_code}' -H 'X-API-Key: $READER' $HUBD_URL/api/v1/config/cache-svc)\" = 401 ]"; echo $?)" \
	"a key disabled with hub.disable_api_key is refused although it was cached"
HUBD_KEY=$OTHER hreq GET /api/v1/config/cache-svc
HUBD_KEY=$OTHER hreq GET /api/v1/config/cache-svc
q "UPDATE hub.api_keys SET disabled = true WHERE name = 'cache-other'" >/dev/null
tap_ok "$(hub_wait_for 5 bash -c "[ \"\$(curl -s -o /dev/null -w '%{http_code}' -H 'X-API-Key: $OTHER' $HUBD_URL/api/v1/config/cache-svc)\" = 401 ]"; echo $?)" \
	"so is a key disabled with a plain UPDATE of hub.api_keys"
HUBD_KEY=$WRITER

# the listener's connection killed: reconnects, and a change made meanwhile is seen
hreq GET /api/v1/config/cache-svc
q "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'hubd-longpoll' AND datname = current_database()" >/dev/null
q "SELECT hub.patch_config('cache-svc', '{\"after_kill\":true}')" >/dev/null
tap_ok "$(hub_wait_for 5 version_is 8.0.1; echo $?)" \
	"a change made while the listener reconnects is seen"
tap_ok "$(hub_wait_for 10 bash -c "[ \"\$(curl -s $HUBD_URL/metrics | awk '\$1 == \"hubd_config_cache_armed\" { print \$2 }')\" = 1 ]"; echo $?)" \
	"the cache arms again after the listener reconnects"

# the relay gone (it is restarted after 5 s): the cache disarms, then arms again
q "SELECT pg_terminate_backend(pid) FROM hub.relay_status WHERE pid IS NOT NULL" >/dev/null
tap_ok "$(hub_wait_for 5 bash -c "[ \"\$(curl -s $HUBD_URL/metrics | awk '\$1 == \"hubd_config_cache_armed\" { print \$2 }')\" = 0 ]"; echo $?)" \
	"without a relay the cache disarms (nothing would invalidate it)"
hits0=$(metric hubd_config_cache_hits_total)
hreq GET /api/v1/config/cache-svc
hreq GET /api/v1/config/cache-svc
tap_is "$(($(metric hubd_config_cache_hits_total) - hits0))" 0 "a disarmed cache answers nothing"
tap_ok "$(hub_wait_for 20 bash -c "[ \"\$(curl -s $HUBD_URL/metrics | awk '\$1 == \"hubd_config_cache_armed\" { print \$2 }')\" = 1 ]"; echo $?)" \
	"the cache arms again once the postmaster restarted the relay"

# the TTL bounds an entry whose change sent no NOTIFY (triggers off: no outbox row)
hubd_start cache-ttl --threads 2 --cache-ttl 1500
hub_wait_for 10 bash -c "[ \"\$(curl -s $HUBD_URL/metrics | awk '\$1 == \"hubd_config_cache_armed\" { print \$2 }')\" = 1 ]"
hreq GET /api/v1/config/cache-svc
hreq GET /api/v1/config/cache-svc
before=$(jget 'd["version"]')
psql -X -q -d "$HUBD_DB" -c "SET session_replication_role = replica" \
	-c "UPDATE hub.service_configs SET version = '9.9.9' WHERE service_name = 'cache-svc'" >/dev/null
hreq GET /api/v1/config/cache-svc
stale=$(jget 'd["version"]')
tap_ok "$(hub_wait_for 5 version_is 9.9.9; echo $?)" \
	"a change that sent no NOTIFY is seen once the entry is older than --cache-ttl"
tap_is "$stale" "$before" "(until then the cache answered the entry it had)"

# --cache-ttl 0: no cache
hubd_start nocache --threads 2 --cache-ttl 0
hreq GET /api/v1/config/cache-svc
hreq GET /api/v1/config/cache-svc
tap_is "$(metric hubd_config_cache_hits_total)" 0 "--cache-ttl 0 turns the cache off"

# a database no relay serves: never armed, every change seen at once
hubd_db hubtest_hubd_cache_norelay
q() { hub_psql -d "$HUBD_DB" -c "$1"; }
NKEY=$(hubd_key plain hub_writer)
q "SELECT hub.put_config('cache-svc', '{\"n\":0}')" >/dev/null
hubd_start norelay --threads 2 --cache-ttl 600000
HUBD_KEY=$NKEY
ok=0
for i in $(seq 1 5); do
	q "SELECT hub.put_config('cache-svc', '{\"n\":$i}')" >/dev/null
	hreq GET /api/v1/config/cache-svc
	[ "$(jget 'd["config"]["n"]')" = "$i" ] || ok=1
done
tap_ok $ok "without a relay for the database every GET reads it (5 of 5 changes seen at once)"
tap_is "$(metric hubd_config_cache_armed) $(metric hubd_config_cache_hits_total)" "0 0" \
	"and the cache stays disarmed"

hub_psql -d "$HUB_DB" -c "DELETE FROM hub.api_keys WHERE name LIKE 'cache-%'" \
	-c "SELECT hub.delete_config('cache-svc')" >/dev/null
tap_done
