-- An Item's first sync writes its pages straight into `transactions` instead of staging them (the Item has no rows
-- to keep consistent, and the history can be large): `initial_sync_run` names the run doing so, and while it is set
-- the Item's transactions are hidden from every reader. The run's commit clears it together with storing the
-- cursor, so the whole history appears at once. A run that died leaves it set; the next sync takes it over and
-- deletes the hidden rows first.
ALTER TABLE items ADD COLUMN initial_sync_run TEXT;
