-- bench reference: the config store's rules written in PL/pgSQL, on copies of
-- the hub tables, to measure what writing them in C buys.  Same rules: name
-- pattern, object only, size cap, secret keys at any depth, semver strictly
-- increasing with patch bump, no-op updates skipped, actor, audit + outbox.
DROP SCHEMA IF EXISTS plpg CASCADE;
CREATE SCHEMA plpg;
CREATE TABLE plpg.service_configs (LIKE hub.service_configs INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING INDEXES);
CREATE TABLE plpg.config_audit_log (
	id bigserial PRIMARY KEY, service_name text NOT NULL, config_json jsonb NOT NULL,
	version text NOT NULL, previous_version text, action text NOT NULL,
	changed_by text NOT NULL, changed_at timestamptz NOT NULL DEFAULT now(),
	change_reason text, db_user text NOT NULL DEFAULT session_user);
CREATE INDEX ON plpg.config_audit_log (service_name, id);
CREATE TABLE plpg.outbox (
	id bigserial PRIMARY KEY,
	topic text NOT NULL, service_name text NOT NULL, ref_id bigint NOT NULL,
	queued_at timestamptz NOT NULL DEFAULT now(), notified_at timestamptz);

CREATE FUNCTION plpg.semver(v text) RETURNS bigint[] LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
	IF v !~ '^(0|[1-9][0-9]{0,14})\.(0|[1-9][0-9]{0,14})\.(0|[1-9][0-9]{0,14})$' THEN
		RAISE EXCEPTION 'invalid version "%"', v USING ERRCODE = '22P02';
	END IF;
	RETURN ARRAY[split_part(v, '.', 1)::bigint, split_part(v, '.', 2)::bigint, split_part(v, '.', 3)::bigint];
END $$;

CREATE FUNCTION plpg.secret_key(doc jsonb, pattern text) RETURNS text LANGUAGE sql STABLE AS $$
	WITH RECURSIVE walk(v) AS (
		SELECT doc
		UNION ALL
		SELECT e.value FROM walk, LATERAL (
			SELECT value FROM jsonb_each(CASE WHEN jsonb_typeof(walk.v) = 'object' THEN walk.v END)
			UNION ALL
			SELECT value FROM jsonb_array_elements(CASE WHEN jsonb_typeof(walk.v) = 'array' THEN walk.v END)) e
	)
	SELECT k FROM walk, LATERAL jsonb_object_keys(CASE WHEN jsonb_typeof(walk.v) = 'object' THEN walk.v END) k
	WHERE k ~ pattern LIMIT 1
$$;

CREATE FUNCTION plpg.before_write() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
	latest text;
	asked text;
	bad text;
	actor text := coalesce(nullif(current_setting('central_hub.actor', true), ''), current_user);
	pattern text := current_setting('central_hub.secret_key_pattern');
BEGIN
	IF NEW.service_name !~ '^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$' THEN
		RAISE EXCEPTION 'invalid service name "%"', NEW.service_name USING ERRCODE = '42602';
	END IF;
	IF jsonb_typeof(NEW.config_json) <> 'object' THEN
		RAISE EXCEPTION 'config must be a JSON object' USING ERRCODE = '22023';
	END IF;
	IF pg_column_size(NEW.config_json) > 262144 THEN
		RAISE EXCEPTION 'config too large' USING ERRCODE = '54000';
	END IF;
	IF pattern <> '' THEN
		bad := plpg.secret_key(NEW.config_json, pattern);
		IF bad IS NOT NULL THEN
			RAISE EXCEPTION 'secret-looking key "%"', bad USING ERRCODE = 'HB001';
		END IF;
	END IF;
	IF TG_OP = 'UPDATE' THEN
		IF NEW.service_name <> OLD.service_name THEN
			RAISE EXCEPTION 'cannot rename' USING ERRCODE = '0A000';
		END IF;
		IF NEW.config_json = OLD.config_json AND NEW.description IS NOT DISTINCT FROM OLD.description
		   AND NEW.tags IS NOT DISTINCT FROM OLD.tags AND NEW.active = OLD.active THEN
			RETURN NULL;
		END IF;
		latest := OLD.version;
		asked := CASE WHEN NEW.version = OLD.version THEN NULL ELSE NEW.version END;
	ELSE
		SELECT version INTO latest FROM plpg.config_audit_log
		WHERE service_name = NEW.service_name ORDER BY id DESC LIMIT 1;
		asked := NEW.version;
	END IF;
	IF asked IS NULL THEN
		NEW.version := CASE WHEN latest IS NULL THEN '1.0.0' ELSE
			split_part(latest, '.', 1) || '.' || split_part(latest, '.', 2) || '.' ||
			(split_part(latest, '.', 3)::bigint + 1) END;
	ELSIF latest IS NOT NULL AND plpg.semver(asked) <= plpg.semver(latest) THEN
		RAISE EXCEPTION 'version % is not newer than %', asked, latest USING ERRCODE = 'HB002';
	ELSE
		PERFORM plpg.semver(asked);
	END IF;
	NEW.updated_at := now();
	NEW.updated_by := actor;
	IF TG_OP = 'INSERT' THEN
		NEW.created_at := now();
		NEW.created_by := actor;
	ELSE
		NEW.created_at := OLD.created_at;
		NEW.created_by := OLD.created_by;
	END IF;
	RETURN NEW;
END $$;

CREATE FUNCTION plpg.after_write() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
	rev bigint;
BEGIN
	INSERT INTO plpg.config_audit_log (service_name, config_json, version, previous_version,
									   action, changed_by, change_reason, db_user)
	VALUES (NEW.service_name, NEW.config_json, NEW.version,
			CASE WHEN TG_OP = 'UPDATE' THEN OLD.version END,
			CASE WHEN TG_OP = 'UPDATE' THEN 'updated' ELSE 'created' END,
			NEW.updated_by, NULL, session_user)
	RETURNING id INTO rev;
	INSERT INTO plpg.outbox (topic, service_name, ref_id) VALUES ('config', NEW.service_name, rev);
	RETURN NULL;
END $$;

CREATE TRIGGER before_write BEFORE INSERT OR UPDATE ON plpg.service_configs
	FOR EACH ROW EXECUTE FUNCTION plpg.before_write();
CREATE TRIGGER after_write AFTER INSERT OR UPDATE ON plpg.service_configs
	FOR EACH ROW EXECUTE FUNCTION plpg.after_write();

CREATE FUNCTION plpg.put_config(p_service text, p_config jsonb) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	v text;
BEGIN
	UPDATE plpg.service_configs SET config_json = p_config WHERE service_name = p_service
	RETURNING version INTO v;
	IF NOT FOUND THEN
		INSERT INTO plpg.service_configs (service_name, config_json, version)
		VALUES (p_service, p_config, NULL)
		ON CONFLICT (service_name) DO NOTHING RETURNING version INTO v;
	END IF;
	RETURN v;
END $$;
