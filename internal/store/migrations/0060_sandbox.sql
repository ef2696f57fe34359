-- The sandbox simulator's own state: the simulated WhatsApp Business
-- Accounts (webhook subscription, seeding), their message templates and the
-- media uploaded to sandbox phone numbers. Meta ids are numeric strings.

CREATE TABLE sandbox_wabas (
    waba_id    TEXT PRIMARY KEY,
    subscribed BOOLEAN NOT NULL DEFAULT TRUE,
    created_at BIGINT NOT NULL
);

CREATE TABLE sandbox_templates (
    id               TEXT PRIMARY KEY,
    waba_id          TEXT NOT NULL,
    name             TEXT NOT NULL,
    language         TEXT NOT NULL,
    category         TEXT NOT NULL,
    status           TEXT NOT NULL,
    parameter_format TEXT NOT NULL DEFAULT 'POSITIONAL',
    components       TEXT NOT NULL DEFAULT '[]',
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);
CREATE UNIQUE INDEX sandbox_templates_name ON sandbox_templates(waba_id, name, language);

-- path is relative to the media directory (content-addressed by sha256);
-- external_url is set instead for media given by link.
CREATE TABLE sandbox_media (
    id              TEXT PRIMARY KEY,
    phone_number_id TEXT NOT NULL,
    mime_type       TEXT NOT NULL,
    sha256          TEXT NOT NULL DEFAULT '',
    file_size       BIGINT NOT NULL DEFAULT 0,
    filename        TEXT,
    path            TEXT,
    external_url    TEXT,
    created_at      BIGINT NOT NULL
);
