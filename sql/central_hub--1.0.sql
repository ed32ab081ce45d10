-- central_hub 1.0: tables, roles, grants and C function declarations.
-- The rules live in C (src/config_store.c), so plain DML obeys them too.

\echo Use "CREATE EXTENSION central_hub" to load this file. \quit

------------------------------------------------------------------------------
-- Roles (cluster-wide, created only if missing; never dropped with the extension)
------------------------------------------------------------------------------
DO $$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'hub_reader') THEN
		CREATE ROLE hub_reader NOLOGIN;
	END IF;
	IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'hub_writer') THEN
		CREATE ROLE hub_writer NOLOGIN;
	END IF;
	IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'hub_admin') THEN
		CREATE ROLE hub_admin NOLOGIN;
	END IF;
END
$$;

GRANT hub_reader TO hub_writer;
GRANT hub_writer TO hub_admin;

GRANT USAGE ON SCHEMA hub TO hub_reader;

------------------------------------------------------------------------------
-- Config store
------------------------------------------------------------------------------
CREATE TABLE hub.service_configs (
	service_name text PRIMARY KEY,
	config_json  jsonb NOT NULL,
	version      text NOT NULL,
	created_at   timestamptz NOT NULL DEFAULT now(),
	updated_at   timestamptz NOT NULL DEFAULT now(),
	created_by   text,
	updated_by   text,
	description  text,
	tags         text[],
	active       boolean NOT NULL DEFAULT true
);

COMMENT ON TABLE hub.service_configs IS
	'Current operational config of each service; every change is checked and audited by C triggers';
COMMENT ON COLUMN hub.service_configs.service_name IS
	'Service name, ^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$ (it becomes a NATS subject token)';
COMMENT ON COLUMN hub.service_configs.config_json IS
	'The config: a JSON object, no secret-looking keys, at most central_hub.max_config_bytes';
COMMENT ON COLUMN hub.service_configs.version IS
	'Semver MAJOR.MINOR.PATCH, strictly increasing over the service''s whole history';
COMMENT ON COLUMN hub.service_configs.created_at IS 'When the service''s config was created (set by the trigger)';
COMMENT ON COLUMN hub.service_configs.updated_at IS 'When the config last changed (set by the trigger)';
COMMENT ON COLUMN hub.service_configs.created_by IS 'Who created the config (set by the trigger)';
COMMENT ON COLUMN hub.service_configs.updated_by IS 'Who changed the config last (set by the trigger)';
COMMENT ON COLUMN hub.service_configs.description IS 'Free text for operators';
COMMENT ON COLUMN hub.service_configs.tags IS 'Free labels for operators';
COMMENT ON COLUMN hub.service_configs.active IS 'Operator flag; the hub stores it and does not interpret it';

CREATE TABLE hub.config_audit_log (
	id               bigserial PRIMARY KEY,
	service_name     text NOT NULL,
	config_json      jsonb NOT NULL,
	version          text NOT NULL,
	previous_version text,
	action           text NOT NULL
		CHECK (action IN ('created', 'updated', 'deleted', 'rollback')),
	changed_by       text NOT NULL,
	changed_at       timestamptz NOT NULL DEFAULT now(),
	change_reason    text,
	db_user          text NOT NULL DEFAULT session_user
);

CREATE INDEX config_audit_log_service_idx
	ON hub.config_audit_log (service_name, id);
COMMENT ON INDEX hub.config_audit_log_service_idx IS 'History of one service in revision order';

COMMENT ON TABLE hub.config_audit_log IS
	'Append-only history of every config change, written in the same transaction as the change';
COMMENT ON COLUMN hub.config_audit_log.id IS 'The global revision number of the change';
COMMENT ON COLUMN hub.config_audit_log.service_name IS 'The service that changed';
COMMENT ON COLUMN hub.config_audit_log.config_json IS 'Content after the change (before it, for deleted)';
COMMENT ON COLUMN hub.config_audit_log.version IS 'Version after the change (the removed version, for deleted)';
COMMENT ON COLUMN hub.config_audit_log.previous_version IS 'Version of the service''s previous audit row, NULL for its first';
COMMENT ON COLUMN hub.config_audit_log.action IS 'created, updated, deleted or rollback';
COMMENT ON COLUMN hub.config_audit_log.changed_by IS 'changed_by argument, else central_hub.actor, else current_user';
COMMENT ON COLUMN hub.config_audit_log.changed_at IS 'Transaction time of the change';
COMMENT ON COLUMN hub.config_audit_log.change_reason IS 'Reason given by the writer (rollbacks name their target)';
COMMENT ON COLUMN hub.config_audit_log.db_user IS 'session_user of the writing connection (cannot be set by the writer)';

