#!/usr/bin/env bash
# hubd's config routes against a real hubd and PostgreSQL: the seeds' shapes
# for GET, POST (merge patch), PUT, DELETE, history and rollback; ETag,
# If-None-Match, If-Match and expected_version; every store error as its
# HTTP status; audit rows naming the API key; no-op writes.
set -uo pipefail
source "$HUB_ROOT/test/lib.sh"
source "$HUB_ROOT/test/lib_hubd.sh"
hub_run_dir "$HUB_RUN/hubd_config"
trap hub_cleanup EXIT

hubd_db hubtest_hubd_config
WRITER=$(hubd_key deploy-bot hub_writer)
hubd_start config --threads 2 --poll-interval 200
HUBD_KEY=$WRITER
svc=polygon-historical-downloader

# --- create, read ------------------------------------------------------------
hreq GET /api/v1/config/$svc
tap_is "$HTTP_STATUS $(jget 'd["error"]["code"]')" "404 not_found" \
	"GET of a service without config answers 404 with an error object"

hreq POST /api/v1/config/$svc -H 'Content-Type: application/json' \
	-d '{"operational":{"gap_check_interval_hours":1,"batch_size":100,"max_retries":3},"features":{"enable_gap_verification":true}}'
tap_is "$HTTP_STATUS $(jget 'd["status"], d["version"], d["previous_version"], d["broadcast"]')" \
	'201 ["created", "1.0.0", null, "queued"]' \
	"POST to a new service creates it at 1.0.0 and answers 201"
rev1=$(jget 'd["revision"]')
tap_ok "$([[ $rev1 =~ ^[0-9]+$ ]]; echo $?)" "the write answer carries the numeric revision"

hreq GET /api/v1/config/$svc
tap_is "$HTTP_STATUS $(jget 'sorted(d.keys())')" \
	'200 ["config", "service_name", "updated_at", "version"]' \
	"GET answers the seeds' shape: service_name, config, version, updated_at"
tap_is "$(jget 'd["config"]["operational"]["batch_size"], d["version"], d["service_name"]')" \
	'[100, "1.0.0", "polygon-historical-downloader"]' "GET returns the stored config"
now_ms=$(($(date +%s%N) / 1000000))
upd=$(jget 'd["updated_at"]')
tap_ok "$((upd <= now_ms && upd > now_ms - 60000 ? 0 : 1))" "updated_at is milliseconds since epoch"
tap_is "$(header ETag)" '"1.0.0"' "GET answers ETag: \"<version>\""

hreq GET /api/v1/config/$svc -H 'If-None-Match: "1.0.0"'
tap_is "$HTTP_STATUS:$HTTP_BODY" "304:" "If-None-Match with the current version answers 304 without body"
hreq GET /api/v1/config/$svc -H 'If-None-Match: "0.9.0"'
tap_is "$HTTP_STATUS" 200 "If-None-Match with another version answers 200"

# --- merge patch, replace ------------------------------------------------------
hreq POST "/api/v1/config/$svc?reason=tune+batches" -H 'Content-Type: application/json' \
	-d '{"operational":{"gap_check_interval_hours":2,"max_retries":null}}'
tap_is "$HTTP_STATUS $(jget 'd["status"], d["version"], d["previous_version"], d["changed"]')" \
	'200 ["updated", "1.0.1", "1.0.0", true]' \
	"POST is a merge patch: next patch version, previous_version of the change"
tap_ok "$(($(jget 'd["revision"]') > rev1 ? 0 : 1))" "the revision grows with each change"
hreq GET /api/v1/config/$svc
tap_is "$(jget 'd["config"]["operational"]')" '{"batch_size": 100, "gap_check_interval_hours": 2}' \
	"the merge patch changed one key, removed the null one, kept the rest"

hreq POST /api/v1/config/$svc -H 'Content-Type: application/json' \
	-d '{"operational":{"gap_check_interval_hours":2}}'
