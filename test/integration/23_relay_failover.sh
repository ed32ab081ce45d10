#!/usr/bin/env bash
# The relay runs only on a primary: a hot standby has none, and after
# promotion the standby's relay delivers what the old primary had queued
# but not sent (the outbox travels in the WAL).
set -uo pipefail
source "$HUB_ROOT/test/lib.sh"
source "$HUB_ROOT/test/integration/relay.inc"
hub_run_dir "$HUB_RUN/relay-failover"
trap hub_cleanup EXIT

hub_nats_start main || exit 1
relay_cluster_start primary "central_hub.nats_url = '$NATS_URL'" || exit 1
"$HUB_SUB" -s "$NATS_URL" --add-stream FAIL 'config.update.>' || exit 1
hub_wait_for 20 relay_is connected t

# a streaming standby of it
sdir="$HUB_RUN/pg-standby"
mkdir -p "$sdir/sock"
chown -R postgres:postgres "$sdir"
(cd / && runuser -u postgres -- "$PGBIN/pg_basebackup" -h "$PGHOST" -p "$PGPORT" -U postgres \
	-D "$sdir/data" -R -X stream -c fast >"$sdir/basebackup.log" 2>&1) || { cat "$sdir/basebackup.log"; exit 1; }
sport=$(hub_free_port)
echo "$sport" >"$sdir/port"
cat >>"$sdir/data/postgresql.conf" <<CONF
port = $sport
unix_socket_directories = '$sdir/sock'
CONF
primary_env() { hub_pg_env primary; }
standby_env() { hub_pg_env standby; }
echo "# $(date +%T) base backup done"
hub_pg_up standby || exit 1
tap_is "$(rsql "SELECT pg_is_in_recovery()")" t "the standby is in recovery"
tap_is "$(rsql "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'central_hub relay'")" 0 \
	"no relay runs on a hot standby"

# changes queued on the primary while NATS is down, replayed on the standby
primary_env
hub_nats_stop main
hub_wait_for 20 relay_is connected f
before=$(rsql "SELECT coalesce(max(id), 0) FROM hub.config_audit_log")
for i in $(seq 1 50); do echo "SELECT hub.put_config('fo-$((i % 5))', '{\"n\": $i}');"; done |
	hub_psql -d "$RELAY_DB" >/dev/null
rsql "SELECT id FROM hub.config_audit_log WHERE id > $before ORDER BY id" >"$HUB_RUN/want"
# the insert position: with synchronous_commit off the last commit records
# may not be written yet, and pg_current_wal_lsn() (the write position)
# would stop the wait short of them
lsn=$(rsql "SELECT pg_current_wal_insert_lsn()")
standby_env
hub_wait_for 30 bash -c "[ \"\$(psql -X -t -A -d $RELAY_DB -c \"SELECT pg_last_wal_replay_lsn() >= '$lsn'\")\" = t ]"
tap_is "$(rsql "SELECT count(*) FROM hub.outbox")" 50 "the 50 unsent outbox rows are on the standby"

# the primary dies; the standby is promoted; NATS comes back
echo "# $(date +%T) stopping primary"
hub_pg_stop primary
echo "# $(date +%T) primary stopped"
standby_env
rsql "SELECT pg_promote()" >/dev/null
hub_wait_for 30 relay_is "pid IS NOT NULL" t
tap_is "$(rsql "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'central_hub relay'")" 1 \
	"after promotion the relay starts"
echo "# $(date +%T) relay up"
hub_nats_start main || exit 1
hub_wait_for 60 relay_backlog_is 0
tap_is "$(relay_field backlog)" 0 "the promoted standby's relay drains the old primary's outbox"
"$HUB_SUB" -s "$NATS_URL" --dump-stream FAIL >"$HUB_RUN/dump" || exit 1
bodies_revisions "$HUB_RUN/dump" | awk -v b="$before" '$1 > b' >"$HUB_RUN/got"
tap_is "$(check_revisions "$HUB_RUN/got" "$HUB_RUN/want")" ok "every change queued on the old primary reaches NATS, in order"

tap_done
