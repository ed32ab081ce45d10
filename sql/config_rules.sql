-- Every fault a user can cause: a specific SQLSTATE, a message naming the
-- service and the problem, and nothing written.
\i sql/regress_setup.psql

SELECT hub.put_config('tick-aggregator', '{"operational": {"window_seconds": 60}}');

-- names
SELECT pg_temp.try($$SELECT hub.put_config('bad name', '{}')$$);
SELECT pg_temp.try($$SELECT hub.put_config('-leading-dash', '{}')$$);
SELECT pg_temp.try($$SELECT hub.put_config('', '{}')$$);
SELECT pg_temp.try($$SELECT hub.put_config('a.b', '{}')$$);
SELECT pg_temp.try($$SELECT hub.put_config(repeat('a', 101), '{}')$$);
SELECT pg_temp.try($$SELECT hub.put_config(repeat('a', 100), '{}')$$);
SELECT pg_temp.try($$INSERT INTO hub.service_configs (service_name, config_json) VALUES ('config.update.*', '{}')$$);

-- NULL arguments
SELECT pg_temp.try($$SELECT hub.put_config(NULL, '{}')$$);
SELECT pg_temp.try($$SELECT hub.put_config('tick-aggregator', NULL)$$);
SELECT pg_temp.try($$SELECT hub.patch_config('tick-aggregator', NULL)$$);
SELECT pg_temp.try($$SELECT hub.rollback_config('tick-aggregator', NULL)$$);
SELECT pg_temp.try($$SELECT hub.config_diff('tick-aggregator', NULL, '1.0.0')$$);
SELECT pg_temp.try($$SELECT hub.get_config_at('tick-aggregator', NULL)$$);
SELECT pg_temp.try($$SELECT hub.delete_config(NULL)$$);
SELECT pg_temp.try($$INSERT INTO hub.service_configs (service_name, config_json) VALUES ('x1', NULL)$$);
SELECT hub.get_config(NULL) IS NULL AS strict_get;

-- content: objects only
SELECT pg_temp.try($$SELECT hub.put_config('tick-aggregator', '[1, 2]')$$);
SELECT pg_temp.try($$SELECT hub.put_config('tick-aggregator', '"text"')$$);
SELECT pg_temp.try($$SELECT hub.put_config('tick-aggregator', 'null')$$);
SELECT pg_temp.try($$SELECT hub.patch_config('tick-aggregator', '[]')$$);
SELECT pg_temp.try($$UPDATE hub.service_configs SET config_json = '42' WHERE service_name = 'tick-aggregator'$$);
-- malformed JSON never reaches the hub: jsonb input rejects it
SELECT pg_temp.try($$SELECT hub.put_config('tick-aggregator', '{"a": }')$$);

-- size cap
SET central_hub.max_config_bytes = '1kB';
SELECT pg_temp.try($$SELECT hub.put_config('tick-aggregator', jsonb_build_object('blob', repeat('x', 2000)))$$);
SELECT pg_temp.try($$SELECT hub.put_config('tick-aggregator', jsonb_build_object('blob', repeat('x', 100)))$$);
RESET central_hub.max_config_bytes;

-- secret-looking keys, at any depth, arrays included
SELECT pg_temp.try($$SELECT hub.put_config('tick-aggregator', '{"db_password": "x"}')$$);
SELECT pg_temp.try($$SELECT hub.put_config('tick-aggregator', '{"clickhouse": {"PASSWORD": "x"}}')$$);
SELECT pg_temp.try($$SELECT hub.put_config('tick-aggregator', '{"feeds": [{"name": "a"}, {"api_key": "k"}]}')$$);
SELECT pg_temp.try($$SELECT hub.patch_config('tick-aggregator', '{"polygon": {"apiKey": "k"}}')$$);
SELECT pg_temp.try($$SELECT hub.put_config('tick-aggregator', '{"auth_token": "t"}')$$);
SELECT pg_temp.try($$INSERT INTO hub.service_configs (service_name, config_json) VALUES ('x2', '{"aws": {"secret_access_key": "s"}}')$$);
-- values are not keys; ordinary keys pass
SELECT pg_temp.try($$SELECT hub.put_config('tick-aggregator', '{"note": "password rotation is weekly", "max_tokens": 5}')$$);
-- the pattern is a superuser setting; empty disables the check
CREATE ROLE hub_test_writer LOGIN IN ROLE hub_writer;
SET ROLE hub_test_writer;
SELECT pg_temp.try($$SET central_hub.secret_key_pattern = ''$$);
SELECT pg_temp.try($$SET central_hub.max_config_bytes = '1GB'$$);
RESET ROLE;
SET central_hub.secret_key_pattern = '^x_';
SELECT pg_temp.try($$SELECT hub.put_config('tick-aggregator', '{"x_private": 1}')$$);
SET central_hub.secret_key_pattern = '';
SELECT pg_temp.try($$SELECT hub.put_config('tick-aggregator', '{"password_policy": "strict"}')$$);
RESET central_hub.secret_key_pattern;

