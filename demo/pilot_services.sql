-- The three pilot services of the predecessor, as demo data for `make start`.
-- Not part of the extension.  Loads only services that have no config yet,
-- so running it again changes nothing.
DO $$
DECLARE
	pilot record;
BEGIN
	FOR pilot IN
		SELECT * FROM (VALUES
		('polygon-historical-downloader', 'Downloads historical bars from Polygon and fills gaps',
		 ARRAY['data-ingestion', 'polygon'],
		 '{"operational": {"gap_check_interval_hours": 1, "batch_size": 100, "max_retries": 3,
		                   "retry_delay_seconds": 10},
		   "download": {"start_date": "today-7days", "end_date": "today"},
		   "features": {"enable_gap_verification": true}}'::jsonb),
		('tick-aggregator', 'Aggregates ticks into OHLCV candles',
		 ARRAY['data-processing', 'candles'],
		 '{"operational": {"batch_size": 500, "flush_interval_seconds": 5, "max_retries": 3},
		   "aggregation": {"timeframes": ["1m", "5m", "15m", "1h", "4h", "1d"]},
		   "features": {"enable_late_tick_correction": true},
		   "business_logic": {"max_tick_delay_seconds": 30}}'::jsonb),
		('data-bridge', 'Bridges market data from NATS to ClickHouse',
		 ARRAY['data-bridge', 'storage'],
		 '{"operational": {"batch_size": 1000, "flush_interval_ms": 500, "max_concurrent_writes": 4},
		   "features": {"enable_deduplication": true, "enable_cache": false},
		   "business_logic": {"threshold": 0.95}}'::jsonb)
		) AS p(service_name, description, tags, config)
	LOOP
		IF hub.get_config(pilot.service_name) IS NULL THEN
			INSERT INTO hub.service_configs (service_name, config_json, description, tags, updated_by)
			VALUES (pilot.service_name, pilot.config, pilot.description, pilot.tags, 'make-start');
		END IF;
	END LOOP;
END
$$;