tap_is "$HTTP_STATUS $(jget 'd["version"], d["changed"], d["broadcast"]')" \
	'200 ["1.0.1", false, "none"]' "a patch that changes nothing writes nothing and says so"

hreq PUT "/api/v1/config/$svc?version=2.0.0" -H 'Content-Type: application/json' \
	-d '{"download":{"start_date":"today-7days"}}'
tap_is "$HTTP_STATUS $(jget 'd["version"], d["previous_version"]')" '200 ["2.0.0", "1.0.1"]' \
	"PUT replaces the config with the ?version= given"
hreq GET /api/v1/config/$svc
tap_is "$(jget 'd["config"]')" '{"download": {"start_date": "today-7days"}}' "PUT replaced the whole config"

# --- preconditions ---------------------------------------------------------------
hreq POST /api/v1/config/$svc -H 'Content-Type: application/json' -H 'If-Match: "1.0.1"' \
	-d '{"a":1}'
tap_is "$HTTP_STATUS $(jget 'd["error"]["code"]')" "412 version_mismatch" "a stale If-Match answers 412"
hreq PUT "/api/v1/config/$svc?expected_version=1.0.0" -H 'Content-Type: application/json' -d '{"a":1}'
tap_is "$HTTP_STATUS" 412 "a stale ?expected_version= answers 412"
hreq POST /api/v1/config/$svc -H 'Content-Type: application/json' -H 'If-Match: "2.0.0"' -d '{"a":1}'
tap_is "$HTTP_STATUS $(jget 'd["version"]') $(header ETag)" '200 2.0.1 "2.0.1"' \
	"a current If-Match lets the write through and the answer carries the new ETag"
hreq POST /api/v1/config/$svc -H 'Content-Type: application/json' -H 'If-Match: 2.0.1' -d '{"a":1}'
tap_is "$HTTP_STATUS" 400 "an unquoted If-Match is a malformed header (400)"
hreq PUT /api/v1/config/newsvc -H 'Content-Type: application/json' -H 'If-Match: ""' -d '{"a":1}'
tap_is "$HTTP_STATUS" 201 "If-Match \"\" creates only when the service has no config"
hreq PUT /api/v1/config/newsvc -H 'Content-Type: application/json' -H 'If-Match: ""' -d '{"a":2}'
tap_is "$HTTP_STATUS" 412 "If-Match \"\" refuses when the service exists"

# --- store errors as statuses ------------------------------------------------------
hreq POST /api/v1/config/$svc -H 'Content-Type: application/json' -d '{"a":'
tap_is "$HTTP_STATUS $(jget 'd["error"]["code"]')" "400 malformed_json" "malformed JSON answers 400"
hreq POST /api/v1/config/$svc -H 'Content-Type: application/json' -d '[1,2]'
tap_is "$HTTP_STATUS $(jget 'd["error"]["code"]')" "422 invalid_value" "a non-object patch answers 422"
hreq PUT /api/v1/config/$svc -H 'Content-Type: application/json' -d '{"db":{"password":"x"}}'
tap_is "$HTTP_STATUS $(jget 'd["error"]["code"]')" "422 secret_key" "a secret-looking key answers 422"
hreq PUT '/api/v1/config/bad.name' -H 'Content-Type: application/json' -d '{"a":1}'
tap_is "$HTTP_STATUS $(jget 'd["error"]["code"]')" "422 invalid_name" "a bad service name answers 422"
hreq PUT "/api/v1/config/$svc?version=1.5.0" -H 'Content-Type: application/json' -d '{"a":3}'
tap_is "$HTTP_STATUS $(jget 'd["error"]["code"]')" "409 version_not_newer" \
	"a version not newer than the highest answers 409"
