-- The SQL contract of the config store (DESIGN.md): names, types, roles,
-- privileges, triggers and settings that operators and tests rely on.
BEGIN;
SELECT plan(47);

SELECT has_schema('hub');
SELECT has_table('hub', 'service_configs', 'current configs table');
SELECT columns_are('hub', 'service_configs', ARRAY[
	'service_name', 'config_json', 'version', 'created_at', 'updated_at',
	'created_by', 'updated_by', 'description', 'tags', 'active']);
SELECT col_is_pk('hub', 'service_configs', 'service_name', 'service_name is the key');
SELECT col_type_is('hub', 'service_configs', 'config_json', 'jsonb', 'config_json is jsonb');
SELECT col_not_null('hub', 'service_configs', 'config_json', 'config_json NOT NULL');
SELECT col_not_null('hub', 'service_configs', 'version', 'version NOT NULL');
SELECT col_type_is('hub', 'service_configs', 'tags', 'text[]', 'tags is text[]');
SELECT col_type_is('hub', 'service_configs', 'updated_at', 'timestamp with time zone', 'updated_at is timestamptz');

SELECT has_table('hub', 'config_audit_log', 'audit log table');
SELECT columns_are('hub', 'config_audit_log', ARRAY[
	'id', 'service_name', 'config_json', 'version', 'previous_version', 'action',
	'changed_by', 'changed_at', 'change_reason', 'db_user']);
SELECT col_type_is('hub', 'config_audit_log', 'id', 'bigint', 'revision is bigint');
SELECT col_is_pk('hub', 'config_audit_log', 'id', 'revision is the key');
SELECT has_table('hub', 'outbox', 'outbox table');

SELECT has_trigger('hub', 'service_configs', 'config_before_write', 'BEFORE trigger on configs');
SELECT has_trigger('hub', 'service_configs', 'config_after_write', 'AFTER trigger on configs');
SELECT has_trigger('hub', 'service_configs', 'config_no_truncate', 'TRUNCATE guard on configs');
SELECT has_trigger('hub', 'config_audit_log', 'audit_log_append_only', 'append-only guard on audit log');
SELECT is((SELECT l.lanname FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
		   WHERE p.oid = 'hub.config_before_write'::regproc), 'c', 'the rules are C');

SELECT has_function('hub', 'put_config', ARRAY['text', 'jsonb', 'text', 'text', 'text', 'text']);
SELECT has_function('hub', 'patch_config', ARRAY['text', 'jsonb', 'text', 'text', 'text', 'text']);
SELECT has_function('hub', 'get_config', ARRAY['text']);
SELECT has_function('hub', 'delete_config', ARRAY['text', 'text', 'text', 'text']);
SELECT has_function('hub', 'get_config_history', ARRAY['text', 'integer']);
SELECT has_function('hub', 'rollback_config', ARRAY['text', 'text', 'text', 'text']);
SELECT has_function('hub', 'config_diff', ARRAY['text', 'text', 'text']);
SELECT has_function('hub', 'get_config_at', ARRAY['text', 'timestamp with time zone']);
SELECT function_returns('hub', 'get_config', ARRAY['text'], 'jsonb');
SELECT function_returns('hub', 'put_config', ARRAY['text', 'jsonb', 'text', 'text', 'text', 'text'], 'text');
SELECT is((SELECT array_agg(a ORDER BY n) FROM pg_proc p,
		   unnest(p.proargnames) WITH ORDINALITY AS t(a, n)
		   WHERE p.oid = 'hub.put_config'::regproc),
		  ARRAY['service_name', 'config', 'version', 'changed_by', 'reason', 'expected_version'],
		  'put_config argument names are the documented ones');

SELECT has_role('hub_reader');
SELECT has_role('hub_writer');
SELECT has_role('hub_admin');
SELECT ok(pg_has_role('hub_admin', 'hub_writer', 'MEMBER'), 'hub_admin includes hub_writer');
SELECT ok(pg_has_role('hub_writer', 'hub_reader', 'MEMBER'), 'hub_writer includes hub_reader');
SELECT table_privs_are('hub', 'service_configs', 'hub_reader', ARRAY['SELECT'], 'reader may only read configs');
SELECT table_privs_are('hub', 'service_configs', 'hub_writer', ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE'], 'writer may write configs');
SELECT table_privs_are('hub', 'config_audit_log', 'hub_writer', ARRAY['SELECT'], 'writers cannot write history directly');
SELECT table_privs_are('hub', 'config_audit_log', 'public', ARRAY[]::text[], 'public has no access to history');
SELECT function_privs_are('hub', 'put_config', ARRAY['text', 'jsonb', 'text', 'text', 'text', 'text'], 'hub_reader', ARRAY[]::text[], 'reader cannot put');
SELECT function_privs_are('hub', 'get_config', ARRAY['text'], 'hub_reader', ARRAY['EXECUTE'], 'reader can get');

SELECT is(current_setting('central_hub.max_config_bytes'), '256kB', 'size cap default 256kB, with units');
SELECT isnt(current_setting('central_hub.secret_key_pattern'), '', 'secret check on by default');
SELECT is((SELECT context FROM pg_settings WHERE name = 'central_hub.secret_key_pattern'), 'superuser', 'secret pattern is a superuser setting');
SELECT is((SELECT context FROM pg_settings WHERE name = 'central_hub.actor'), 'user', 'actor can be set by frontends');
SELECT throws_ok($$SET central_hub.no_such_setting = 1$$, '42602', NULL, 'central_hub. prefix is reserved');
SELECT ok(obj_description('hub.service_configs'::regclass, 'pg_class') IS NOT NULL, 'tables are commented');

SELECT * FROM finish();
ROLLBACK;
