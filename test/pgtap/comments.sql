-- Every object of the extension is documented with COMMENT ON.
BEGIN;
SELECT plan(4);

SELECT is_empty($$
	SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
	WHERE n.nspname = 'hub' AND c.relkind IN ('r', 'v', 'm', 'i')
	  AND obj_description(c.oid, 'pg_class') IS NULL
	  AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = c.oid)$$,
	'every table, view and index in hub has a comment (constraint indexes aside)');
SELECT is_empty($$
	SELECT c.relname || '.' || a.attname FROM pg_attribute a
	JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
	WHERE n.nspname = 'hub' AND c.relkind IN ('r', 'v') AND a.attnum > 0 AND NOT a.attisdropped
	  AND col_description(c.oid, a.attnum) IS NULL$$,
	'every column of every table and view in hub has a comment');
SELECT is_empty($$
	SELECT p.oid::regprocedure::text FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
	WHERE n.nspname = 'hub' AND obj_description(p.oid, 'pg_proc') IS NULL$$,
	'every function in hub has a comment');
SELECT is_empty($$
	SELECT t.tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
	JOIN pg_namespace n ON n.oid = c.relnamespace
	WHERE n.nspname = 'hub' AND NOT t.tgisinternal AND obj_description(t.oid, 'pg_trigger') IS NULL$$,
	'every trigger in hub has a comment');

SELECT * FROM finish();
ROLLBACK;