hreq PUT "/api/v1/config/$svc?version=banana" -H 'Content-Type: application/json' -d '{"a":3}'
tap_is "$HTTP_STATUS" 422 "a malformed version answers 422"
hreq PUT /api/v1/config/$svc -H 'Content-Type: application/json' -d '{"s":"\u0000"}'
tap_is "$HTTP_STATUS" 422 "well-formed JSON the database refuses (\\u0000) answers 422"
hreq GET /api/v1/config/history/nosuchsvc
tap_is "$HTTP_STATUS" 404 "history of an unknown service answers 404"
hreq DELETE /api/v1/config/nosuchsvc
tap_is "$HTTP_STATUS $(jget 'd["error"]["code"]')" "404 not_found" "DELETE of an unknown service answers 404"

# --- history, rollback, delete ---------------------------------------------------------
hreq GET /api/v1/config/history/$svc
tap_is "$HTTP_STATUS $(jget 'd["service_name"], d["total"], len(d["history"])')" \
	'200 ["polygon-historical-downloader", 4, 4]' "history lists every change with the total"
tap_is "$(jget '[h["version"] for h in d["history"]]')" '["2.0.1", "2.0.0", "1.0.1", "1.0.0"]' \
	"history is newest first"
tap_is "$(jget 'sorted(d["history"][0].keys())')" \
	'["action", "change_reason", "changed_at", "changed_by", "config", "previous_version", "revision", "version"]' \
	"history entries have the seeds' fields plus revision and previous_version"
tap_is "$(jget 'd["history"][2]["change_reason"], d["history"][0]["changed_by"], d["history"][3]["action"]')" \
	'["tune batches", "deploy-bot", "created"]' "history carries reason, actor and action"
tap_ok "$(($(jget 'd["history"][0]["changed_at"]') > 1700000000000 ? 0 : 1))" "changed_at is milliseconds since epoch"
hreq GET "/api/v1/config/history/$svc?limit=1"
tap_is "$(jget 'len(d["history"]), d["total"]')" '[1, 4]' "?limit=N limits the rows, total counts all"
hreq GET "/api/v1/config/history/$svc?limit=1000"
tap_is "$HTTP_STATUS" 200 "a limit above 100 is capped, not refused"
hreq GET "/api/v1/config/history/$svc?limit=abc"
tap_is "$HTTP_STATUS" 422 "a non-numeric limit answers 422"

hreq POST /api/v1/config/$svc/rollback -H 'Content-Type: application/json' -d '{"version":"1.0.0"}'
tap_is "$HTTP_STATUS $(jget 'd["status"], d["version"], d["previous_version"], d["rolled_back_to"]')" \
	'200 ["rolled_back", "2.0.2", "2.0.1", "1.0.0"]' "rollback makes 1.0.0's content current as a new version"
hreq GET /api/v1/config/$svc
tap_is "$(jget 'd["config"]["operational"]["batch_size"]')" 100 "after rollback GET serves the old content"
hreq POST /api/v1/config/$svc/rollback -H 'Content-Type: application/json' -d '{"version":"9.9.9"}'
tap_is "$HTTP_STATUS $(jget 'd["error"]["code"]')" "404 unknown_version" "rollback to an unknown version answers 404"
hreq POST /api/v1/config/$svc/rollback -H 'Content-Type: application/json' -d '{"v":"1.0.0"}'
tap_is "$HTTP_STATUS" 400 "rollback without a version answers 400"

hreq DELETE "/api/v1/config/$svc?reason=retired"
tap_is "$HTTP_STATUS $(jget 'd["status"], d["version"]')" '200 ["deleted", "2.0.2"]' "DELETE deletes and names the removed version"
hreq GET /api/v1/config/$svc
tap_is "$HTTP_STATUS" 404 "after DELETE the config is gone"
hreq GET "/api/v1/config/history/$svc?limit=1"
tap_is "$(jget 'd["history"][0]["action"], d["history"][0]["change_reason"]')" '["deleted", "retired"]' \
	"the deletion is in the history with its reason"

# --- audit names the key ----------------------------------------------------------------
tap_is "$(hub_psql -d "$HUBD_DB" -c "SELECT string_agg(DISTINCT changed_by, ',') FROM hub.config_audit_log WHERE service_name = '$svc'")" \
	"deploy-bot" "every audit row of changes made over HTTP names the API key"

tap_done
