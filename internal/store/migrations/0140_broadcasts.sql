-- Kapso's WhatsApp broadcasts: one approved template sent from one config to
-- a list of recipients. A broadcast goes draft -> sending -> completed or
-- failed. Its counters are not stored: they are counted from the recipients
-- and the statuses of their messages when the broadcast is read.
CREATE TABLE broadcasts (
    id                 TEXT PRIMARY KEY,
    project_id         TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    whatsapp_config_id TEXT NOT NULL REFERENCES whatsapp_configs(id) ON DELETE CASCADE,
    template_id        TEXT NOT NULL REFERENCES templates(id) ON DELETE CASCADE,
    name               TEXT NOT NULL,
    status             TEXT NOT NULL,
    started_at         BIGINT,
    completed_at       BIGINT,
    created_at         BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL
);
CREATE INDEX broadcasts_project_created ON broadcasts(project_id, created_at, id);
CREATE INDEX broadcasts_config ON broadcasts(whatsapp_config_id);
CREATE INDEX broadcasts_template ON broadcasts(template_id);
--
-- A recipient is 'pending' until the send job hands it over: then it is
-- 'queued' with the id of its outbound message (no foreign key: a deleted
-- message must not make the job send again), or 'failed' when no message
-- could be built (error_message says why). The job claims pending
-- recipients in id order and records each message in the transaction that
-- creates it, so a job that runs again never sends twice.
CREATE TABLE broadcast_recipients (
    id                  TEXT PRIMARY KEY,
    broadcast_id        TEXT NOT NULL REFERENCES broadcasts(id) ON DELETE CASCADE,
    phone_number        TEXT NOT NULL,
    template_parameters TEXT,
    status              TEXT NOT NULL,
    message_id          TEXT,
    error_message       TEXT,
    failed_at           BIGINT,
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL
);
CREATE UNIQUE INDEX broadcast_recipients_phone ON broadcast_recipients(broadcast_id, phone_number);
CREATE INDEX broadcast_recipients_status ON broadcast_recipients(broadcast_id, status, id);
CREATE INDEX broadcast_recipients_list ON broadcast_recipients(broadcast_id, id);
