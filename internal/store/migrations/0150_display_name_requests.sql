-- Display-name requests (Kapso's /whatsapp_configs/{id}/display_name_requests):
-- a new display name submitted to Meta for a config, and its review.
-- phone_number_id is the number the request was made for: a config that
-- changes number leaves its active request behind (cancelled).
-- meta_status is Meta's last new_name_status seen, kept for diagnosis.
CREATE TABLE display_name_requests (
    id                     TEXT PRIMARY KEY,
    project_id             TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    whatsapp_config_id     TEXT NOT NULL REFERENCES whatsapp_configs(id) ON DELETE CASCADE,
    phone_number_id        TEXT NOT NULL,
    requested_display_name TEXT NOT NULL,
    previous_display_name  TEXT,
    status                 TEXT NOT NULL,
    meta_status            TEXT,
    meta_error_code        INTEGER,
    meta_error_subcode     INTEGER,
    meta_error_type        TEXT,
    meta_error_message     TEXT,
    submitted_at           BIGINT NOT NULL,
    reviewed_at            BIGINT,
    applied_at             BIGINT,
    created_at             BIGINT NOT NULL,
    updated_at             BIGINT NOT NULL
);
CREATE INDEX display_name_requests_config_created ON display_name_requests(whatsapp_config_id, created_at);
-- At most one active (submitted or pending_review) request per config, even
-- with two requests racing in different processes.
CREATE UNIQUE INDEX display_name_requests_active ON display_name_requests(whatsapp_config_id) WHERE status IN ('submitted', 'pending_review');
