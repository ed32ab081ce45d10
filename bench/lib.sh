# bench/lib.sh: shared by the config store's bench scripts.  Starts one
# throwaway cluster (synchronous_commit off, as in ENVIRONMENT.md's
# measurements) and runs pgbench scripts side by side.  The library is not
# preloaded, so no worker runs: these figures are the config store alone
# (bench/relay measures writes with the relay running and woken per commit).
source "$(dirname "${BASH_SOURCE[0]}")/../test/lib.sh"

bench_start() {
	hub_run_dir
	trap 'hub_cleanup; rm -rf "$HUB_RUN"' EXIT
	hub_pg_start bench "max_connections = 50
shared_buffers = '256MB'
shared_preload_libraries = ''
session_preload_libraries = 'central_hub'" >/dev/null || exit 1
	createdb bench
	export PGDATABASE=bench
	psql -X -q -c "CREATE EXTENSION central_hub"
}

# bench_tps CLIENTS SECONDS SCRIPTFILE -> prints TPS (excluding connections)
bench_tps() {
	local clients=$1 secs=$2 script=$3 jobs=2
	[ "$clients" -lt 2 ] && jobs=1
	pgbench -n -M prepared -c "$clients" -j "$jobs" -T "$secs" -f "$script" 2>&1 |
		awk '/^tps = / { printf "%.0f\n", $3 }'
}

# ratio A B -> A/B with two decimals
ratio() {
	awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'
}
