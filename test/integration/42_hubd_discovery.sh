#!/usr/bin/env bash
# hubd's registry routes against a real hubd: the seeds' registration body
# (201), discovery of all services and of one, heartbeat, deregistration of
# one instance and of a whole service, the health summary's shape, and the
# admin-only rule for registry writes.
set -uo pipefail
source "$HUB_ROOT/test/lib.sh"
source "$HUB_ROOT/test/lib_hubd.sh"
hub_run_dir "$HUB_RUN/hubd_discovery"
trap hub_cleanup EXIT

hubd_db hubtest_hubd_discovery
READER=$(hubd_key dashboard hub_reader)
ADMIN=$(hubd_key ops hub_admin)
hubd_start discovery --threads 2
HUBD_KEY=$ADMIN
JSON=(-H 'Content-Type: application/json')

hreq POST /api/v1/discovery/register "${JSON[@]}" -d '{
  "service_name": "polygon-historical-downloader",
  "host": "suho-polygon-historical",
  "port": 8001,
  "health_endpoint": "/health",
  "metadata": {"version": "1.0.0", "instance_id": "polygon-historical-1"}
}'
tap_is "$HTTP_STATUS $(jget 'd["status"], d["service_name"], d["instance_id"]')" \
	'201 ["registered", "polygon-historical-downloader", "polygon-historical-1"]' \
	"POST /api/v1/discovery/register takes the seeds' body and answers 201 with the instance id"
hreq POST /api/v1/discovery/register "${JSON[@]}" \
	-d '{"service_name":"polygon-historical-downloader","host":"10.0.0.7","port":8002,"ttl_seconds":30}'
tap_is "$HTTP_STATUS $(jget 'd["instance_id"]')" "201 10.0.0.7:8002" \
	"an instance without id is named host:port by the registry"
hreq POST /api/v1/discovery/register "${JSON[@]}" \
	-d '{"name":"api-gateway","host":"suho-api-gateway","port":8000,"protocol":"http","metadata":{"type":"api-gateway"}}'
tap_is "$HTTP_STATUS $(jget 'd["service_name"]')" "201 api-gateway" \
	"the older seed body with \"name\" registers too"
hreq POST /api/v1/discovery/register "${JSON[@]}" -d '{"service_name":"x","host":"h","port":"eighty"}'
tap_is "$HTTP_STATUS" 422 "a port that is not a number answers 422"
hreq POST /api/v1/discovery/register "${JSON[@]}" -d '{"service_name":"x","host":"h;rm -rf","port":80}'
tap_is "$HTTP_STATUS" 422 "a host the registry refuses answers 422"
hreq POST /api/v1/discovery/register "${JSON[@]}" -d '{"service_name":"x","port":80}'
tap_is "$HTTP_STATUS" 400 "a registration without host answers 400"
hreq POST /api/v1/discovery/register "${JSON[@]}" -d '{"service_name":"x",'
tap_is "$HTTP_STATUS" 400 "a malformed registration body answers 400"

HUBD_KEY=$READER hreq GET /api/v1/discovery/services
tap_is "$HTTP_STATUS $(jget 'd["total_services"], d["total_instances"], sorted(d["services"].keys())')" \
	'200 [2, 3, ["api-gateway", "polygon-historical-downloader"]]' \
	"GET /api/v1/discovery/services lists every service's instances"
HUBD_KEY=$READER hreq GET /api/v1/discovery/services/polygon-historical-downloader
tap_is "$HTTP_STATUS $(jget 'sorted(i["instance_id"] for i in d["instances"])')" \
	'200 ["10.0.0.7:8002", "polygon-historical-1"]' "GET .../services/{service} lists its instances"
tap_is "$(jget '[i for i in d["instances"] if i["instance_id"] == "polygon-historical-1"][0]')" \
	'{"instance_id": "polygon-historical-1", "metadata": {"instance_id": "polygon-historical-1", "version": "1.0.0"}, "status": "unknown", "url": "http://suho-polygon-historical:8001"}' \
	"each instance has its URL, status and metadata"
HUBD_KEY=$READER hreq GET /api/v1/discovery/services/nobody
tap_is "$HTTP_STATUS" 404 "discovery of a service without instances answers 404"

hreq POST /api/v1/discovery/heartbeat/polygon-historical-downloader/10.0.0.7:8002
tap_is "$HTTP_STATUS $(jget 'd["status"], d["instance_status"]')" '200 ["ok", "unknown"]' \
	"heartbeat answers the instance's status"
tap_is "$(hub_psql -d "$HUBD_DB" -c "SELECT last_heartbeat > now() - interval '1 minute' FROM hub.service_instances WHERE instance_id = '10.0.0.7:8002'")" \
	t "the heartbeat is recorded"
hreq POST /api/v1/discovery/heartbeat/polygon-historical-downloader/ghost
tap_is "$HTTP_STATUS $(jget 'd["error"]["code"]')" "404 unknown_instance" "heartbeat of an unknown instance answers 404"

HUBD_KEY=$READER hreq GET /api/v1/health/services
tap_is "$HTTP_STATUS $(jget 'sorted(d.keys())')" \
	'200 ["degraded", "healthy", "services", "total_services", "unhealthy", "unknown"]' \
	"GET /api/v1/health/services has the seed's shape"
tap_is "$(jget 'd["total_services"], d["services"]["api-gateway"]')" '[2, "unknown"]' \
	"the summary counts services and names their status"

HUBD_KEY=$READER hreq DELETE /api/v1/discovery/api-gateway
tap_is "$HTTP_STATUS" 403 "a hub_reader key cannot deregister (403)"
hreq DELETE /api/v1/discovery/polygon-historical-downloader/10.0.0.7:8002
tap_is "$HTTP_STATUS $(jget 'd["status"], d["removed"]')" '200 ["deregistered", 1]' "DELETE of one instance deregisters it"
hreq DELETE /api/v1/discovery/polygon-historical-downloader/10.0.0.7:8002
tap_is "$HTTP_STATUS" 404 "DELETE of an instance already gone answers 404"
hreq DELETE /api/v1/discovery/api-gateway
tap_is "$HTTP_STATUS $(jget 'd["removed"]')" "200 1" "DELETE of a service deregisters all its instances"
HUBD_KEY='' hreq GET /metrics
tap_ok "$(grep -qx 'hub_instances{status="unknown"} 1' <<<"$HTTP_BODY"; echo $?)" \
	"/metrics counts instances by health status"

tap_done
