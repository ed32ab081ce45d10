#!/usr/bin/env bash
# Runs once, when the postgres container initialises its data directory
# (/docker-entrypoint-initdb.d): creates the extension in $POSTGRES_DB, the
# login role hubd connects as, and a first admin API key, printed once to
# the container log.
set -euo pipefail

: "${HUBD_DB_PASSWORD:?set HUBD_DB_PASSWORD (the password of the hubd database role)}"
key_name=${HUB_ADMIN_KEY_NAME:-admin}

psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
	-v hubd_password="$HUBD_DB_PASSWORD" <<'SQL'
CREATE EXTENSION IF NOT EXISTS central_hub;
-- hubd logs in as hubd; as a member of hub_admin it may SET ROLE to the
-- role of each request's API key.
CREATE ROLE hubd LOGIN PASSWORD :'hubd_password' IN ROLE hub_admin;
SQL

key=$(psql -v ON_ERROR_STOP=1 -t -A --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
	-v name="$key_name" -c "SELECT hub.create_api_key(:'name', 'hub_admin')")
cat <<MSG
central_hub: created API key "$key_name" (role hub_admin); it is shown only this once:

    X-API-Key: $key

MSG
