-- The deliveries of all of a project's webhooks, newest first (Kapso's
-- GET /platform/v1/webhook_deliveries, cursor-paged by (created_at, id)).
CREATE INDEX deliveries_project_created ON deliveries(project_id, created_at, id);