-- The outbox: one row per change still to be signalled (NOTIFY and NATS).
-- The relay worker reads it in id order and deletes what NATS confirmed.
CREATE TABLE hub.outbox (
	id           bigserial PRIMARY KEY,
	topic        text NOT NULL CHECK (topic IN ('config', 'health')),
	service_name text NOT NULL,
	ref_id       bigint NOT NULL,
	queued_at    timestamptz NOT NULL DEFAULT now(),
	notified_at  timestamptz
);

COMMENT ON TABLE hub.outbox IS
	'Changes committed but not yet confirmed by NATS; filled by triggers, drained by the relay worker';
COMMENT ON COLUMN hub.outbox.id IS 'Queue order';
COMMENT ON COLUMN hub.outbox.topic IS 'config (ref_id = config_audit_log.id) or health (ref_id = health_events.id)';
COMMENT ON COLUMN hub.outbox.service_name IS 'The service the signal is about';
COMMENT ON COLUMN hub.outbox.ref_id IS 'The row the signal describes';
COMMENT ON COLUMN hub.outbox.queued_at IS 'Commit-time of the change that queued the row';
COMMENT ON COLUMN hub.outbox.notified_at IS 'When the relay sent the NOTIFY for this row (NULL: not yet)';

-- Health status transitions of service instances (written by the health
-- worker, src/health_worker.c); each one also queues an outbox row with
-- topic 'health' and ref_id = id, which the relay sends as NOTIFY hub_health
-- and NATS health.<service_name>.
CREATE TABLE hub.health_events (
	id              bigserial PRIMARY KEY,
	service_name    text NOT NULL,
	instance_id     text NOT NULL,
	previous_status text NOT NULL,
	status          text NOT NULL,
	service_status  text NOT NULL,
	at              timestamptz NOT NULL DEFAULT now(),
	error           text
);

CREATE INDEX health_events_service_idx ON hub.health_events (service_name, id);
COMMENT ON INDEX hub.health_events_service_idx IS 'Transitions of one service in order';

COMMENT ON TABLE hub.health_events IS
	'Every health status transition of a service instance, newest last';
COMMENT ON COLUMN hub.health_events.id IS 'Event number (the revision of health messages)';
COMMENT ON COLUMN hub.health_events.service_name IS 'The service of the instance';
COMMENT ON COLUMN hub.health_events.instance_id IS 'The instance that changed status';
COMMENT ON COLUMN hub.health_events.previous_status IS 'Instance status before: unknown, healthy, degraded or unhealthy';
COMMENT ON COLUMN hub.health_events.status IS 'Instance status after';
COMMENT ON COLUMN hub.health_events.service_status IS 'The service''s aggregate status after the transition';
COMMENT ON COLUMN hub.health_events.at IS 'When the transition was recorded';
COMMENT ON COLUMN hub.health_events.error IS 'The failing check''s reason, when there is one';

------------------------------------------------------------------------------
-- Triggers (C): validation, versions, actor, audit, outbox
------------------------------------------------------------------------------
CREATE FUNCTION hub.config_before_write() RETURNS trigger
	AS 'MODULE_PATHNAME', 'config_before_write' LANGUAGE C;
COMMENT ON FUNCTION hub.config_before_write() IS
	'Checks name, content, secrets and version of a config row; sets timestamps and actor';

CREATE FUNCTION hub.config_after_write() RETURNS trigger
	AS 'MODULE_PATHNAME', 'config_after_write' LANGUAGE C;
COMMENT ON FUNCTION hub.config_after_write() IS
	'Writes the audit row and the outbox row of a config change';

CREATE FUNCTION hub.audit_log_guard() RETURNS trigger
	AS 'MODULE_PATHNAME', 'audit_log_guard' LANGUAGE C;
COMMENT ON FUNCTION hub.audit_log_guard() IS
	'Refuses UPDATE, DELETE and TRUNCATE of the audit log for everyone but superusers';

CREATE TRIGGER config_before_write
	BEFORE INSERT OR UPDATE OR DELETE ON hub.service_configs
	FOR EACH ROW EXECUTE FUNCTION hub.config_before_write();
CREATE TRIGGER config_after_write
	AFTER INSERT OR UPDATE OR DELETE ON hub.service_configs
	FOR EACH ROW EXECUTE FUNCTION hub.config_after_write();
