-- bench floor: the same row writes as hub.put_config (upsert + audit insert +
-- outbox insert) in plain SQL, with no triggers and no rules.
DROP SCHEMA IF EXISTS floor CASCADE;
CREATE SCHEMA floor;
CREATE TABLE floor.service_configs (LIKE hub.service_configs INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING INDEXES);
CREATE TABLE floor.config_audit_log (
	id bigserial PRIMARY KEY, service_name text NOT NULL, config_json jsonb NOT NULL,
	version text NOT NULL, previous_version text, action text NOT NULL,
	changed_by text NOT NULL, changed_at timestamptz NOT NULL DEFAULT now(),
	change_reason text, db_user text NOT NULL DEFAULT session_user);
CREATE INDEX ON floor.config_audit_log (service_name, id);
CREATE TABLE floor.outbox (
	id bigserial PRIMARY KEY,
	topic text NOT NULL, service_name text NOT NULL, ref_id bigint NOT NULL,
	queued_at timestamptz NOT NULL DEFAULT now(), notified_at timestamptz);
