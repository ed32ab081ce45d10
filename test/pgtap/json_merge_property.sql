-- Property test of the C merge patch: for 500 random pairs of nested
-- documents, applying the diff of (a, b) to a gives b, and merge patches
-- behave as RFC 7396 says (idempotent, nulls remove, non-objects replace).
BEGIN;
SELECT plan(5);

SELECT setseed(0.42);

-- a random value of at most depth d, over a small key set so docs overlap
CREATE FUNCTION pg_temp.rnd(d int) RETURNS jsonb LANGUAGE plpgsql VOLATILE AS $$
DECLARE
	r float := random();
	o jsonb := '{}';
BEGIN
	IF d = 0 OR r < 0.35 THEN
		RETURN (ARRAY['1', '2', '"x"', '"y"', 'true', 'false', '[1, 2]', '[{"a": 1}]', '1.50'])
			[1 + floor(random() * 9)::int]::jsonb;
	END IF;
	FOR i IN 1..(1 + floor(random() * 4)::int) LOOP
		o := o || jsonb_build_object((ARRAY['a', 'b', 'c', 'd', 'e'])[1 + floor(random() * 5)::int],
									 pg_temp.rnd(d - 1));
	END LOOP;
	RETURN o;
END $$;

-- a random object (configs are objects)
CREATE FUNCTION pg_temp.rnd_object(d int) RETURNS jsonb LANGUAGE sql VOLATILE AS $$
	SELECT jsonb_build_object('k', random()) ||
		   CASE WHEN jsonb_typeof(v) = 'object' THEN v ELSE jsonb_build_object('v', v) END
	FROM pg_temp.rnd(d) v
$$;

CREATE TEMP TABLE pairs AS
SELECT pg_temp.rnd_object(3) AS a, pg_temp.rnd_object(3) AS b
FROM generate_series(1, 500);

SELECT is((SELECT count(*) FROM pairs WHERE hub.json_merge_patch(a, hub.json_merge_diff(a, b)) <> b),
		  0::bigint, 'patch(a, diff(a, b)) = b for 500 random nested pairs');
SELECT is((SELECT count(*) FROM pairs WHERE hub.json_merge_diff(a, a) <> '{}'),
		  0::bigint, 'diff(a, a) is the empty patch');
SELECT is((SELECT count(*) FROM pairs
		   WHERE hub.json_merge_patch(hub.json_merge_patch(a, b), b) <> hub.json_merge_patch(a, b)),
		  0::bigint, 'applying the same patch twice changes nothing more');
SELECT is((SELECT count(*) FROM pairs
		   WHERE hub.json_merge_patch(a, jsonb_build_object('k', null)) ? 'k'),
		  0::bigint, 'a null in the patch removes the key');
SELECT is((SELECT count(*) FROM pairs WHERE hub.json_merge_patch(a, '[1]') <> '[1]'),
		  0::bigint, 'a non-object patch replaces the document');

SELECT * FROM finish();
ROLLBACK;