CREATE FUNCTION hub.config_truncate_guard() RETURNS trigger
	AS 'MODULE_PATHNAME', 'config_truncate_guard' LANGUAGE C;
COMMENT ON FUNCTION hub.config_truncate_guard() IS
	'Refuses TRUNCATE of hub.service_configs: it would bypass the audit trail';

CREATE TRIGGER config_no_truncate
	BEFORE TRUNCATE ON hub.service_configs
	FOR EACH STATEMENT EXECUTE FUNCTION hub.config_truncate_guard();
CREATE TRIGGER audit_log_append_only
	BEFORE UPDATE OR DELETE ON hub.config_audit_log
	FOR EACH ROW EXECUTE FUNCTION hub.audit_log_guard();
CREATE TRIGGER audit_log_no_truncate
	BEFORE TRUNCATE ON hub.config_audit_log
	FOR EACH STATEMENT EXECUTE FUNCTION hub.audit_log_guard();

COMMENT ON TRIGGER config_before_write ON hub.service_configs IS
	'Rules of the config store, for the hub functions and plain DML alike';
COMMENT ON TRIGGER config_after_write ON hub.service_configs IS
	'One audit row and one outbox row per change';
COMMENT ON TRIGGER config_no_truncate ON hub.service_configs IS
	'TRUNCATE would bypass the audit trail';
COMMENT ON TRIGGER audit_log_append_only ON hub.config_audit_log IS
	'History is append-only for all but superusers';
COMMENT ON TRIGGER audit_log_no_truncate ON hub.config_audit_log IS
	'History is append-only for all but superusers';

------------------------------------------------------------------------------
-- Config functions (C)
------------------------------------------------------------------------------
CREATE FUNCTION hub.put_config(service_name text, config jsonb,
							   version text DEFAULT NULL,
							   changed_by text DEFAULT NULL,
							   reason text DEFAULT NULL,
							   expected_version text DEFAULT NULL)
	RETURNS text AS 'MODULE_PATHNAME', 'hub_put_config' LANGUAGE C CALLED ON NULL INPUT;
COMMENT ON FUNCTION hub.put_config(text, jsonb, text, text, text, text) IS
	'Creates or replaces a service''s config; returns the new version';

CREATE FUNCTION hub.patch_config(service_name text, patch jsonb,
								 version text DEFAULT NULL,
								 changed_by text DEFAULT NULL,
								 reason text DEFAULT NULL,
								 expected_version text DEFAULT NULL)
	RETURNS text AS 'MODULE_PATHNAME', 'hub_patch_config' LANGUAGE C CALLED ON NULL INPUT;
COMMENT ON FUNCTION hub.patch_config(text, jsonb, text, text, text, text) IS
	'Applies an RFC 7396 merge patch (null removes a key); creates the config when missing; returns the new version';

CREATE FUNCTION hub.get_config(service_name text)
	RETURNS jsonb AS 'MODULE_PATHNAME', 'hub_get_config' LANGUAGE C STABLE STRICT;
COMMENT ON FUNCTION hub.get_config(text) IS
	'The service''s config object, NULL when it has none';

CREATE FUNCTION hub.delete_config(service_name text,
								  changed_by text DEFAULT NULL,
								  reason text DEFAULT NULL,
								  expected_version text DEFAULT NULL)
	RETURNS text AS 'MODULE_PATHNAME', 'hub_delete_config' LANGUAGE C CALLED ON NULL INPUT;
COMMENT ON FUNCTION hub.delete_config(text, text, text, text) IS
	'Deletes a service''s config (its history stays); returns the deleted version';

CREATE FUNCTION hub.get_config_history(service_name text, "limit" int DEFAULT 10)
	RETURNS TABLE (revision bigint, version text, previous_version text,
				   action text, changed_by text, changed_at timestamptz,
				   change_reason text, config jsonb)
	AS 'MODULE_PATHNAME', 'hub_get_config_history' LANGUAGE C STABLE CALLED ON NULL INPUT;
COMMENT ON FUNCTION hub.get_config_history(text, int) IS
	'The service''s audit rows, newest first';

CREATE FUNCTION hub.rollback_config(service_name text, target_version text,
									changed_by text DEFAULT NULL,
									expected_version text DEFAULT NULL)
	RETURNS text AS 'MODULE_PATHNAME', 'hub_rollback_config' LANGUAGE C CALLED ON NULL INPUT;
COMMENT ON FUNCTION hub.rollback_config(text, text, text, text) IS
	'Makes the content of target_version current again as a new version; also restores deleted services';

