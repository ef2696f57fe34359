-- Indexes for lists over a grown history (issue 4; measured with
-- cmd/parley-bench-lists, figures in docs/benchmarks-lists.md).
--
-- Contacts page by (created_at, id), newest first, and a name search is a
-- substring match that no b-tree can seek, so every entry of the project is
-- tested. Carrying id and profile_name_lc in the paging index lets the page
-- query test them from the index alone, without reading the table, and stop
-- once the page is full. It supersedes the (project_id, created_at) index,
-- a prefix of it.
DROP INDEX IF EXISTS contacts_project_created;
CREATE INDEX IF NOT EXISTS contacts_list ON contacts(project_id, created_at, id, profile_name_lc);
-- The COUNT of a name search reads the narrowest index that holds the name:
-- a quarter cheaper than contacts_list on SQLite, and on PostgreSQL an
-- index-only scan of it takes half the time of a sequential scan of the
-- table.
CREATE INDEX IF NOT EXISTS contacts_name ON contacts(project_id, profile_name_lc);
--
-- A conversation list filtered by status counts every conversation with
-- that status for meta.total_count. (project_id, status) is the narrowest
-- index that answers the COUNT alone: on PostgreSQL its few distinct keys
-- are deduplicated into posting lists, a tenth of the pages of the
-- (project_id, status, last_active_at) index, and on SQLite its entries are
-- the shortest to step through. Pages keep using the (project_id,
-- last_active_at, id) and (project_id, status, last_active_at) indexes.
CREATE INDEX IF NOT EXISTS conversations_project_status ON conversations(project_id, status);
