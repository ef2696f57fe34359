-- The two phone indexes of conversations ended with last_active_at, so
-- every message, which moves its conversation's last_active_at, rewrote an
-- entry in each: on SQLite two of the ~125 pages a group commit of inbound
-- webhooks wrote, per webhook (issue 3). A phone number has a handful of
-- conversations, so a phone-filtered list sorts them after the lookup; on
-- SQLite, whose planner has no statistics, those queries name the index
-- (INDEXED BY) so it does not walk the project's conversations in
-- last_active_at order instead. The indexes now change only when a
-- conversation is created or deleted.
DROP INDEX IF EXISTS conversations_config_phone;
DROP INDEX IF EXISTS conversations_project_phone;
CREATE INDEX conversations_config_phone ON conversations(whatsapp_config_id, phone_number);
CREATE INDEX conversations_project_phone ON conversations(project_id, phone_number);
