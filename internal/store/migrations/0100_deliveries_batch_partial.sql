-- Only flushed buffer items carry a batch_id, yet every delivery had an
-- entry in deliveries_batch, written at insert and, on PostgreSQL, again at
-- each status change (an update of an indexed column writes a new entry in
-- every index). The lookups are all batch_id = ?, which a partial index
-- serves.
DROP INDEX IF EXISTS deliveries_batch;
CREATE INDEX IF NOT EXISTS deliveries_batch ON deliveries(batch_id) WHERE batch_id IS NOT NULL;
