-- Relink without duplicates (see `relink.rs`): an Item linked to replace another one of the same user and
-- institution names it in `replaces_item_id` (Plaid's item_id; no foreign key: the replaced Item is deleted by the
-- merge, the pointer stays as its record). `relink_report` holds the merge's report as JSON once it ran: NULL means
-- "still to merge", which makes the merge run once. Accounts keep Plaid's `persistent_account_id`, the strongest
-- evidence that an account of the new Item is one of the old.
ALTER TABLE items ADD COLUMN replaces_item_id TEXT;
ALTER TABLE items ADD COLUMN relink_report TEXT;
ALTER TABLE accounts ADD COLUMN persistent_account_id TEXT;
CREATE INDEX items_replaces ON items(replaces_item_id) WHERE replaces_item_id IS NOT NULL;