-- versions
SELECT pg_temp.try($$SELECT hub.put_config('tick-aggregator', '{"a": 1}', version => 'v2')$$);
SELECT pg_temp.try($$SELECT hub.put_config('tick-aggregator', '{"a": 1}', version => '1.2')$$);
SELECT pg_temp.try($$SELECT hub.put_config('tick-aggregator', '{"a": 1}', version => '01.2.3')$$);
SELECT pg_temp.try($$SELECT hub.put_config('tick-aggregator', '{"a": 1}', version => '1.2.3-beta')$$);
SELECT pg_temp.try($$SELECT hub.put_config('tick-aggregator', '{"a": 1}', version => '1.0.0')$$);
SELECT pg_temp.try($$SELECT hub.put_config('tick-aggregator', '{"a": 1}', version => '0.9.9')$$);
SELECT pg_temp.try($$SELECT hub.put_config('tick-aggregator', '{"a": 1}', expected_version => 'latest')$$);
SELECT pg_temp.try($$INSERT INTO hub.service_configs (service_name, config_json, version) VALUES ('x3', '{}', 'one')$$);
-- semver precedence is numeric, not textual: 1.10.0 > 1.9.0
SELECT hub.put_config('tick-aggregator', '{"a": 9}', version => '1.9.0');
SELECT hub.put_config('tick-aggregator', '{"a": 10}', version => '1.10.0');
SELECT pg_temp.try($$SELECT hub.put_config('tick-aggregator', '{"a": 2}', version => '1.9.9')$$);

-- unknown service or version
SELECT pg_temp.try($$SELECT hub.rollback_config('nobody-here', '1.0.0')$$);
SELECT pg_temp.try($$SELECT hub.rollback_config('tick-aggregator', '7.7.7')$$);
SELECT pg_temp.try($$SELECT hub.config_diff('tick-aggregator', '1.0.0', '7.7.7')$$);
SELECT pg_temp.try($$SELECT hub.config_diff('nobody-here', '1.0.0', '1.0.1')$$);
SELECT pg_temp.try($$SELECT hub.delete_config('nobody-here')$$);
SELECT pg_temp.try($$SELECT hub.get_config_history('tick-aggregator', -1)$$);

-- a reader may read but not write
SET ROLE hub_test_writer;
SELECT hub.get_config('tick-aggregator') IS NOT NULL AS writer_reads;
RESET ROLE;
CREATE ROLE hub_test_reader LOGIN IN ROLE hub_reader;
SET ROLE hub_test_reader;
SELECT hub.get_config('tick-aggregator') IS NOT NULL AS reader_reads;
SELECT count(*) > 0 AS reader_reads_history FROM hub.get_config_history('tick-aggregator');
SELECT pg_temp.try($$SELECT hub.put_config('tick-aggregator', '{"a": 3}')$$);
SELECT pg_temp.try($$SELECT hub.patch_config('tick-aggregator', '{"a": 3}')$$);
SELECT pg_temp.try($$SELECT hub.rollback_config('tick-aggregator', '1.0.0')$$);
SELECT pg_temp.try($$SELECT hub.delete_config('tick-aggregator')$$);
SELECT pg_temp.try($$UPDATE hub.service_configs SET config_json = '{}'$$);
SELECT pg_temp.try($$SELECT count(*) FROM hub.outbox$$);
RESET ROLE;
-- no role at all: not even reads
CREATE ROLE hub_test_nobody LOGIN;
SET ROLE hub_test_nobody;
SELECT pg_temp.try($$SELECT hub.get_config('tick-aggregator')$$);
RESET ROLE;
DROP ROLE hub_test_reader, hub_test_writer, hub_test_nobody;

-- nothing above wrote anything but the accepted changes
SELECT version, action FROM hub.config_audit_log WHERE service_name = 'tick-aggregator' ORDER BY id;
SELECT count(*) AS other_services FROM hub.config_audit_log WHERE service_name <> 'tick-aggregator';
SELECT count(*) AS outbox_rows FROM hub.outbox;