CREATE FUNCTION hub.config_diff(service_name text, from_version text, to_version text)
	RETURNS jsonb AS 'MODULE_PATHNAME', 'hub_config_diff' LANGUAGE C STABLE CALLED ON NULL INPUT;
COMMENT ON FUNCTION hub.config_diff(text, text, text) IS
	'The RFC 7396 merge patch that turns from_version''s config into to_version''s';

CREATE FUNCTION hub.get_config_at(service_name text, at timestamptz)
	RETURNS jsonb AS 'MODULE_PATHNAME', 'hub_get_config_at' LANGUAGE C STABLE CALLED ON NULL INPUT;
COMMENT ON FUNCTION hub.get_config_at(text, timestamptz) IS
	'The service''s config as it was at that moment, NULL when it had none';

CREATE FUNCTION hub.json_merge_patch(target jsonb, patch jsonb)
	RETURNS jsonb AS 'MODULE_PATHNAME', 'hub_json_merge_patch' LANGUAGE C IMMUTABLE;
COMMENT ON FUNCTION hub.json_merge_patch(jsonb, jsonb) IS
	'RFC 7396: applies a JSON merge patch to a document (NULL target = no document)';

CREATE FUNCTION hub.json_merge_diff("from" jsonb, "to" jsonb)
	RETURNS jsonb AS 'MODULE_PATHNAME', 'hub_json_merge_diff' LANGUAGE C IMMUTABLE STRICT;
COMMENT ON FUNCTION hub.json_merge_diff(jsonb, jsonb) IS
	'The RFC 7396 merge patch that turns one document into another';

------------------------------------------------------------------------------
-- Privileges
------------------------------------------------------------------------------
REVOKE ALL ON ALL TABLES IN SCHEMA hub FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA hub FROM PUBLIC;

GRANT SELECT ON hub.service_configs, hub.config_audit_log, hub.health_events TO hub_reader;
GRANT EXECUTE ON FUNCTION hub.get_config(text), hub.get_config_history(text, int),
	hub.config_diff(text, text, text), hub.get_config_at(text, timestamptz),
	hub.json_merge_patch(jsonb, jsonb), hub.json_merge_diff(jsonb, jsonb)
	TO hub_reader;

GRANT INSERT, UPDATE, DELETE ON hub.service_configs TO hub_writer;
GRANT EXECUTE ON FUNCTION
	hub.put_config(text, jsonb, text, text, text, text),
	hub.patch_config(text, jsonb, text, text, text, text),
	hub.delete_config(text, text, text, text),
	hub.rollback_config(text, text, text, text)
	TO hub_writer;

------------------------------------------------------------------------------
-- Relay: outbox -> NOTIFY hub_config / hub_health and NATS (src/relay_worker.c)
------------------------------------------------------------------------------
-- While NATS is down the relay still notifies, and finds the rows it has not
-- notified yet through this index.
CREATE INDEX outbox_unnotified_idx ON hub.outbox (id) WHERE notified_at IS NULL;

-- The outbox is a queue: every row is inserted and soon deleted.  Vacuum it
-- after a fixed number of dead rows rather than a fraction of a table that
-- is usually empty, so that the relay's index scans stay short.
ALTER TABLE hub.outbox SET (autovacuum_vacuum_scale_factor = 0,
							autovacuum_vacuum_threshold = 5000,
							autovacuum_vacuum_cost_delay = 0);

CREATE FUNCTION hub.relay_worker_status(
	OUT pid int, OUT state text, OUT nats_configured boolean,
	OUT connected boolean, OUT sent bigint, OUT notified bigint,
	OUT last_publish_at timestamptz, OUT last_error text,
	OUT last_error_at timestamptz)
	RETURNS record AS 'MODULE_PATHNAME', 'hub_relay_worker_status'
	LANGUAGE C VOLATILE;
COMMENT ON FUNCTION hub.relay_worker_status() IS
	'The relay worker''s counters and state from shared memory (since the server started)';

CREATE VIEW hub.relay_status AS
	SELECT w.connected,
		   (SELECT count(*) FROM hub.outbox) AS backlog,
		   (SELECT now() - min(o.queued_at) FROM hub.outbox o) AS oldest_pending_age,
		   w.last_publish_at,
		   w.last_error,
		   w.sent,
		   w.notified,
		   (SELECT count(*) FROM hub.outbox o WHERE o.notified_at IS NULL) AS unnotified,
		   w.state,
		   w.pid,
		   w.nats_configured,
		   w.last_error_at
	  FROM hub.relay_worker_status() w;

