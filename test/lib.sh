# test/lib.sh: the one way central_hub's suites and `make start` run servers.
#
# Source it from bash.  Every server listens on 127.0.0.1 only, on a free
# port, with its state under one run directory; every process started is
# recorded and stopped by PID in hub_cleanup.  Waits are on conditions
# (hub_wait_for), never on fixed sleeps.
#
#   hub_run_dir DIR           use DIR for state (created 0755; default: mktemp)
#   hub_free_port             print a free loopback TCP port
#   hub_pg_start NAME [conf]  initdb + start a PostgreSQL 15 as user postgres;
#                             exports PGHOST PGPORT PGUSER for it (port:
#                             HUB_PG_PORT if set, else a free one)
#   hub_pg_stop NAME / hub_pg_restart NAME / hub_pg_env NAME (export its PG*)
#   hub_pg_replica NAME PRIMARY / hub_pg_promote NAME  streaming hot standby
#   hub_nats_start NAME [args]  start nats-server; sets NATS_PORT, NATS_URL
#                             (port: HUB_NATS_PORT if set, else a free one)
#   hub_nats_stop NAME
#   hub_wait_for SECONDS CMD...  poll CMD until it succeeds or time runs out
#   hub_cleanup               stop everything this run started
#
# An integration suite (test/integration/NN_name.sh) is run by test/run with
# PGHOST/PGPORT/PGDATABASE pointing at the shared cluster (extension created,
# no NATS configured) and HUB_RUN, HUB_ROOT set.  A suite that needs servers
# of its own (a cluster with other settings, a nats-server to stop and start)
# begins with
#   source "$HUB_ROOT/test/lib.sh"; hub_run_dir "$HUB_RUN/<suite>"; trap hub_cleanup EXIT
# so that its cleanup stops only what it started.
#
# TAP helpers for integration suites: tap_ok COND-STATUS NAME, tap_is GOT WANT
# NAME, tap_done (prints the plan and exits non-zero on any failure).

PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
HUB_PYTHON=${HUB_PYTHON:-/usr/bin/python3}
export PGUSER=${PGUSER:-postgres}

hub_run_dir() {
	HUB_RUN=${1:-$(mktemp -d /tmp/hub.XXXXXX)}
	mkdir -p "$HUB_RUN"
	chmod 755 "$HUB_RUN"
	: >>"$HUB_RUN/pids"
	export HUB_RUN
}

