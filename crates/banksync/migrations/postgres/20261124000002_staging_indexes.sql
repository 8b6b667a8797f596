-- Committing a sync looks up the run's removals and pending→posted links; these partial indexes let it read just
-- those few rows instead of scanning every staged transaction.
CREATE INDEX sync_staging_removals ON sync_staging(run_id, transaction_id) WHERE op = 'remove';
CREATE INDEX sync_staging_pending_links ON sync_staging(run_id, pending_transaction_id, transaction_id)
    WHERE op = 'upsert' AND pending_transaction_id IS NOT NULL;