COMMENT ON VIEW hub.relay_status IS
	'The relay worker: NATS connection, outbox backlog, counters, last error';
COMMENT ON COLUMN hub.relay_status.connected IS 'Connected to a NATS server (false when central_hub.nats_url is empty)';
COMMENT ON COLUMN hub.relay_status.backlog IS 'Outbox rows waiting for NATS to confirm them';
COMMENT ON COLUMN hub.relay_status.oldest_pending_age IS 'Age of the oldest waiting row (NULL when none)';
COMMENT ON COLUMN hub.relay_status.last_publish_at IS 'When NATS last confirmed a batch';
COMMENT ON COLUMN hub.relay_status.last_error IS 'The relay''s most recent error (see last_error_at)';
COMMENT ON COLUMN hub.relay_status.sent IS 'Messages confirmed by NATS since the server started';
COMMENT ON COLUMN hub.relay_status.notified IS 'NOTIFYs committed since the server started';
COMMENT ON COLUMN hub.relay_status.unnotified IS 'Waiting rows whose NOTIFY is not sent yet';
COMMENT ON COLUMN hub.relay_status.state IS 'idle, relaying, nats down, nats failing, nats misconfigured, no extension, starting, not running';
COMMENT ON COLUMN hub.relay_status.pid IS 'Process id of the relay worker (also in pg_stat_activity)';
COMMENT ON COLUMN hub.relay_status.nats_configured IS 'central_hub.nats_url is set';
COMMENT ON COLUMN hub.relay_status.last_error_at IS 'When last_error happened';

REVOKE ALL ON FUNCTION hub.relay_worker_status() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION hub.relay_worker_status() TO hub_reader;
GRANT SELECT ON hub.relay_status TO hub_reader;

------------------------------------------------------------------------------
-- Registry and health (src/registry.c, src/health_worker.c, src/http_probe.c)
------------------------------------------------------------------------------
CREATE TABLE hub.service_instances (
	service_name          text NOT NULL,
	instance_id           text NOT NULL,
	host                  text NOT NULL,
	port                  integer NOT NULL,
	protocol              text NOT NULL DEFAULT 'http',
	health_endpoint       text NOT NULL DEFAULT '/health',
	metadata              jsonb NOT NULL DEFAULT '{}',
	ttl_seconds           integer,
	registered_at         timestamptz NOT NULL DEFAULT now(),
	last_heartbeat        timestamptz,
	status                text NOT NULL DEFAULT 'unknown'
		CHECK (status IN ('unknown', 'healthy', 'degraded', 'unhealthy')),
	status_since          timestamptz NOT NULL DEFAULT now(),
	last_check_at         timestamptz,
	last_latency_ms       double precision,
	consecutive_failures  integer NOT NULL DEFAULT 0,
	consecutive_successes integer NOT NULL DEFAULT 0,
	last_error            text,
	PRIMARY KEY (service_name, instance_id)
);

COMMENT ON TABLE hub.service_instances IS
	'Registered service instances and their health; written by hub.register_service and the health worker';
COMMENT ON COLUMN hub.service_instances.service_name IS
	'Service name, ^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$ (checked by a C trigger)';
COMMENT ON COLUMN hub.service_instances.instance_id IS
	'Instance name within the service: 1 to 200 of letters, digits and . _ : [ ] -';
COMMENT ON COLUMN hub.service_instances.host IS 'Host name or IP address the health worker connects to';
COMMENT ON COLUMN hub.service_instances.port IS 'TCP port, 1 to 65535';
COMMENT ON COLUMN hub.service_instances.protocol IS 'http or https';
COMMENT ON COLUMN hub.service_instances.health_endpoint IS 'Path of the health endpoint, starting with /';
COMMENT ON COLUMN hub.service_instances.metadata IS 'Free JSON object given at registration';
COMMENT ON COLUMN hub.service_instances.ttl_seconds IS
	'NULL: the worker polls the health endpoint; set: heartbeat-driven, unhealthy without a heartbeat for this long';
