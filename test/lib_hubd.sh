# test/lib_hubd.sh: helpers of the hubd suites (test/integration/4N_hubd_*.sh).
# Source after test/lib.sh.
#
#   hubd_db NAME              create database NAME with the extension; sets HUBD_DB
#   hubd_key NAME ROLE        create an API key, print it
#   hubd_start NAME [args]    start hubd (src/hubd/hubd) on a free port against
#                             $HUBD_DB; sets HUBD_URL, HUBD_PID, HUBD_LOG
#   hreq METHOD PATH [curl args]  one request; sets HTTP_STATUS, HTTP_BODY,
#                             HTTP_HEADERS (KEY defaults to $HUBD_KEY)
#   jget EXPR                 evaluate python EXPR on d = json.loads(HTTP_BODY)

hubd_db() {
	HUBD_DB=$1
	psql -X -q -d postgres -c "SET client_min_messages = warning" \
		-c "DROP DATABASE IF EXISTS $HUBD_DB" -c "CREATE DATABASE $HUBD_DB" >/dev/null
	psql -X -q -d "$HUBD_DB" -c "CREATE EXTENSION central_hub" >/dev/null
}

hubd_key() {
	hub_psql -d "$HUBD_DB" -c "SELECT hub.create_api_key('$1', '$2')"
}

hubd_start() {
	local name=$1 port
	shift
	port=$(hub_free_port)
	HUBD_LOG="$HUB_RUN/hubd-$name.log"
	"${HUBD_BIN:-$HUB_ROOT/src/hubd/hubd}" --db "host=$PGHOST port=$PGPORT dbname=$HUBD_DB user=postgres" \
		--listen "127.0.0.1:$port" "$@" >>"$HUBD_LOG" 2>&1 &
	HUBD_PID=$!
	hub_track_pid "$HUBD_PID" "hubd-$name"
	HUBD_URL="http://127.0.0.1:$port"
	hub_wait_for 10 curl -s -o /dev/null "$HUBD_URL/health" || {
		cat "$HUBD_LOG" >&2
		return 1
	}
}

hreq() {
	local method=$1 path=$2 out hdr
	shift 2
	out=$(mktemp "$HUB_RUN/body.XXXXXX")
	hdr=$(mktemp "$HUB_RUN/hdr.XXXXXX")
	HTTP_STATUS=$(curl -s -g -o "$out" -D "$hdr" -w '%{http_code}' -X "$method" \
		${HUBD_KEY:+-H "X-API-Key: $HUBD_KEY"} "$@" "$HUBD_URL$path")
	HTTP_BODY=$(cat "$out")
	HTTP_HEADERS=$(tr -d '\r' <"$hdr")
	rm -f "$out" "$hdr"
}

# header NAME: value of a response header of the last hreq
header() {
	echo "$HTTP_HEADERS" | sed -n "s/^$1: //Ip" | head -n 1
}

jget() {
	HTTP_BODY=$HTTP_BODY "$HUB_PYTHON" -c "
import json, os
d = json.loads(os.environ['HTTP_BODY'])
v = $1
print(json.dumps(v, sort_keys=True) if isinstance(v, (dict, list, tuple, bool)) or v is None else v)" 2>&1
}
