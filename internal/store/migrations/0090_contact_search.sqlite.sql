-- A name index for the contact search on SQLite (issue 4: GET
-- /whatsapp_contacts?q[profile_name_cont]=…, p99 under 20 ms with 50,000
-- contacts). A substring match seeks no b-tree, and stepping through the
-- 50,000 entries of contacts_name costs about 10 ms of CPU in the pure-Go
-- SQLite, so the search scanned at the edge of the target. This migration
-- keeps, for every contact with a profile name, each distinct substring of
-- one, two and three characters of its lower-cased name ("gram"), so that:
--
-- - a fragment of one to three characters counts its contacts exactly from
--   the entries of one gram, without testing any name;
-- - a longer fragment tests only the contacts holding its rarest trigram.
--
-- internal/contacts/search.go (from ListContacts) picks the path;
-- PostgreSQL keeps the scan for now. Everything is kept by triggers, so
-- every writer of contacts (the API, the inbound webhook path, cascades from
-- projects and customers) keeps it in step in its own transaction.
--
-- Contacts are referenced by a key of their own (contact_search.key, an
-- INTEGER PRIMARY KEY, which VACUUM and dump/restore preserve), not by the
-- rowid of contacts, which they may renumber; projects likewise, so an
-- entry of contact_grams takes about 15 bytes instead of 80 with UUIDs.
-- Cost: a new named contact or a rename writes about 27 entries (0.7 ms of
-- CPU more); a message from a known contact, nothing. Figures in
-- docs/benchmarks.md, "Lists over a grown history".
--
-- contacts: the project's rows in contact_search, which the search weighs
-- against a fragment's matches to choose how to read the page.
CREATE TABLE contact_search_projects (
    key        INTEGER PRIMARY KEY,
    project_id TEXT NOT NULL UNIQUE,
    contacts   INTEGER NOT NULL DEFAULT 0
);
-- One row per contact with a profile name: what a longer fragment is tested
-- against, and the page order of the matches.
CREATE TABLE contact_search (
    key         INTEGER PRIMARY KEY,
    contact_id  TEXT NOT NULL UNIQUE,
    project_key INTEGER NOT NULL,
    created_at  BIGINT NOT NULL,
    name_lc     TEXT NOT NULL
);
CREATE TABLE contact_grams (
    project_key INTEGER NOT NULL,
    gram        TEXT NOT NULL,
    contact_key INTEGER NOT NULL,
    PRIMARY KEY (project_key, gram, contact_key)
) WITHOUT ROWID;
--
-- The grams of a name are substr(name, p + 1, n) for n in 1..3 and each
-- position p with p + n <= length(name) (characters, as Go's runes). SQLite
-- allows no WITH in a trigger, so the positions 0..length-1 are the keys of
-- json_each over '[0,0,…]', built as hex(zeroblob(length)) = '0000…' with
-- each '00' turned into '0,'. DISTINCT drops a gram repeated in one name.
INSERT INTO contact_search_projects (project_id) SELECT DISTINCT project_id FROM contacts WHERE profile_name_lc IS NOT NULL;
INSERT INTO contact_search (contact_id, project_key, created_at, name_lc) SELECT c.id, p.key, c.created_at, c.profile_name_lc FROM contacts c JOIN contact_search_projects p ON p.project_id = c.project_id WHERE c.profile_name_lc IS NOT NULL;
UPDATE contact_search_projects SET contacts = (SELECT COUNT(*) FROM contact_search WHERE project_key = contact_search_projects.key);
INSERT INTO contact_grams (project_key, gram, contact_key) SELECT DISTINCT s.project_key, substr(s.name_lc, j.key + 1, n.value), s.key FROM contact_search s, json_each('[1,2,3]') n, json_each('[' || rtrim(replace(hex(zeroblob(length(s.name_lc))), '00', '0,'), ',') || ']') j WHERE j.key + n.value <= length(s.name_lc);
--
CREATE TRIGGER contact_search_count_insert AFTER INSERT ON contact_search
BEGIN
    UPDATE contact_search_projects SET contacts = contacts + 1 WHERE key = new.project_key;
END;
CREATE TRIGGER contact_search_count_delete AFTER DELETE ON contact_search
BEGIN
    UPDATE contact_search_projects SET contacts = contacts - 1 WHERE key = old.project_key;
END;
--
-- A new contact with a name.
CREATE TRIGGER contacts_search_insert AFTER INSERT ON contacts WHEN new.profile_name_lc IS NOT NULL
BEGIN
    INSERT INTO contact_search_projects (project_id) SELECT new.project_id WHERE NOT EXISTS (SELECT 1 FROM contact_search_projects WHERE project_id = new.project_id);
    INSERT INTO contact_search (contact_id, project_key, created_at, name_lc) SELECT new.id, key, new.created_at, new.profile_name_lc FROM contact_search_projects WHERE project_id = new.project_id;
    INSERT INTO contact_grams (project_key, gram, contact_key) SELECT DISTINCT s.project_key, substr(new.profile_name_lc, j.key + 1, n.value), s.key FROM contact_search s, json_each('[1,2,3]') n, json_each('[' || rtrim(replace(hex(zeroblob(length(new.profile_name_lc))), '00', '0,'), ',') || ']') j WHERE s.contact_id = new.id AND j.key + n.value <= length(new.profile_name_lc);
END;
--
-- A renamed contact (the inbound path sets profile_name_lc on every
-- message; the WHEN clause makes an unchanged name cost nothing more).
CREATE TRIGGER contacts_search_update AFTER UPDATE OF profile_name_lc ON contacts WHEN old.profile_name_lc IS NOT new.profile_name_lc
BEGIN
    DELETE FROM contact_grams WHERE project_key = (SELECT project_key FROM contact_search WHERE contact_id = old.id) AND contact_key = (SELECT key FROM contact_search WHERE contact_id = old.id) AND gram IN (SELECT substr(old.profile_name_lc, j.key + 1, n.value) FROM json_each('[1,2,3]') n, json_each('[' || rtrim(replace(hex(zeroblob(length(old.profile_name_lc))), '00', '0,'), ',') || ']') j WHERE j.key + n.value <= length(old.profile_name_lc));
    DELETE FROM contact_search WHERE contact_id = old.id;
    INSERT INTO contact_search_projects (project_id) SELECT new.project_id WHERE new.profile_name_lc IS NOT NULL AND NOT EXISTS (SELECT 1 FROM contact_search_projects WHERE project_id = new.project_id);
    INSERT INTO contact_search (contact_id, project_key, created_at, name_lc) SELECT new.id, key, new.created_at, new.profile_name_lc FROM contact_search_projects WHERE project_id = new.project_id AND new.profile_name_lc IS NOT NULL;
    INSERT INTO contact_grams (project_key, gram, contact_key) SELECT DISTINCT s.project_key, substr(new.profile_name_lc, j.key + 1, n.value), s.key FROM contact_search s, json_each('[1,2,3]') n, json_each('[' || rtrim(replace(hex(zeroblob(length(new.profile_name_lc))), '00', '0,'), ',') || ']') j WHERE s.contact_id = new.id AND j.key + n.value <= length(new.profile_name_lc);
END;
--
-- A deleted contact, also by a cascade from its project or customer. The
-- gram entries are deleted by their whole key (an IN over the row value
-- would search the whole project's entries).
CREATE TRIGGER contacts_search_delete AFTER DELETE ON contacts WHEN old.profile_name_lc IS NOT NULL
BEGIN
    DELETE FROM contact_grams WHERE project_key = (SELECT project_key FROM contact_search WHERE contact_id = old.id) AND contact_key = (SELECT key FROM contact_search WHERE contact_id = old.id) AND gram IN (SELECT substr(old.profile_name_lc, j.key + 1, n.value) FROM json_each('[1,2,3]') n, json_each('[' || rtrim(replace(hex(zeroblob(length(old.profile_name_lc))), '00', '0,'), ',') || ']') j WHERE j.key + n.value <= length(old.profile_name_lc));
    DELETE FROM contact_search WHERE contact_id = old.id;
END;
