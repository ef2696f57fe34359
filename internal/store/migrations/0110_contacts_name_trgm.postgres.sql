-- PostgreSQL: a trigram index for the contact search by name fragment
-- (issue 4: p99 under 20 ms with 50,000 contacts; the scan of
-- contacts_name took 25-36 ms for rare fragments, which read every entry).
-- internal/contacts writes the LIKE pattern into the statement, so a
-- fragment of three characters or more is planned to read this index and a
-- shorter one (no trigram) keeps the scan.
--
-- pg_trgm ships with PostgreSQL (contrib) and is a trusted extension, but a
-- server may lack contrib or the role the right to create it: then nothing
-- is created, a notice says so, and the search keeps scanning, with the
-- same results. The extension goes to the public schema (never to a
-- per-test schema, whose drop would take the index of every schema with
-- it); the operator class is named with the schema the extension is in.
DO $$ BEGIN CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public; EXCEPTION WHEN OTHERS THEN RAISE NOTICE 'parley: pg_trgm is not available (%): contact name search scans', SQLERRM; END $$;
DO $$ DECLARE s text; BEGIN SELECT n.nspname INTO s FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'pg_trgm'; IF s IS NOT NULL THEN EXECUTE format('CREATE INDEX IF NOT EXISTS contacts_name_trgm ON contacts USING gin (profile_name_lc %I.gin_trgm_ops)', s); END IF; END $$;
