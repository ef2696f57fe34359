-- Parley's schema. One file serves SQLite and PostgreSQL: types are the
-- portable subset (TEXT, BIGINT, INTEGER, BOOLEAN, DOUBLE PRECISION), ids are
-- UUID strings, times are BIGINT microseconds since the Unix epoch (UTC) so
-- both engines sort and compare them the same way, and JSON is TEXT.

CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE projects (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    description TEXT,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);

CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY,
    project_id   TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    name         TEXT NOT NULL DEFAULT '',
    prefix       TEXT NOT NULL,
    key_hash     TEXT NOT NULL UNIQUE,
    created_at   BIGINT NOT NULL,
    last_used_at BIGINT,
    revoked_at   BIGINT
);
CREATE INDEX api_keys_project ON api_keys(project_id);

CREATE TABLE users (
    id         TEXT PRIMARY KEY,
    project_id TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    email      TEXT NOT NULL,
    name       TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX users_project_email ON users(project_id, email);

CREATE TABLE customers (
    id                   TEXT PRIMARY KEY,
    project_id           TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    name                 TEXT NOT NULL,
    external_customer_id TEXT,
    created_at           BIGINT NOT NULL,
    updated_at           BIGINT NOT NULL
);
CREATE INDEX customers_project_created ON customers(project_id, created_at);
CREATE INDEX customers_project_external ON customers(project_id, external_customer_id);

CREATE TABLE setup_links (
    id                        TEXT PRIMARY KEY,
    project_id                TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    customer_id               TEXT NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
    token                     TEXT NOT NULL UNIQUE,
    status                    TEXT NOT NULL,
    expires_at                BIGINT NOT NULL,
    success_redirect_url      TEXT,
    failure_redirect_url      TEXT,
    allowed_connection_types  TEXT NOT NULL DEFAULT '[]',
    provision_phone_number    BOOLEAN NOT NULL DEFAULT FALSE,
    phone_number_area_code    TEXT,
    phone_number_country_isos TEXT NOT NULL DEFAULT '[]',
    theme_config              TEXT,
    language                  TEXT,
    created_at                BIGINT NOT NULL,
    updated_at                BIGINT NOT NULL
);
CREATE INDEX setup_links_customer ON setup_links(customer_id, created_at);

CREATE TABLE whatsapp_configs (
    id                              TEXT PRIMARY KEY,
    project_id                      TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    customer_id                     TEXT REFERENCES customers(id) ON DELETE CASCADE,
    name                            TEXT NOT NULL,
    kind                            TEXT NOT NULL,
    phone_number_id                 TEXT NOT NULL UNIQUE,
    business_account_id             TEXT,
    display_name                    TEXT,
    display_phone_number            TEXT,
    display_phone_number_normalized TEXT,
    access_token_enc                TEXT,
    webhook_verify_token_enc        TEXT,
    app_secret_enc                  TEXT,
    webhook_destination_url         TEXT,
    is_coexistence                  BOOLEAN NOT NULL DEFAULT FALSE,
    inbound_processing_enabled      BOOLEAN NOT NULL DEFAULT TRUE,
    calls_enabled                   BOOLEAN NOT NULL DEFAULT FALSE,
    webhook_verified_at             BIGINT,
    created_at                      BIGINT NOT NULL,
    updated_at                      BIGINT NOT NULL
);
CREATE INDEX whatsapp_configs_project ON whatsapp_configs(project_id, created_at);
CREATE INDEX whatsapp_configs_customer ON whatsapp_configs(customer_id);
CREATE INDEX whatsapp_configs_waba ON whatsapp_configs(business_account_id);

-- whatsapp_config_id NULL = a project-level webhook (lifecycle events only).
CREATE TABLE whatsapp_webhooks (
    id                    TEXT PRIMARY KEY,
    project_id            TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    whatsapp_config_id    TEXT REFERENCES whatsapp_configs(id) ON DELETE CASCADE,
    url                   TEXT NOT NULL,
    secret_key_enc        TEXT NOT NULL,
    events                TEXT NOT NULL DEFAULT '[]',
    active                BOOLEAN NOT NULL DEFAULT TRUE,
    headers               TEXT,
    buffer_enabled        BOOLEAN NOT NULL DEFAULT FALSE,
    buffer_window_seconds INTEGER NOT NULL DEFAULT 5,
    max_buffer_size       INTEGER NOT NULL DEFAULT 50,
    buffer_events         TEXT NOT NULL DEFAULT '["whatsapp.message.received"]',
    inactivity_minutes    INTEGER NOT NULL DEFAULT 60,
    retry_max_attempts    INTEGER NOT NULL DEFAULT 4,
    retry_backoff_seconds INTEGER NOT NULL DEFAULT 10,
    retry_custom          BOOLEAN NOT NULL DEFAULT FALSE,
    payload_version       TEXT NOT NULL DEFAULT 'v2',
    kind                  TEXT NOT NULL DEFAULT 'kapso',
    failing_since         BIGINT,
    paused_at             BIGINT,
    paused_reason         TEXT,
    created_at            BIGINT NOT NULL,
    updated_at            BIGINT NOT NULL
);
CREATE INDEX whatsapp_webhooks_config ON whatsapp_webhooks(whatsapp_config_id, created_at);
CREATE INDEX whatsapp_webhooks_project ON whatsapp_webhooks(project_id, created_at);

CREATE TABLE contacts (
    id           TEXT PRIMARY KEY,
    project_id   TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    customer_id  TEXT REFERENCES customers(id) ON DELETE CASCADE,
    wa_id        TEXT NOT NULL,
    profile_name TEXT,
    -- lower-cased profile name, for case-insensitive search on both engines
    profile_name_lc TEXT,
    metadata     TEXT NOT NULL DEFAULT '{}',
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);
CREATE UNIQUE INDEX contacts_project_wa_id ON contacts(project_id, wa_id);
CREATE INDEX contacts_project_created ON contacts(project_id, created_at);
CREATE INDEX contacts_customer ON contacts(customer_id);

CREATE TABLE contact_notes (
    id         TEXT PRIMARY KEY,
    project_id TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    contact_id TEXT NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
    name       TEXT,
    content    TEXT NOT NULL,
    metadata   TEXT NOT NULL DEFAULT '{}',
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX contact_notes_contact ON contact_notes(contact_id, created_at);

CREATE TABLE conversations (
    id                 TEXT PRIMARY KEY,
    project_id         TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    whatsapp_config_id TEXT NOT NULL REFERENCES whatsapp_configs(id) ON DELETE CASCADE,
    contact_id         TEXT REFERENCES contacts(id) ON DELETE SET NULL,
    phone_number       TEXT NOT NULL,
    status             TEXT NOT NULL,
    metadata           TEXT NOT NULL DEFAULT '{}',
    messages_count     INTEGER NOT NULL DEFAULT 0,
    -- last per-conversation sequence number handed to a message (ordering)
    last_seq           BIGINT NOT NULL DEFAULT 0,
    last_message_id    TEXT,
    last_message_type  TEXT,
    last_message_text  TEXT,
    last_message_at    BIGINT,
    last_inbound_at    BIGINT,
    last_outbound_at   BIGINT,
    last_active_at     BIGINT NOT NULL,
    ended_at           BIGINT,
    created_at         BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL
);
-- At most one active conversation per (config, customer phone).
CREATE UNIQUE INDEX conversations_one_active ON conversations(whatsapp_config_id, phone_number) WHERE status = 'active';
CREATE INDEX conversations_project_status_active ON conversations(project_id, status, last_active_at);
CREATE INDEX conversations_project_active ON conversations(project_id, last_active_at);
CREATE INDEX conversations_config_phone ON conversations(whatsapp_config_id, phone_number, last_active_at);
CREATE INDEX conversations_project_phone ON conversations(project_id, phone_number, last_active_at);

CREATE TABLE messages (
    id                  TEXT PRIMARY KEY,
    project_id          TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    conversation_id     TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    whatsapp_config_id  TEXT NOT NULL REFERENCES whatsapp_configs(id) ON DELETE CASCADE,
    phone_number        TEXT NOT NULL,
    direction           TEXT NOT NULL,
    origin              TEXT NOT NULL DEFAULT 'cloud_api',
    message_type        TEXT NOT NULL,
    content             TEXT,
    status              TEXT NOT NULL,
    processing_status   TEXT NOT NULL DEFAULT 'pending',
    whatsapp_message_id TEXT,
    seq                 BIGINT NOT NULL DEFAULT 0,
    metadata            TEXT NOT NULL DEFAULT '{}',
    message_type_data   TEXT,
    -- the Meta message object (inbound) or the Graph request body (outbound)
    meta_payload        TEXT,
    -- chronological raw Meta status objects
    statuses            TEXT NOT NULL DEFAULT '[]',
    reply_to_id         TEXT,
    media_id            TEXT,
    media_mime_type     TEXT,
    media_filename      TEXT,
    media_sha256        TEXT,
    media_size          BIGINT,
    media_path          TEXT,
    media_url_external  TEXT,
    error_code          INTEGER,
    error_title         TEXT,
    error_message       TEXT,
    sent_at             BIGINT,
    delivered_at        BIGINT,
    read_at             BIGINT,
    failed_at           BIGINT,
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL
);
CREATE UNIQUE INDEX messages_wamid ON messages(whatsapp_config_id, whatsapp_message_id) WHERE whatsapp_message_id IS NOT NULL;
CREATE INDEX messages_conversation_created ON messages(conversation_id, created_at, id);
CREATE INDEX messages_project_created ON messages(project_id, created_at);

-- Statuses Meta reported before Parley knew the wamid (the send job had not
-- recorded it yet). Applied when the wamid is stored.
CREATE TABLE pending_statuses (
    id                  TEXT PRIMARY KEY,
    whatsapp_config_id  TEXT NOT NULL REFERENCES whatsapp_configs(id) ON DELETE CASCADE,
    whatsapp_message_id TEXT NOT NULL,
    payload             TEXT NOT NULL,
    created_at          BIGINT NOT NULL
);
CREATE INDEX pending_statuses_wamid ON pending_statuses(whatsapp_config_id, whatsapp_message_id);

CREATE TABLE conversation_assignments (
    id                 TEXT PRIMARY KEY,
    project_id         TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    conversation_id    TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    user_id            TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    active             BOOLEAN NOT NULL DEFAULT TRUE,
    notes              TEXT,
    created_by_user_id TEXT,
    created_at         BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL
);
CREATE UNIQUE INDEX conversation_assignments_one_active ON conversation_assignments(conversation_id) WHERE active;
CREATE INDEX conversation_assignments_conversation ON conversation_assignments(conversation_id, created_at);

CREATE TABLE templates (
    id                  TEXT PRIMARY KEY,
    project_id          TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    name                TEXT NOT NULL,
    language_code       TEXT NOT NULL,
    category            TEXT NOT NULL,
    status              TEXT NOT NULL,
    content             TEXT,
    parameter_count     INTEGER NOT NULL DEFAULT 0,
    parameter_format    TEXT NOT NULL DEFAULT 'POSITIONAL',
    business_account_id TEXT,
    components          TEXT NOT NULL DEFAULT '[]',
    metadata            TEXT NOT NULL DEFAULT '{}',
    meta_template_id    TEXT,
    meta_status         TEXT,
    rejected_reason     TEXT,
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL
);
CREATE UNIQUE INDEX templates_unique_name ON templates(project_id, COALESCE(business_account_id, ''), name, language_code);
CREATE INDEX templates_project_created ON templates(project_id, created_at);
CREATE INDEX templates_meta_id ON templates(meta_template_id);

CREATE TABLE template_configs (
    template_id        TEXT NOT NULL REFERENCES templates(id) ON DELETE CASCADE,
    whatsapp_config_id TEXT NOT NULL REFERENCES whatsapp_configs(id) ON DELETE CASCADE,
    PRIMARY KEY (template_id, whatsapp_config_id)
);
CREATE INDEX template_configs_config ON template_configs(whatsapp_config_id);

CREATE TABLE template_sync_runs (
    id                           TEXT PRIMARY KEY,
    project_id                   TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    business_account_id          TEXT NOT NULL,
    anchor_whatsapp_config_id    TEXT,
    status                       TEXT NOT NULL,
    templates_synced             INTEGER NOT NULL DEFAULT 0,
    templates_created            INTEGER NOT NULL DEFAULT 0,
    templates_updated            INTEGER NOT NULL DEFAULT 0,
    templates_removed            INTEGER NOT NULL DEFAULT 0,
    job_id                       TEXT,
    error_class                  TEXT,
    error_message                TEXT,
    results                      TEXT NOT NULL DEFAULT '{}',
    affected_whatsapp_config_ids TEXT NOT NULL DEFAULT '[]',
    queued_at                    BIGINT NOT NULL,
    started_at                   BIGINT,
    finished_at                  BIGINT,
    created_at                   BIGINT NOT NULL,
    updated_at                   BIGINT NOT NULL
);
CREATE INDEX template_sync_runs_waba ON template_sync_runs(project_id, business_account_id, created_at);

CREATE TABLE calls (
    id                       TEXT PRIMARY KEY,
    project_id               TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    whatsapp_config_id       TEXT NOT NULL REFERENCES whatsapp_configs(id) ON DELETE CASCADE,
    call_id                  TEXT NOT NULL,
    direction                TEXT,
    status                   TEXT,
    duration_seconds         INTEGER,
    started_at               BIGINT,
    ended_at                 BIGINT,
    session_started_at       BIGINT,
    user_wa_id               TEXT,
    contact_id               TEXT REFERENCES contacts(id) ON DELETE SET NULL,
    conversation_id          TEXT REFERENCES conversations(id) ON DELETE SET NULL,
    created_at               BIGINT NOT NULL,
    updated_at               BIGINT NOT NULL
);
CREATE UNIQUE INDEX calls_call_id ON calls(whatsapp_config_id, call_id);
CREATE INDEX calls_project_created ON calls(project_id, created_at);

CREATE TABLE call_permissions (
    id                    TEXT PRIMARY KEY,
    project_id            TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    contact_id            TEXT NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
    whatsapp_config_id    TEXT NOT NULL REFERENCES whatsapp_configs(id) ON DELETE CASCADE,
    status                TEXT NOT NULL,
    source                TEXT,
    expires_at            BIGINT,
    last_event_message_id TEXT,
    last_event_at         BIGINT,
    created_at            BIGINT NOT NULL,
    updated_at            BIGINT NOT NULL
);
CREATE UNIQUE INDEX call_permissions_pair ON call_permissions(contact_id, whatsapp_config_id);

-- Bodies of Meta webhooks already processed, by SHA-256, so a replayed
-- delivery is acknowledged without being applied twice.
CREATE TABLE meta_webhook_receipts (
    body_sha256 TEXT PRIMARY KEY,
    received_at BIGINT NOT NULL
);
CREATE INDEX meta_webhook_receipts_received ON meta_webhook_receipts(received_at);

-- Events: written in the same transaction as the change that caused them.
CREATE TABLE events (
    id                 TEXT PRIMARY KEY,
    project_id         TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    whatsapp_config_id TEXT,
    conversation_id    TEXT,
    type               TEXT NOT NULL,
    -- per-conversation sequence for ordered events (received/sent), else 0
    seq                BIGINT NOT NULL DEFAULT 0,
    payload_v2         TEXT NOT NULL,
    payload_v1         TEXT NOT NULL,
    created_at         BIGINT NOT NULL
);
CREATE INDEX events_project_created ON events(project_id, created_at);

-- One delivery per (event, webhook); a batch delivery groups several events.
CREATE TABLE deliveries (
    id              TEXT PRIMARY KEY,
    project_id      TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    webhook_id      TEXT NOT NULL REFERENCES whatsapp_webhooks(id) ON DELETE CASCADE,
    event_id        TEXT REFERENCES events(id) ON DELETE CASCADE,
    event_type      TEXT NOT NULL,
    conversation_id TEXT,
    seq             BIGINT NOT NULL DEFAULT 0,
    ordered         BOOLEAN NOT NULL DEFAULT FALSE,
    -- buffered: waiting in a conversation buffer; batch_id set once flushed
    buffered        BOOLEAN NOT NULL DEFAULT FALSE,
    batch_id        TEXT,
    is_batch        BOOLEAN NOT NULL DEFAULT FALSE,
    batch_body      TEXT,
    status          TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    max_attempts    INTEGER NOT NULL DEFAULT 4,
    idempotency_key TEXT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    locked_by       TEXT,
    locked_until    BIGINT,
    last_attempt_at BIGINT,
    last_status_code INTEGER,
    last_error      TEXT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
CREATE INDEX deliveries_due ON deliveries(status, next_attempt_at);
CREATE INDEX deliveries_webhook_created ON deliveries(webhook_id, created_at);
CREATE INDEX deliveries_ordering ON deliveries(webhook_id, conversation_id, seq) WHERE ordered;
CREATE INDEX deliveries_batch ON deliveries(batch_id);

CREATE TABLE delivery_attempts (
    id               TEXT PRIMARY KEY,
    delivery_id      TEXT NOT NULL REFERENCES deliveries(id) ON DELETE CASCADE,
    number           INTEGER NOT NULL,
    started_at       BIGINT NOT NULL,
    status_code      INTEGER,
    latency_ms       BIGINT NOT NULL,
    error            TEXT,
    response_snippet TEXT
);
CREATE INDEX delivery_attempts_delivery ON delivery_attempts(delivery_id, number);

-- Durable background work and timers. unique_key dedupes timers so each
-- fires once across processes.
CREATE TABLE jobs (
    id           TEXT PRIMARY KEY,
    kind         TEXT NOT NULL,
    unique_key   TEXT UNIQUE,
    payload      TEXT NOT NULL DEFAULT '{}',
    run_at       BIGINT NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL DEFAULT 10,
    locked_by    TEXT,
    locked_until BIGINT,
    last_error   TEXT,
    created_at   BIGINT NOT NULL
);
CREATE INDEX jobs_due ON jobs(run_at);
