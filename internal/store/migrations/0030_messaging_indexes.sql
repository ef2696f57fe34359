-- Conversation lists are ordered by last_active_at, newest first, and page
-- with OFFSET: including id makes the paging subquery an index-only scan, so
-- deep pages of 100k conversations stay cheap. The (project_id,
-- last_active_at) index is superseded by the covering one.
DROP INDEX conversations_project_active;
CREATE INDEX conversations_project_active_id ON conversations(project_id, last_active_at, id);
CREATE INDEX conversations_config_active ON conversations(whatsapp_config_id, last_active_at, id);