COMMENT ON COLUMN hub.service_instances.registered_at IS 'When the instance was (last) registered';
COMMENT ON COLUMN hub.service_instances.last_heartbeat IS 'Last hub.heartbeat (registration counts as one)';
COMMENT ON COLUMN hub.service_instances.status IS 'unknown (not yet decided), healthy, degraded or unhealthy';
COMMENT ON COLUMN hub.service_instances.status_since IS 'When status last changed (central_hub.deregister_after counts from it)';
COMMENT ON COLUMN hub.service_instances.last_check_at IS 'When the worker last checked the instance';
COMMENT ON COLUMN hub.service_instances.last_latency_ms IS 'Duration of the last health request';
COMMENT ON COLUMN hub.service_instances.consecutive_failures IS 'Failed checks in a row';
COMMENT ON COLUMN hub.service_instances.consecutive_successes IS 'Passing (healthy or degraded) checks in a row';
COMMENT ON COLUMN hub.service_instances.last_error IS 'Why the last check failed or was degraded; NULL after a pass';

CREATE FUNCTION hub.service_instance_check() RETURNS trigger
	AS 'MODULE_PATHNAME', 'service_instance_check' LANGUAGE C;
COMMENT ON FUNCTION hub.service_instance_check() IS
	'Checks name, instance id, host, port, protocol, endpoint, metadata and ttl of a registered instance';

CREATE TRIGGER service_instance_check
	BEFORE INSERT OR UPDATE OF service_name, instance_id, host, port, protocol,
		health_endpoint, metadata, ttl_seconds
	ON hub.service_instances
	FOR EACH ROW EXECUTE FUNCTION hub.service_instance_check();

CREATE FUNCTION hub.register_service(service_name text, host text, port integer,
									 health_endpoint text DEFAULT '/health',
									 metadata jsonb DEFAULT '{}',
									 instance_id text DEFAULT NULL,
									 ttl_seconds integer DEFAULT NULL,
									 protocol text DEFAULT 'http')
	RETURNS text AS 'MODULE_PATHNAME', 'hub_register_service' LANGUAGE C CALLED ON NULL INPUT;
COMMENT ON FUNCTION hub.register_service(text, text, integer, text, jsonb, text, integer, text) IS
	'Registers (or re-registers) an instance; instance_id defaults to metadata.instance_id, else host:port; returns the instance id';

CREATE FUNCTION hub.deregister_service(service_name text, instance_id text DEFAULT NULL)
	RETURNS integer AS 'MODULE_PATHNAME', 'hub_deregister_service' LANGUAGE C CALLED ON NULL INPUT;
COMMENT ON FUNCTION hub.deregister_service(text, text) IS
	'Removes one instance, or every instance of the service when instance_id is NULL; returns how many';

CREATE FUNCTION hub.heartbeat(service_name text, instance_id text)
	RETURNS text AS 'MODULE_PATHNAME', 'hub_heartbeat' LANGUAGE C CALLED ON NULL INPUT;
COMMENT ON FUNCTION hub.heartbeat(text, text) IS
	'Records that the instance is alive (keeps TTL instances healthy); returns its current status';

CREATE FUNCTION hub.discover(service_name text)
	RETURNS TABLE (instance_id text, url text, status text, metadata jsonb)
	AS 'MODULE_PATHNAME', 'hub_discover' LANGUAGE C STABLE CALLED ON NULL INPUT;
COMMENT ON FUNCTION hub.discover(text) IS
	'The service''s instances with their base URL, healthy first (then degraded, unknown, unhealthy)';

-- A service is unknown while none of its instances has been decided,
-- healthy when every decided instance is healthy, degraded when at least
-- one is healthy or degraded, unhealthy otherwise.
CREATE VIEW hub.health_status AS
SELECT service_name,
	   CASE
		   WHEN count(*) FILTER (WHERE status <> 'unknown') = 0 THEN 'unknown'
		   WHEN count(*) FILTER (WHERE status = 'healthy')
				= count(*) FILTER (WHERE status <> 'unknown') THEN 'healthy'
		   WHEN count(*) FILTER (WHERE status IN ('healthy', 'degraded')) > 0 THEN 'degraded'
		   ELSE 'unhealthy'
	   END AS service_status,
	   count(*) FILTER (WHERE status = 'healthy') || '/' || count(*) AS instances,
	   count(*) FILTER (WHERE status = 'healthy') AS healthy_instances,
	   count(*) AS total_instances,
	   (array_agg(status ORDER BY CASE status WHEN 'unhealthy' THEN 0
			WHEN 'degraded' THEN 1 WHEN 'unknown' THEN 2 ELSE 3 END))[1] AS worst_status,
	   max(last_check_at) AS last_check_at,
	   (array_agg(instance_id || ': ' || last_error ORDER BY last_check_at DESC NULLS LAST)
			FILTER (WHERE last_error IS NOT NULL))[1] AS last_error
