-- The rules hold for plain SQL too: the seeds' admins INSERT and UPDATE
-- hub.service_configs by hand.
\i sql/regress_setup.psql

-- the seeds' INSERT, as written there
INSERT INTO hub.service_configs (service_name, config_json, version, description, tags)
VALUES (
  'new-service-name',
  '{
    "operational": {
      "batch_size": 100,
      "max_retries": 3
    },
    "features": {
      "enable_feature_a": true
    }
  }'::jsonb,
  '1.0.0',
  'New service description',
  ARRAY['category', 'tag']
);

-- without a version a new service starts at 1.0.0
INSERT INTO hub.service_configs (service_name, config_json) VALUES ('data-bridge', '{"operational": {"batch_size": 10}}');
SELECT service_name, version, description, tags, active, created_by = current_user AS by_me,
	   created_at = updated_at AS fresh
FROM hub.service_configs ORDER BY service_name;

-- an UPDATE without a version gets the next patch version
UPDATE hub.service_configs SET config_json = jsonb_set(config_json, '{operational,batch_size}', '20')
WHERE service_name = 'data-bridge';
-- an UPDATE that changes nothing writes nothing
UPDATE hub.service_configs SET config_json = config_json WHERE service_name = 'data-bridge';
-- a metadata change is a change too
UPDATE hub.service_configs SET description = 'bridges market data' WHERE service_name = 'data-bridge';
-- a version set by hand must be newer
SELECT pg_temp.try($$UPDATE hub.service_configs SET version = '1.0.0', config_json = '{"a": 1}' WHERE service_name = 'data-bridge'$$);
UPDATE hub.service_configs SET version = '2.0.0', config_json = '{"operational": {"batch_size": 30}}'
WHERE service_name = 'data-bridge';
-- created_at/created_by are kept; updated_* are set by the trigger
UPDATE hub.service_configs SET created_by = 'mallory', config_json = '{"operational": {"batch_size": 31}}'
WHERE service_name = 'data-bridge';
SELECT version, created_by = current_user AS creator_kept, updated_at >= created_at AS stamped
FROM hub.service_configs WHERE service_name = 'data-bridge';

-- upsert by hand
INSERT INTO hub.service_configs (service_name, config_json) VALUES ('data-bridge', '{"operational": {"batch_size": 40}}')
ON CONFLICT (service_name) DO UPDATE SET config_json = EXCLUDED.config_json;
INSERT INTO hub.service_configs (service_name, config_json) VALUES ('data-bridge', '{"operational": {"batch_size": 41}}')
ON CONFLICT (service_name) DO UPDATE SET config_json = EXCLUDED.config_json, version = EXCLUDED.version;

SELECT version, previous_version, action, changed_by = current_user AS by_me, db_user = session_user AS db_user_ok
FROM hub.config_audit_log WHERE service_name = 'data-bridge' ORDER BY id;

-- actor: updated_by set by the statement, else central_hub.actor, else current_user
BEGIN;
SET LOCAL central_hub.actor = 'key:deploy-bot';
SET LOCAL central_hub.change_reason = 'nightly tuning';
UPDATE hub.service_configs SET config_json = '{"operational": {"batch_size": 50}}' WHERE service_name = 'data-bridge';
UPDATE hub.service_configs SET config_json = '{"operational": {"batch_size": 51}}', updated_by = 'alice'
WHERE service_name = 'data-bridge';
COMMIT;
SELECT version, changed_by, change_reason, db_user = session_user AS db_user_is_session
FROM hub.config_audit_log WHERE service_name = 'data-bridge' ORDER BY id DESC LIMIT 2;

-- renaming is refused; the service keeps its name and history
SELECT pg_temp.try($$UPDATE hub.service_configs SET service_name = 'data-bridge-2' WHERE service_name = 'data-bridge'$$);

-- DELETE is audited with the removed content and version
DELETE FROM hub.service_configs WHERE service_name = 'new-service-name';
SELECT version, previous_version, action, config_json->'operational'->>'batch_size' AS batch_size
FROM hub.config_audit_log WHERE service_name = 'new-service-name' ORDER BY id;
-- re-creating continues the version sequence of the whole history
INSERT INTO hub.service_configs (service_name, config_json) VALUES ('new-service-name', '{"x": 1}');
SELECT pg_temp.try($$INSERT INTO hub.service_configs (service_name, config_json, version) VALUES ('new-service-name', '{"x": 1}', '1.0.1')$$);
SELECT version, previous_version, action FROM hub.config_audit_log
WHERE service_name = 'new-service-name' ORDER BY id DESC LIMIT 1;

-- TRUNCATE would bypass the audit
SELECT pg_temp.try($$TRUNCATE hub.service_configs$$);

-- the audit log is append-only (a superuser may still repair it)
CREATE ROLE hub_test_admin LOGIN IN ROLE hub_admin;
SET ROLE hub_test_admin;
SELECT pg_temp.try($$UPDATE hub.config_audit_log SET changed_by = 'nobody'$$);
SELECT pg_temp.try($$DELETE FROM hub.config_audit_log$$);
SELECT pg_temp.try($$TRUNCATE hub.config_audit_log$$);
SELECT pg_temp.try($$INSERT INTO hub.config_audit_log (service_name, config_json, version, action, changed_by) VALUES ('x', '{}', '9.9.9', 'created', 'forger')$$);
RESET ROLE;
-- even with privileges granted by mistake, the guard trigger refuses
GRANT UPDATE, DELETE, TRUNCATE ON hub.config_audit_log TO hub_test_admin;
SET ROLE hub_test_admin;
SELECT pg_temp.try($$UPDATE hub.config_audit_log SET changed_by = 'nobody'$$);
SELECT pg_temp.try($$DELETE FROM hub.config_audit_log$$);
SELECT pg_temp.try($$TRUNCATE hub.config_audit_log$$);
RESET ROLE;
REVOKE UPDATE, DELETE, TRUNCATE ON hub.config_audit_log FROM hub_test_admin;
-- a superuser may repair history
BEGIN;
UPDATE hub.config_audit_log SET change_reason = 'repaired' WHERE service_name = 'data-bridge';
ROLLBACK;
SET ROLE hub_test_admin;
-- an admin writes configs; the triggers write the audit as the table owner
SELECT hub.put_config('data-bridge', '{"operational": {"batch_size": 60}}');
RESET ROLE;
SELECT changed_by, db_user FROM hub.config_audit_log ORDER BY id DESC LIMIT 1;
DROP ROLE hub_test_admin;

-- multi-row statements: each row gets its own version and history
DELETE FROM hub.service_configs WHERE service_name IN ('new-service-name', 'data-bridge');
INSERT INTO hub.service_configs (service_name, config_json)
VALUES ('data-bridge', '{"v": 1}'), ('new-service-name', '{"v": 2}'), ('brand-new', '{"v": 3}');
SELECT service_name, version, previous_version, action
FROM (SELECT * FROM hub.config_audit_log ORDER BY id DESC LIMIT 5) last ORDER BY id;
UPDATE hub.service_configs SET active = false;
SELECT service_name, version, active FROM hub.service_configs ORDER BY service_name;

-- every change of this file queued one outbox row
SELECT count(*) AS outbox_rows, count(DISTINCT ref_id) AS distinct_revisions FROM hub.outbox;
SELECT count(*) AS audit_rows FROM hub.config_audit_log;