hub_free_port() {
	"$HUB_PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

hub_wait_for() {
	local timeout=$1 deadline
	shift
	deadline=$(($(date +%s%N) / 1000000 + timeout * 1000))
	until "$@" >/dev/null 2>&1; do
		if (($(date +%s%N) / 1000000 > deadline)); then
			return 1
		fi
		sleep 0.05
	done
}

hub_track_pid() {
	echo "$1 $2" >>"$HUB_RUN/pids"
}

# hub_pg_start NAME [extra postgresql.conf text]
hub_pg_start() {
	local name=$1 conf=${2:-} dir port
	dir="$HUB_RUN/pg-$name"
	if [ ! -f "$dir/data/PG_VERSION" ]; then
		mkdir -p "$dir/data" "$dir/sock"
		chown -R postgres:postgres "$dir"
		chmod 700 "$dir/data"
		(cd / && runuser -u postgres -- "$PGBIN/initdb" -D "$dir/data" -E UTF8 \
			--locale=C -U postgres -A trust >"$dir/initdb.log" 2>&1) || {
			cat "$dir/initdb.log" >&2
			return 1
		}
		port=${HUB_PG_PORT:-$(hub_free_port)}
		cat >>"$dir/data/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir/sock'
max_connections = 100
fsync = ${HUB_PG_FSYNC:-off}
synchronous_commit = ${HUB_PG_SYNC_COMMIT:-off}
full_page_writes = off
log_line_prefix = '%m [%p] %q%u@%d '
shared_preload_libraries = 'central_hub'
$conf
EOF
		echo "$port" >"$dir/port"
	fi
	hub_pg_up "$name"
}

# Start an initialised cluster again and export its connection settings.
hub_pg_up() {
	local name=$1 dir="$HUB_RUN/pg-$1"
	(cd / && runuser -u postgres -- "$PGBIN/pg_ctl" -D "$dir/data" -l "$dir/log" \
		-w -t 60 start >/dev/null) || {
		tail -n 30 "$dir/log" >&2
		return 1
	}
	hub_pg_env "$name"
}

hub_pg_env() {
	local dir="$HUB_RUN/pg-$1"
	export PGHOST="$dir/sock" PGPORT=$(cat "$dir/port") PGUSER=postgres
}

hub_pg_pid() {
	head -n 1 "$HUB_RUN/pg-$1/data/postmaster.pid" 2>/dev/null
}

hub_pg_stop() {
	local dir="$HUB_RUN/pg-$1"
	[ -f "$dir/data/postmaster.pid" ] || return 0
	(cd / && runuser -u postgres -- "$PGBIN/pg_ctl" -D "$dir/data" -m fast -w \
		-t 60 stop >/dev/null 2>&1) || true
}

# hub_pg_replica NAME PRIMARY: a streaming hot standby of cluster PRIMARY
# (the primary needs no settings beyond the defaults: wal_level replica).
hub_pg_replica() {
	local name=$1 primary=$2 dir port pport
	dir="$HUB_RUN/pg-$name"
	pport=$(cat "$HUB_RUN/pg-$primary/port")
	mkdir -p "$dir/sock"
	chown -R postgres:postgres "$dir"
	(cd / && runuser -u postgres -- "$PGBIN/pg_basebackup" -h "$HUB_RUN/pg-$primary/sock" \
		-p "$pport" -U postgres -D "$dir/data" -R -X stream -c fast >"$dir/basebackup.log" 2>&1) || {
		cat "$dir/basebackup.log" >&2
		return 1
	}
	port=$(hub_free_port)
	{
		echo "port = $port"
		echo "unix_socket_directories = '$dir/sock'"
		echo "hot_standby = on"
	} >>"$dir/data/postgresql.conf"
	echo "$port" >"$dir/port"
	hub_pg_up "$name"
}

hub_pg_promote() {
	(cd / && runuser -u postgres -- "$PGBIN/pg_ctl" -D "$HUB_RUN/pg-$1/data" -w promote >/dev/null)
}

hub_pg_restart() {
	hub_pg_stop "$1"
	hub_pg_up "$1"
}

# hub_nats_start NAME [extra nats-server args]
hub_nats_start() {
	local name=$1 dir port
	shift
	dir="$HUB_RUN/nats-$name"
	mkdir -p "$dir"
	if [ -f "$dir/port" ]; then
		port=$(cat "$dir/port")
	else
		port=${HUB_NATS_PORT:-$(hub_free_port)}
		echo "$port" >"$dir/port"
	fi
	setsid nats-server -a 127.0.0.1 -p "$port" -js -sd "$dir/js" "$@" \
		>>"$dir/log" 2>&1 </dev/null &
	echo $! >"$dir/pid"
	hub_track_pid $! "nats-$name"
	export NATS_PORT=$port NATS_URL="nats://127.0.0.1:$port"
	hub_wait_for 10 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port" || {
		tail -n 20 "$dir/log" >&2
		return 1
	}
}

hub_nats_stop() {
	local dir="$HUB_RUN/nats-$1" pid
	pid=$(cat "$dir/pid" 2>/dev/null) || return 0
	kill "$pid" 2>/dev/null || true
	hub_wait_for 10 bash -c "! kill -0 $pid" || kill -9 "$pid" 2>/dev/null || true
	rm -f "$dir/pid"
}

hub_cleanup() {
	local line pid name d
	if [ -n "${HUB_RUN:-}" ] && [ -f "$HUB_RUN/pids" ]; then
		while read -r pid name; do
			[ -n "$pid" ] && kill "$pid" 2>/dev/null || true
		done <"$HUB_RUN/pids"
		for d in "$HUB_RUN"/pg-*; do
			[ -d "$d" ] && hub_pg_stop "${d##*/pg-}"
		done
		while read -r pid name; do
			[ -n "$pid" ] && kill -9 "$pid" 2>/dev/null || true
		done <"$HUB_RUN/pids"
	fi
}

# --- TAP for integration suites -------------------------------------------
TAP_N=0
TAP_FAILED=0

# tap_ok STATUS NAME: STATUS 0 passes.
tap_ok() {
	TAP_N=$((TAP_N + 1))
	if [ "$1" -eq 0 ]; then
		echo "ok $TAP_N - $2"
	else
		echo "not ok $TAP_N - $2"
		TAP_FAILED=$((TAP_FAILED + 1))
	fi
}

# tap_is GOT WANT NAME
tap_is() {
	if [ "$1" == "$2" ]; then
		tap_ok 0 "$3"
	else
		tap_ok 1 "$3"
		printf '#   got:  %s\n#   want: %s\n' "$1" "$2"
	fi
}

tap_done() {
	echo "1..$TAP_N"
	[ "$TAP_FAILED" -eq 0 ]
}

# psql that fails on errors and prints bare values
hub_psql() {
	psql -X -q -v ON_ERROR_STOP=1 -t -A "$@"
}