FROM hub.service_instances
GROUP BY service_name;

COMMENT ON VIEW hub.health_status IS
	'One row per registered service: aggregate status, healthy/total instances, worst instance status, last check and last error';

CREATE FUNCTION hub.health_summary()
	RETURNS jsonb AS 'MODULE_PATHNAME', 'hub_health_summary' LANGUAGE C STABLE;
COMMENT ON FUNCTION hub.health_summary() IS
	'{"total_services","healthy","degraded","unhealthy","unknown","services":{name: status}}';

CREATE FUNCTION hub.health_worker_stats(
	OUT pid integer, OUT cycles bigint, OUT last_cycle_start timestamptz,
	OUT last_cycle_ms double precision, OUT last_checks integer,
	OUT last_failures integer, OUT last_transitions integer,
	OUT total_checks bigint, OUT total_failures bigint, OUT failed_cycles bigint)
	AS 'MODULE_PATHNAME', 'hub_health_worker_stats' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION hub.health_worker_stats() IS
	'The health worker''s figures from shared memory (zeros without shared_preload_libraries)';

CREATE VIEW hub.health_worker AS SELECT * FROM hub.health_worker_stats();
COMMENT ON VIEW hub.health_worker IS
	'The health worker''s figures: cycles done, last cycle''s duration, checks and failures, totals';

COMMENT ON COLUMN hub.health_status.service_name IS 'The registered service';
COMMENT ON COLUMN hub.health_status.service_status IS 'healthy when all checked instances are, degraded when some are, unhealthy when none is, unknown before the first check';
COMMENT ON COLUMN hub.health_status.instances IS 'healthy/total instances, as text';
COMMENT ON COLUMN hub.health_status.healthy_instances IS 'Instances that are healthy';
COMMENT ON COLUMN hub.health_status.total_instances IS 'Instances registered';
COMMENT ON COLUMN hub.health_status.worst_status IS 'The worst status of any instance';
COMMENT ON COLUMN hub.health_status.last_check_at IS 'When an instance of the service was last checked';
COMMENT ON COLUMN hub.health_status.last_error IS 'The most recent failure reason, prefixed with its instance';
COMMENT ON COLUMN hub.health_worker.pid IS 'The health worker''s process id (NULL when it is not running)';
COMMENT ON COLUMN hub.health_worker.cycles IS 'Check cycles completed since the worker started';
COMMENT ON COLUMN hub.health_worker.last_cycle_start IS 'When the last cycle started';
COMMENT ON COLUMN hub.health_worker.last_cycle_ms IS 'Duration of the last cycle, in milliseconds';
COMMENT ON COLUMN hub.health_worker.last_checks IS 'Instances checked in the last cycle';
COMMENT ON COLUMN hub.health_worker.last_failures IS 'Failed checks in the last cycle';
COMMENT ON COLUMN hub.health_worker.last_transitions IS 'Status transitions recorded by the last cycle';
COMMENT ON COLUMN hub.health_worker.total_checks IS 'Checks since the worker started';
COMMENT ON COLUMN hub.health_worker.total_failures IS 'Failed checks since the worker started';
COMMENT ON COLUMN hub.health_worker.failed_cycles IS 'Cycles that ended in an error (logged and retried)';
COMMENT ON TRIGGER service_instance_check ON hub.service_instances IS
	'Validates registrations: name, host, port, endpoint, protocol, metadata, ttl';
COMMENT ON INDEX hub.outbox_unnotified_idx IS 'Outbox rows the relay has not notified yet';

REVOKE ALL ON hub.service_instances, hub.health_status, hub.health_worker FROM PUBLIC;
REVOKE ALL ON FUNCTION hub.service_instance_check(),
	hub.register_service(text, text, integer, text, jsonb, text, integer, text),
	hub.deregister_service(text, text), hub.heartbeat(text, text),
	hub.discover(text), hub.health_summary(), hub.health_worker_stats()
	FROM PUBLIC;

GRANT SELECT ON hub.service_instances, hub.health_status, hub.health_worker TO hub_reader;
GRANT EXECUTE ON FUNCTION hub.discover(text), hub.health_summary(), hub.health_worker_stats()
	TO hub_reader;

GRANT INSERT, UPDATE, DELETE ON hub.service_instances TO hub_admin;
GRANT EXECUTE ON FUNCTION
	hub.register_service(text, text, integer, text, jsonb, text, integer, text),
	hub.deregister_service(text, text), hub.heartbeat(text, text)
	TO hub_admin;

