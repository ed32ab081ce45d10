-- The config API: put, patch, get, history, diff, rollback, delete, get_at,
-- compare-and-set.  Seed-shaped configs of the pilot services.
\i sql/regress_setup.psql

-- put creates at 1.0.0, then bumps the patch version
SELECT hub.put_config('polygon-historical-downloader',
	'{"operational": {"gap_check_interval_hours": 1, "batch_size": 100, "max_retries": 3},
	  "download": {"start_date": "today-7days", "end_date": "today"},
	  "features": {"enable_gap_verification": true}}',
	changed_by => 'admin', reason => 'initial');
SELECT hub.get_config('polygon-historical-downloader');

-- patch: RFC 7396 merge, null removes, nested objects merge
SELECT hub.patch_config('polygon-historical-downloader',
	'{"operational": {"gap_check_interval_hours": 2}, "download": {"end_date": null}}',
	changed_by => 'admin', reason => 'slower gap checks');
SELECT hub.get_config('polygon-historical-downloader');

-- an explicit version must be newer; it is taken as given
SELECT hub.put_config('polygon-historical-downloader',
	'{"operational": {"gap_check_interval_hours": 2, "batch_size": 250, "max_retries": 3}}',
	version => '1.1.0', changed_by => 'deploy-job');

-- a change that changes nothing writes nothing and returns the current version
SELECT hub.patch_config('polygon-historical-downloader', '{"operational": {"batch_size": 250}}');
SELECT count(*) AS audit_rows FROM hub.config_audit_log
WHERE service_name = 'polygon-historical-downloader';

-- history, newest first, limit honoured; NULL limit = all
SELECT revision > 0 AS has_revision, version, previous_version, action, changed_by, change_reason
FROM hub.get_config_history('polygon-historical-downloader');
SELECT version FROM hub.get_config_history('polygon-historical-downloader', 1);
SELECT count(*) FROM hub.get_config_history('polygon-historical-downloader', NULL);
SELECT count(*) FROM hub.get_config_history('nobody-here');

-- diff: the merge patch between two versions, and it round-trips
SELECT hub.config_diff('polygon-historical-downloader', '1.0.0', '1.1.0');
SELECT hub.config_diff('polygon-historical-downloader', '1.1.0', '1.0.0');
SELECT hub.config_diff('polygon-historical-downloader', '1.0.1', '1.0.1');
SELECT hub.json_merge_patch(
	(SELECT config FROM hub.get_config_history('polygon-historical-downloader', NULL) WHERE version = '1.0.0'),
	hub.config_diff('polygon-historical-downloader', '1.0.0', '1.1.0'))
 = hub.get_config('polygon-historical-downloader') AS diff_round_trips;

-- rollback: the target's content as a new version, action rollback
SELECT hub.rollback_config('polygon-historical-downloader', '1.0.0', changed_by => 'oncall');
SELECT hub.get_config('polygon-historical-downloader') =
	(SELECT config FROM hub.get_config_history('polygon-historical-downloader', NULL)
	 WHERE version = '1.0.0') AS content_restored;
SELECT version, previous_version, action, changed_by, change_reason
FROM hub.get_config_history('polygon-historical-downloader', 1);

-- compare-and-set: expected_version
SELECT pg_temp.try($$SELECT hub.patch_config('polygon-historical-downloader',
	'{"operational": {"batch_size": 1}}', expected_version => '1.0.1')$$);
SELECT hub.patch_config('polygon-historical-downloader',
	'{"operational": {"batch_size": 1}}', expected_version => '1.1.1');
SELECT pg_temp.try($$SELECT hub.put_config('polygon-historical-downloader', '{}', expected_version => '')$$);
SELECT hub.put_config('tick-aggregator', '{"operational": {"window_seconds": 60}}', expected_version => '');
SELECT pg_temp.try($$SELECT hub.put_config('data-bridge', '{}', expected_version => '1.0.0')$$);
SELECT pg_temp.try($$SELECT hub.delete_config('tick-aggregator', expected_version => '9.9.9')$$);
SELECT pg_temp.try($$SELECT hub.rollback_config('tick-aggregator', '1.0.0', expected_version => '2.0.0')$$);

-- delete keeps history; get answers NULL; rollback restores a deleted service
SELECT hub.delete_config('tick-aggregator', changed_by => 'admin', reason => 'retired');
SELECT hub.get_config('tick-aggregator') IS NULL AS gone;
SELECT version, previous_version, action, change_reason, config
FROM hub.get_config_history('tick-aggregator');
SELECT hub.put_config('tick-aggregator', '{"operational": {"window_seconds": 30}}');
SELECT hub.delete_config('tick-aggregator');
SELECT hub.rollback_config('tick-aggregator', '1.0.0');
SELECT hub.get_config('tick-aggregator');
SELECT version, previous_version, action FROM hub.get_config_history('tick-aggregator');

-- get_config_at: the config as it was at a moment
SELECT hub.get_config_at('tick-aggregator', '2000-01-01') IS NULL AS none_before;
SELECT hub.get_config_at('tick-aggregator', now()) = hub.get_config('tick-aggregator') AS current_now;
SELECT hub.get_config_at('nobody-here', now()) IS NULL AS unknown_is_null;

-- every change queued exactly one outbox row, pointing at its audit row
SELECT count(*) = (SELECT count(*) FROM hub.config_audit_log) AS one_outbox_row_per_change,
	   bool_and(o.service_name = a.service_name) AS same_service
FROM hub.outbox o JOIN hub.config_audit_log a ON a.id = o.ref_id AND o.topic = 'config';
