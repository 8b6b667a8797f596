-- Journal account names chosen by `banksync export` (Beancount/Ledger), kept so an account's name never changes
-- between runs, even when the bank renames the account or the mask changes (an `--append`ed journal would
-- otherwise fork the account). Keyed on Plaid's persistent_account_id when there is one, so a relinked account
-- keeps its name; else on the account_id. No foreign key: the name outlives a relink's deleted Item.
CREATE TABLE account_export_names (
    user_id     TEXT NOT NULL,
    account_key TEXT NOT NULL,
    name        TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    PRIMARY KEY (user_id, account_key),
    UNIQUE (user_id, name)
);