------------------------------------------------------------------------------
-- API keys (hubd, the HTTP frontend; src/api_keys.c)
------------------------------------------------------------------------------
-- hubd logs in as a role that is a member of hub_admin (so that it can
-- SET ROLE to any key's role); each request runs in a transaction that
-- calls hub.api_key_authenticate, then SET LOCAL ROLE <key's role> and
-- SET LOCAL central_hub.actor = <key's name>.
CREATE TABLE hub.api_keys (
	name        text PRIMARY KEY,
	key_hash    bytea NOT NULL UNIQUE CHECK (octet_length(key_hash) = 32),
	role        text NOT NULL CHECK (role IN ('hub_reader', 'hub_writer', 'hub_admin')),
	created_at  timestamptz NOT NULL DEFAULT now(),
	created_by  text NOT NULL DEFAULT current_user,
	disabled    boolean NOT NULL DEFAULT false,
	disabled_at timestamptz
);

COMMENT ON TABLE hub.api_keys IS
	'API keys of hubd: each names a caller (the audit log''s changed_by) and the role its requests run as';
COMMENT ON COLUMN hub.api_keys.name IS 'Key name, written to the audit log as the actor of its changes';
COMMENT ON COLUMN hub.api_keys.key_hash IS 'SHA-256 of the key (the key itself is shown once, by hub.create_api_key)';
COMMENT ON COLUMN hub.api_keys.role IS 'hub_reader, hub_writer or hub_admin: what requests with this key may do';
COMMENT ON COLUMN hub.api_keys.created_at IS 'When the key was created';
COMMENT ON COLUMN hub.api_keys.created_by IS 'Database user that created the key';
COMMENT ON COLUMN hub.api_keys.disabled IS 'A disabled key is refused (401) from the next request on';
COMMENT ON COLUMN hub.api_keys.disabled_at IS 'When the key was disabled';

CREATE FUNCTION hub.create_api_key(name text, role text)
	RETURNS text AS 'MODULE_PATHNAME', 'hub_create_api_key' LANGUAGE C VOLATILE CALLED ON NULL INPUT;
COMMENT ON FUNCTION hub.create_api_key(text, text) IS
	'Creates an API key for hubd with a role (hub_reader, hub_writer, hub_admin); returns the key, shown only this once';

CREATE FUNCTION hub.disable_api_key(name text)
	RETURNS void AS 'MODULE_PATHNAME', 'hub_disable_api_key' LANGUAGE C VOLATILE CALLED ON NULL INPUT;
COMMENT ON FUNCTION hub.disable_api_key(text) IS
	'Disables an API key at once; its row stays for the record';

CREATE FUNCTION hub.api_key_authenticate(key text, OUT name text, OUT role text)
	RETURNS record AS 'MODULE_PATHNAME', 'hub_api_key_authenticate' LANGUAGE C STABLE CALLED ON NULL INPUT;
COMMENT ON FUNCTION hub.api_key_authenticate(text) IS
	'Name and role of an enabled API key; raises 28000 for an unknown or disabled key (used by hubd)';

CREATE FUNCTION hub.api_keys_changed() RETURNS trigger
	AS 'MODULE_PATHNAME', 'hub_api_keys_changed' LANGUAGE C;
COMMENT ON FUNCTION hub.api_keys_changed() IS
	'Trigger: NOTIFY hub_api_keys at commit of a change to hub.api_keys (hubd drops its cached keys)';
CREATE TRIGGER api_keys_changed
	AFTER UPDATE OR DELETE OR TRUNCATE ON hub.api_keys
	FOR EACH STATEMENT EXECUTE FUNCTION hub.api_keys_changed();
COMMENT ON TRIGGER api_keys_changed ON hub.api_keys IS
	'Tells every hubd to forget the keys it cached as valid';

REVOKE ALL ON hub.api_keys FROM PUBLIC;
REVOKE ALL ON FUNCTION hub.create_api_key(text, text), hub.disable_api_key(text),
	hub.api_key_authenticate(text) FROM PUBLIC;

GRANT SELECT, INSERT ON hub.api_keys TO hub_admin;
GRANT UPDATE (disabled, disabled_at) ON hub.api_keys TO hub_admin;
GRANT EXECUTE ON FUNCTION hub.create_api_key(text, text), hub.disable_api_key(text),
	hub.api_key_authenticate(text) TO hub_admin;
-- hubd's /health and /metrics report the relay backlog
GRANT SELECT ON hub.outbox TO hub_admin;
