-- At most one active (queued or running) template sync per project and WABA,
-- so two concurrent POST /whatsapp_templates/sync requests cannot both
-- enqueue a run: the loser reads and returns the winner's run.
CREATE UNIQUE INDEX template_sync_runs_active ON template_sync_runs(project_id, business_account_id) WHERE status IN ('queued', 'running');
CREATE INDEX template_sync_runs_project_created ON template_sync_runs(project_id, created_at);
