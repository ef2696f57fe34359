-- Outbound messages still waiting for their send job, by conversation and
-- sequence. Small (only messages in flight) and read often: a send waits
-- for the earlier sends of its conversation, and an ordered delivery
-- (whatsapp.message.received or .sent) waits for the sends before it, whose
-- whatsapp.message.sent does not exist yet (internal/delivery claim).
CREATE INDEX IF NOT EXISTS messages_unsent ON messages(conversation_id, seq) WHERE direction = 'outbound' AND status = 'pending';
