-- Retention (crate::retention) deletes webhook deliveries and sync runs by age in small batches: each batch must
-- find its oldest rows through an index, not a scan. plaid_calls already has plaid_calls_at.
CREATE INDEX webhook_events_received ON webhook_events(received_at);
CREATE INDEX sync_runs_started ON sync_runs(started_at);
