-- Behaviour of writes that regression output shows less directly: actor
-- precedence, nothing written on error, outbox rows, sizes at the limit.
BEGIN;
SELECT plan(22);

-- actor: explicit argument > central_hub.actor > current_user
SELECT hub.put_config('pgtap-actor', '{"a": 1}');
SELECT is((SELECT changed_by FROM hub.config_audit_log WHERE service_name = 'pgtap-actor' ORDER BY id DESC LIMIT 1),
		  current_user::text, 'no actor given: current_user');
SET LOCAL central_hub.actor = 'key:ci';
SELECT hub.patch_config('pgtap-actor', '{"a": 2}');
SELECT is((SELECT changed_by FROM hub.config_audit_log WHERE service_name = 'pgtap-actor' ORDER BY id DESC LIMIT 1),
		  'key:ci', 'central_hub.actor when no argument');
SELECT hub.patch_config('pgtap-actor', '{"a": 3}', changed_by => 'alice');
SELECT is((SELECT changed_by FROM hub.config_audit_log WHERE service_name = 'pgtap-actor' ORDER BY id DESC LIMIT 1),
		  'alice', 'changed_by argument wins');
SELECT is((SELECT updated_by FROM hub.service_configs WHERE service_name = 'pgtap-actor'),
		  'alice', 'updated_by follows the actor');
SELECT is((SELECT db_user FROM hub.config_audit_log WHERE service_name = 'pgtap-actor' ORDER BY id DESC LIMIT 1),
		  session_user::text, 'db_user is the session user, whatever the actor says');
RESET central_hub.actor;

-- failed writes leave nothing behind: no config, no audit, no outbox
SELECT throws_ok($$SELECT hub.put_config('pgtap-fail', '{"token": "x"}')$$, 'HB001', NULL, 'secret refused');
SELECT is((SELECT count(*) FROM hub.service_configs WHERE service_name = 'pgtap-fail'), 0::bigint, 'no config row after failure');
SELECT is((SELECT count(*) FROM hub.config_audit_log WHERE service_name = 'pgtap-fail'), 0::bigint, 'no audit row after failure');
SELECT is((SELECT count(*) FROM hub.outbox WHERE service_name = 'pgtap-fail'), 0::bigint, 'no outbox row after failure');
SELECT throws_ok($$SELECT hub.patch_config('pgtap-actor', '{"nested": {"password": "x"}}')$$, 'HB001', NULL, 'nested secret refused by patch');
SELECT is(hub.get_config('pgtap-actor'), '{"a": 3}'::jsonb, 'config unchanged after a refused patch');

-- each change: one audit row and one outbox row that points at it
SELECT is((SELECT count(*) FROM hub.config_audit_log WHERE service_name = 'pgtap-actor'), 3::bigint, 'three changes, three audit rows');
SELECT set_eq($$SELECT ref_id FROM hub.outbox WHERE topic = 'config' AND service_name = 'pgtap-actor'$$,
			  $$SELECT id FROM hub.config_audit_log WHERE service_name = 'pgtap-actor'$$,
			  'outbox rows point at the audit rows');

-- the size cap is inclusive and counts stored bytes
SET LOCAL central_hub.max_config_bytes = 100;
SELECT lives_ok($$SELECT hub.put_config('pgtap-size', jsonb_build_object('k', repeat('x', 60)))$$, 'small config accepted');
SELECT throws_ok($$SELECT hub.put_config('pgtap-size', jsonb_build_object('k', repeat('x', 200)))$$, '54000', NULL, 'large config refused');
RESET central_hub.max_config_bytes;

-- patch creates a missing config, dropping the patch's nulls
SELECT is(hub.patch_config('pgtap-new', '{"a": {"b": 1, "c": null}, "d": null}'), '1.0.0', 'patch creates at 1.0.0');
SELECT is(hub.get_config('pgtap-new'), '{"a": {"b": 1}}'::jsonb, 'nulls of a creating patch are dropped');

-- merge patch per RFC 7396 examples
SELECT is(hub.json_merge_patch('{"a": "b"}', '{"a": "c"}'), '{"a": "c"}'::jsonb, 'RFC 7396: replace');
SELECT is(hub.json_merge_patch('{"a": [{"b": "c"}]}', '{"a": [1]}'), '{"a": [1]}'::jsonb, 'RFC 7396: arrays replace');
SELECT is(hub.json_merge_patch('{"a": {"b": "c"}}', '{"a": {"b": "d", "c": null}}'), '{"a": {"b": "d"}}'::jsonb, 'RFC 7396: nested');
SELECT is(hub.json_merge_patch('{"e": null}', '{"a": 1}'), '{"a": 1, "e": null}'::jsonb, 'RFC 7396: existing nulls kept');
SELECT is(hub.json_merge_patch('[1, 2]', '{"a": "b", "c": null}'), '{"a": "b"}'::jsonb, 'RFC 7396: non-object target replaced');

SELECT * FROM finish();
ROLLBACK;
