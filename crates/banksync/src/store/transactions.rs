//! Reading and editing stored transactions (writing them is `sync_write`). Every reader hides the rows of an Item
//! whose initial sync is still being written (`items.initial_sync_run`, see `sync_write`).

use chrono::NaiveDate;

use super::codec::{self, TxnCursor};
use super::exec::Sql;
use super::raw_json;
use super::search::{self, Days, SearchPlan};
use super::transaction_row::{TxnRow, select_columns};
use super::{Backend, Result, Store, one_row};
use crate::domain::{Page, Transaction, TransactionFilter, TransactionId, UserFieldsPatch, UserId};

/// One transaction of `backend`'s store ($1 id, $2 user).
fn get_transaction_sql(backend: Backend) -> String {
    format!(
        "SELECT {} FROM transactions t JOIN items i ON i.id = t.item_ref \
        WHERE t.transaction_id = $1 AND t.user_id = $2 AND t.deleted_at IS NULL AND i.initial_sync_run IS NULL",
        select_columns(backend)
    )
}
const GET_TRANSACTION_RAW: &str = "SELECT t.raw, t.raw_zstd FROM transactions t JOIN items i ON i.id = t.item_ref \
    WHERE t.transaction_id = $1 AND t.user_id = $2 AND t.deleted_at IS NULL AND i.initial_sync_run IS NULL";
/// A transaction's effective category (the spending summary's, and the index `transactions_effective_category_time`'s
/// expression: keep the three identical).
pub(super) const EFFECTIVE_CATEGORY: &str = "COALESCE(t.user_category, t.pfc_primary, 'UNCATEGORIZED')";

/// $3/$5: whether to set the note/category; $4/$6 the new values.
const PATCH_TRANSACTION: &str = "UPDATE transactions SET \
    user_note = CASE WHEN $3 THEN $4 ELSE user_note END, \
    user_category = CASE WHEN $5 THEN $6 ELSE user_category END, updated_at = $7 \
    WHERE transaction_id = $1 AND user_id = $2 AND deleted_at IS NULL \
    AND NOT EXISTS (SELECT 1 FROM items i WHERE i.id = transactions.item_ref AND i.initial_sync_run IS NOT NULL)";

/// The user's transactions every reader may show (not deleted, and not of an Item whose initial sync is still being
/// written), narrowed by the filter's account, Item and date range. Each reader adds its own conditions, order and
/// limit.
pub(super) fn select_visible<'a>(backend: Backend, user_id: &'a UserId, f: &'a TransactionFilter) -> Sql<'a> {
    select_visible_from(backend, user_id, f, "transactions t")
}

/// [`select_visible`] from `table` (the transactions table aliased `t`, with SQLite's index hints if any).
fn select_visible_from<'a>(backend: Backend, user_id: &'a UserId, f: &'a TransactionFilter, table: &str) -> Sql<'a> {
    let mut select = Sql::new("");
    push_select_visible(&mut select, user_id, f, table, select_columns(backend));
    select
}

/// Appends [`select_visible_from`] of other `columns` to `select`.
fn push_select_visible<'a>(
    select: &mut Sql<'a>,
    user_id: &'a UserId,
    f: &'a TransactionFilter,
    table: &str,
    columns: &str,
) {
    select.push(&format!("SELECT {columns} FROM {table} JOIN items i ON i.id = t.item_ref WHERE t.user_id = "));
    select.push_bind(user_id).push(" AND t.deleted_at IS NULL AND i.initial_sync_run IS NULL");
    if let Some(account_id) = &f.account_id {
        select.push(" AND t.account_id = ").push_bind(account_id);
    }
    if let Some(item_id) = &f.item_id {
        select.push(" AND i.item_id = ").push_bind(item_id);
    }
    if let Some(start) = f.start {
        select.push(" AND t.date >= ").push_bind(codec::date(start));
    }
    if let Some(end) = f.end {
        select.push(" AND t.date <= ").push_bind(codec::date(end));
    }
}

/// The most bands an amount range reads one by one (see [`AmountPlan::EachBand`]). 100 to 1,000 is 91 bands.
const MAX_BAND_ARMS: usize = 100;

/// More rows in an amount range than this (over more than [`MAX_BAND_ARMS`] bands) and SQLite walks the time index
/// instead of sorting them all. Sorting 20,000 index entries takes ~4 ms; walking, at 1,000,000 rows, reads at most
/// 5,000 rows to fill a page (fewer, the denser the range).
const DENSE_AMOUNTS: i64 = 20_000;

/// The bands from $2 to $3 that hold any of user $1's transactions (of hidden Items too: a band costs only an index
/// seek), at most $4 of them: a loose scan of the amount index, one `min` a band.
const PRESENT_BANDS: &str = "WITH RECURSIVE present(b) AS (\
    SELECT (SELECT min(amount_band) FROM transactions \
        WHERE user_id = $1 AND deleted_at IS NULL AND amount_band BETWEEN $2 AND $3) \
    UNION ALL SELECT (SELECT min(amount_band) FROM transactions \
        WHERE user_id = $1 AND deleted_at IS NULL AND amount_band > present.b AND amount_band <= $3) \
    FROM present WHERE present.b IS NOT NULL) \
    SELECT b FROM present WHERE b IS NOT NULL LIMIT $4";

/// How a list with an amount range reads it, chosen per query (`None` without one).
#[derive(Debug, Clone, PartialEq, Eq)]
enum AmountPlan {
    /// From the amount index (`transactions_amount`: the band, then the list's order), each band newest first and
    /// stopped at the page's end, then merged: a band costs a page at most (more only where the range cuts it).
    EachBand(Vec<i64>),
    /// Every index entry of the bands from the first to the last, sorted: few rows over many bands, or a bounded
    /// range with a search (which each band would find anew).
    BandRange(i64, i64),
    /// The time index newest first, testing each row's amount: many rows over many bands.
    Walk,
}

/// How [`Store::list_transactions`] finds a filter's rows.
#[derive(Debug, Clone, Default)]
struct Plan {
    search: Option<SearchPlan>,
    amounts: Option<AmountPlan>,
}

impl Store {
    /// Newest first (posted `date`, then `datetime`, then `transaction_id`), a page at a time; `Page::next_cursor`
    /// continues it.
    pub async fn list_transactions(&self, user_id: &UserId, f: &TransactionFilter) -> Result<Page<Transaction>> {
        let limit = f.effective_limit();
        let mut plan = self.plan(user_id, f).await?;
        let mut rows = match plan.search {
            Some(SearchPlan::FollowMatches { take, prefix }) => {
                self.follow_matches(user_id, f, &mut plan, take, prefix).await?
            }
            Some(SearchPlan::WalkIndex(_)) => {
                let latest = self.latest_posted_day(user_id).await?;
                self.walk_windows(user_id, f, &mut plan, search_windows(f, latest)?, Vec::new()).await?
            }
            _ => self.reader.fetch_all(&self.list_select(user_id, f, &plan)?).await?,
        };
        let more = rows.len() > limit as usize;
        rows.truncate(limit as usize);
        let next_cursor = match (more, rows.last()) {
            (true, Some(last)) => Some(last.cursor().encode()),
            _ => None,
        };
        let items = rows.into_iter().map(TryInto::try_into).collect::<Result<_>>()?;
        Ok(Page { items, next_cursor })
    }

    /// A search read from its newest matches on ([`SearchPlan::FollowMatches`]). When the newest `take` of them
    /// held too few of the rows the filter shows (a filter that hides most matches: one account of many, another
    /// user's rows), the rest is walked window by window from the oldest one's day.
    async fn follow_matches(
        &self,
        user_id: &UserId,
        f: &TransactionFilter,
        plan: &mut Plan,
        take: i64,
        prefix: bool,
    ) -> Result<Vec<TxnRow>> {
        let followed: Vec<FollowedRow> = self.reader.fetch_all(&self.list_select(user_id, f, plan)?).await?;
        let (read, oldest_day) = match followed.first() {
            Some(row) => (row.matches_read, row.oldest_match_day),
            None => {
                let q = f.q.as_deref().unwrap_or_default();
                self.reader.fetch_one(&search::newest_matches_read(q, prefix, search_days(f)?, take)).await?
            }
        };
        let rows: Vec<TxnRow> = followed.into_iter().map(|r| r.row).collect();
        if rows.len() > f.effective_limit() as usize || read < take {
            return Ok(rows);
        }
        // `rows` holds every row newer than the oldest match's day; the walk starts on that day.
        let windows = match oldest_day.and_then(search::key_day) {
            Some(day) => Days::windows(Some(day), day, f.start),
            None => search_windows(f, None)?,
        };
        self.walk_windows(user_id, f, plan, windows, rows).await
    }

    /// A dense search's rows window by window ([`SearchPlan::WalkIndex`]), newest first, after `rows`, until the
    /// page and one more row are found: each window's rows all come before the next one's in the list's order.
    async fn walk_windows(
        &self,
        user_id: &UserId,
        f: &TransactionFilter,
        plan: &mut Plan,
        windows: Vec<Days>,
        mut rows: Vec<TxnRow>,
    ) -> Result<Vec<TxnRow>> {
        for days in windows {
            plan.search = Some(SearchPlan::WalkIndex(days));
            rows.extend(self.reader.fetch_all::<TxnRow>(&self.list_select(user_id, f, plan)?).await?);
            if rows.len() > f.effective_limit() as usize {
                break;
            }
        }
        Ok(rows)
    }

    /// The newest posted day among the user's rows (any Item, removed ones too: an upper bound is all a search's
    /// windows need), found at the end of the user's time index.
    async fn latest_posted_day(&self, user_id: &UserId) -> Result<Option<NaiveDate>> {
        let newest = Sql::new(LATEST_POSTED_DAY).bind(user_id);
        let day: Option<(String,)> = self.reader.fetch_optional(&newest).await?;
        // A day SQLite cannot read anchors nothing: the windows start from today then.
        Ok(day.and_then(|(d,)| codec::parse_date(&d).ok()))
    }

    /// The database's plan for [`Store::list_transactions`] with this filter (SQLite's `EXPLAIN QUERY PLAN`
    /// details, PostgreSQL's `EXPLAIN` lines): the store's tests hold every filter shape to an index path with it.
    pub async fn explain_list_transactions(&self, user_id: &UserId, f: &TransactionFilter) -> Result<Vec<String>> {
        let plan = self.plan(user_id, f).await?;
        let select = self.list_select(user_id, f, &plan)?;
        Ok(match self.backend {
            Backend::Sqlite => {
                let rows: Vec<SqlitePlanRow> =
                    self.reader.fetch_all(&select.with_prefix("EXPLAIN QUERY PLAN ")).await?;
                rows.into_iter().map(|r| r.detail).collect()
            }
            Backend::Postgres => {
                let rows: Vec<PgPlanRow> = self.reader.fetch_all(&select.with_prefix("EXPLAIN ")).await?;
                rows.into_iter().map(|r| r.plan).collect()
            }
        })
    }

    async fn plan(&self, user_id: &UserId, f: &TransactionFilter) -> Result<Plan> {
        let amounts = self.amount_plan(user_id, f).await?;
        Ok(Plan { search: self.search_plan(f, amounts.is_some()).await?, amounts })
    }

    /// How to read the filter's amount range (a bound alone is a range to the end of all bands): band by band when
    /// it spans few bands or the user's rows are in few of them, else by how many rows it holds on SQLite, counted
    /// in the amount index up to [`DENSE_AMOUNTS`] (PostgreSQL's planner chooses between the amount and the time
    /// index by its statistics).
    async fn amount_plan(&self, user_id: &UserId, f: &TransactionFilter) -> Result<Option<AmountPlan>> {
        if f.min_amount.is_none() && f.max_amount.is_none() {
            return Ok(None);
        }
        let lo = f.min_amount.map_or(codec::LOWEST_BAND, codec::amount_band);
        let hi = f.max_amount.map_or(codec::HIGHEST_BAND, codec::amount_band);
        if f.q.is_some() {
            // The search's own plan finds the rows, unless both bounds narrow them too.
            let bounded = f.min_amount.is_some() && f.max_amount.is_some();
            return Ok(bounded.then_some(AmountPlan::BandRange(lo, hi)));
        }
        let bands = match codec::amount_bands_between(lo, hi, MAX_BAND_ARMS) {
            Some(bands) => bands,
            // More bands than are read one by one, but the user's rows may be in only a few of them (all bands
            // above a lone minimum, say): find those, a seek each.
            None => {
                let present = Sql::new(PRESENT_BANDS).bind(user_id).bind(lo).bind(hi).bind(MAX_BAND_ARMS as i64 + 1);
                let present: Vec<(i64,)> = self.reader.fetch_all(&present).await?;
                present.into_iter().map(|(b,)| b).collect()
            }
        };
        if bands.len() <= MAX_BAND_ARMS {
            return Ok(Some(if bands.is_empty() {
                AmountPlan::BandRange(lo, hi)
            } else {
                AmountPlan::EachBand(bands)
            }));
        }
        if self.backend == Backend::Postgres {
            return Ok(Some(AmountPlan::BandRange(lo, hi)));
        }
        let mut count = Sql::new(
            "SELECT COUNT(*) FROM (SELECT 1 FROM transactions t WHERE t.user_id = $1 AND t.deleted_at IS NULL \
             AND t.amount_band BETWEEN $2 AND $3",
        )
        .bind(user_id)
        .bind(lo)
        .bind(hi);
        push_amount_keys(&mut count, f);
        count.push(" LIMIT ").push_bind(DENSE_AMOUNTS + 1).push(") AS m");
        let (rows,): (i64,) = self.reader.fetch_one(&count).await?;
        Ok(Some(if rows > DENSE_AMOUNTS { AmountPlan::Walk } else { AmountPlan::BandRange(lo, hi) }))
    }

    /// How SQLite should find the rows of the filter's search (see `search`), from a count or two of the full-text
    /// index ([`search::count_matches`]); `None` without a search, and on PostgreSQL (its planner has statistics to
    /// choose by).
    ///
    /// Without an amount range the matches are followed newest first: [`search::FOLLOWED_PAGES`] pages' worth of
    /// them when the whole word alone is dense, else up to every match of a sparse search (as many as fetching them
    /// all would read). With one, the search is a condition of the amount plan's reads: its matches fetched, or
    /// tested window by window.
    async fn search_plan(&self, f: &TransactionFilter, amounts: bool) -> Result<Option<SearchPlan>> {
        let counts = match (self.backend, f.q.as_deref()) {
            (Backend::Sqlite, Some(q)) => search::count_matches(q),
            _ => return Ok(None),
        };
        if counts.is_empty() {
            return Ok(None);
        }
        if !amounts {
            let (matches,): (i64,) = self.reader.fetch_one(&counts[0]).await?;
            let page = search::FOLLOWED_PAGES * (i64::from(f.effective_limit()) + 1);
            if matches <= search::DENSE_MATCHES {
                return Ok(Some(SearchPlan::FollowMatches { take: page.max(search::DENSE_MATCHES + 1), prefix: true }));
            }
            let prefix = match f.q.as_deref().and_then(search::longer_terms) {
                Some(longer) => self.reader.fetch_optional::<(i64,)>(&longer).await?.is_some(),
                None => true,
            };
            return Ok(Some(SearchPlan::FollowMatches { take: page, prefix }));
        }
        for count in counts {
            let (matches,): (i64,) = self.reader.fetch_one(&count).await?;
            if matches > search::DENSE_MATCHES {
                // Over every day; `list_transactions` reads it window by window.
                return Ok(Some(SearchPlan::WalkIndex(Days::default())));
            }
        }
        Ok(Some(SearchPlan::FetchMatches))
    }

    /// The statement of [`Store::list_transactions`]: one more row than the page, to know whether more follow.
    /// PostgreSQL plans it for each call's values ([`Sql::planned_per_call`]): which index is best depends on them,
    /// except for a page with no filter ([`only_pages_through`]).
    ///
    /// An amount range read from the amount index is a deferred join: the page's keys are found, sorted and cut
    /// from the covering index `transactions_amount` alone (see [`AmountPlan`]), and only the page's rows are then
    /// read. Read whole, every row in the range was looked up and carried through the sort (30 ms for 3,000
    /// matches at 1,000,000 rows on SQLite).
    fn list_select<'a>(&self, user_id: &'a UserId, f: &'a TransactionFilter, plan: &Plan) -> Result<Sql<'a>> {
        let limit = i64::from(f.effective_limit()) + 1;
        // SQLite without statistics prefers walking an index in the list's order to sorting; for a few matches the
        // hint makes it fetch them by rowid instead (rowid lookups stay allowed under NOT INDEXED).
        let table = match plan.search {
            Some(SearchPlan::FetchMatches) => "transactions t NOT INDEXED",
            _ => "transactions t",
        };
        let after = f.after.as_deref().map(TxnCursor::decode).transpose()?;
        if let Some(SearchPlan::FollowMatches { take, prefix }) = plan.search {
            debug_assert!(plan.amounts.is_none(), "an amount range reads its own rows (`search_plan`)");
            let mut select = Sql::new("");
            let q = f.q.as_deref().unwrap_or_default();
            search::push_newest_matches(&mut select, q, prefix, search_days(f)?, take);
            let columns = format!("{}, {}", select_columns(self.backend), search::NEWEST_MATCHES_READ);
            // Driven by the matches (`CROSS JOIN` fixes the order), each row looked up by its rowid.
            push_select_visible(&mut select, user_id, f, FOLLOWED, &columns);
            self.push_conditions(&mut select, f, plan.search);
            if let Some(c) = &after {
                push_after(&mut select, c, "t.date");
            }
            search::push_newest_matches_complete(&mut select, take);
            select.push(ORDER).push_bind(limit);
            return Ok(select);
        }
        let arms: Vec<ArmBands<'_>> = match (&plan.amounts, self.backend) {
            (None | Some(AmountPlan::Walk), _) => {
                let mut select = select_visible_from(self.backend, user_id, f, table);
                self.push_conditions(&mut select, f, plan.search);
                if let Some(c) = &after {
                    push_after(&mut select, c, "t.date");
                }
                select.push(ORDER);
                if only_pages_through(f) {
                    // The limit is part of the text, so that PostgreSQL's plan of the cached statement knows it: with
                    // `LIMIT $n` its generic plan expected a tenth of the user's rows and it went on planning each
                    // call anew (0.2-0.5 ms, more than the 0.13 ms the newest page's query runs at 100,000 rows).
                    // The limit is 2..=501 (a page and one row more), so a connection caches a few such statements.
                    select.push(&limit.to_string());
                    return Ok(select);
                }
                select.push_bind(limit);
                return Ok(select.planned_per_call());
            }
            // One arm run once per band (a lateral join): PostgreSQL plans a `UNION ALL` of 91 arms in ~40 ms, this
            // in ~1 ms, and planning happens on every call (see `Sql::planned_per_call`).
            (Some(AmountPlan::EachBand(bands)), Backend::Postgres) => vec![ArmBands::Lateral(bands)],
            (Some(AmountPlan::EachBand(bands)), Backend::Sqlite) => bands.iter().map(|&b| ArmBands::One(b)).collect(),
            (Some(AmountPlan::BandRange(lo, hi)), _) => vec![ArmBands::Range(*lo, *hi)],
        };
        let row_key = match self.backend {
            Backend::Sqlite => "t.rowid",
            Backend::Postgres => "t.transaction_id",
        };
        let mut select = Sql::new(format!(
            "SELECT {} FROM transactions t JOIN items i ON i.id = t.item_ref WHERE {row_key} IN (SELECT k FROM (",
            select_columns(self.backend)
        ));
        let arm = Arm {
            user_id,
            f,
            table,
            keys: format!("{row_key} AS k, t.date AS d, t.datetime AS dt, t.transaction_id AS id"),
            search: plan.search,
            after: after.as_ref(),
            limit,
        };
        for (n, bands) in arms.into_iter().enumerate() {
            select.push(if n == 0 { "SELECT * FROM (" } else { " UNION ALL SELECT * FROM (" });
            self.push_arm(&mut select, &arm, bands);
            select.push(&format!(") AS a{n}"));
        }
        select.push(" ORDER BY d DESC, dt DESC, id DESC LIMIT ").push_bind(limit).push(") AS page)");
        select.push(ORDER).push_bind(limit);
        Ok(select.planned_per_call())
    }

    /// One arm of an amount range's read: the page's keys of `bands`, newest first, from the amount index.
    fn push_arm<'a>(&self, select: &mut Sql<'a>, arm: &Arm<'a, '_>, bands: ArmBands<'_>) {
        if let ArmBands::Lateral(list) = bands {
            select.push("SELECT a.* FROM unnest(ARRAY[");
            for (n, &band) in list.iter().enumerate() {
                select.push(if n == 0 { "" } else { ", " }).push_bind(band);
            }
            select.push("]::bigint[]) AS b(band) CROSS JOIN LATERAL (");
        }
        push_select_visible(select, arm.user_id, arm.f, arm.table, &arm.keys);
        self.push_conditions(select, arm.f, arm.search);
        match bands {
            ArmBands::One(band) => select.push(" AND t.amount_band = ").push_bind(band),
            ArmBands::Lateral(_) => select.push(" AND t.amount_band = b.band"),
            ArmBands::Range(lo, hi) => {
                select.push(" AND t.amount_band BETWEEN ").push_bind(lo).push(" AND ").push_bind(hi)
            }
        };
        if let Some(c) = arm.after {
            // Within one band the cursor is a range of the amount index. Over several, the `|| ''` keeps SQLite
            // from walking the time index from the cursor instead (the keyset bound makes it look selective).
            push_after(select, c, if matches!(bands, ArmBands::Range(..)) { "(t.date || '')" } else { "t.date" });
        }
        select.push(ORDER).push_bind(arm.limit);
        if let ArmBands::Lateral(_) = bands {
            select.push(") AS a");
        }
    }

    /// The filter's conditions besides the visible rows' (see [`push_select_visible`]) and the keyset cursor.
    fn push_conditions<'a>(&self, select: &mut Sql<'a>, f: &'a TransactionFilter, plan: Option<SearchPlan>) {
        if let Some(category) = &f.category {
            select.push(" AND (COALESCE(t.user_category, t.pfc_primary) = ").push_bind(category);
            select.push(" OR (t.user_category IS NULL AND t.pfc_detailed = ").push_bind(category);
            select.push("))");
        }
        if let Some(category) = &f.effective_category {
            select.push(" AND ").push(EFFECTIVE_CATEGORY).push(" = ").push_bind(category);
        }
        if let Some(detailed) = &f.detailed_category {
            select.push(" AND t.pfc_detailed = ").push_bind(detailed);
        }
        if let Some(pending) = f.pending {
            // Literal, not bound: the partial index `transactions_pending_time` applies only to a query that names
            // its condition.
            select.push(if pending { " AND t.pending" } else { " AND NOT t.pending" });
        }
        if let Some(q) = f.q.as_deref().map(str::trim).filter(|q| !q.is_empty()) {
            search::push_match(select, self.backend, q, plan.unwrap_or(SearchPlan::FetchMatches));
        }
        push_amount_keys(select, f);
    }

    pub async fn get_transaction(&self, user_id: &UserId, transaction_id: &TransactionId) -> Result<Transaction> {
        let select = Sql::new(get_transaction_sql(self.backend)).bind(transaction_id).bind(user_id);
        self.reader.fetch_one::<TxnRow>(&select).await?.try_into()
    }

    /// Plaid's transaction object exactly as `/transactions/sync` sent it (JSON text), for the same rows
    /// [`Store::get_transaction`] shows.
    pub async fn get_transaction_raw(&self, user_id: &UserId, transaction_id: &TransactionId) -> Result<String> {
        let select = Sql::new(GET_TRANSACTION_RAW).bind(transaction_id).bind(user_id);
        let (raw, raw_zstd): (String, Option<Vec<u8>>) = self.reader.fetch_one(&select).await?;
        raw_json::stored(raw, raw_zstd)
    }

    /// The user's note and category; kept across Plaid's updates (see `sync_write`).
    pub async fn update_transaction_user_fields(
        &self,
        user_id: &UserId,
        transaction_id: &TransactionId,
        patch: &UserFieldsPatch,
    ) -> Result<Transaction> {
        let update = Sql::new(PATCH_TRANSACTION)
            .bind(transaction_id)
            .bind(user_id)
            .bind(patch.note.is_some())
            .bind(patch.note.clone().flatten())
            .bind(patch.category.is_some())
            .bind(patch.category.clone().flatten())
            .bind(codec::ts(chrono::Utc::now()));
        one_row(self.writer.execute(&update).await?)?;
        // From the writer: a reader connection might not see this write yet.
        let select = Sql::new(get_transaction_sql(self.backend)).bind(transaction_id).bind(user_id);
        self.writer.fetch_one::<TxnRow>(&select).await?.try_into()
    }
}

/// What every arm of an amount range's read shares (see [`Store::push_arm`]).
struct Arm<'a, 'c> {
    user_id: &'a UserId,
    f: &'a TransactionFilter,
    table: &'static str,
    keys: String,
    search: Option<SearchPlan>,
    after: Option<&'c TxnCursor>,
    limit: i64,
}

/// Which bands one arm reads.
#[derive(Clone, Copy)]
enum ArmBands<'b> {
    One(i64),
    Range(i64, i64),
    /// Each of these, one at a time: the arm is run by a lateral join over them (PostgreSQL).
    Lateral(&'b [i64]),
}

/// Whether `f` only pages through the user's rows (a page size and a cursor, no filter): the one shape whose best plan
/// is the same for every value (the user's time index, newest first), so PostgreSQL may keep it cached.
fn only_pages_through(f: &TransactionFilter) -> bool {
    let TransactionFilter {
        account_id,
        item_id,
        start,
        end,
        category,
        effective_category,
        detailed_category,
        pending,
        q,
        min_amount,
        max_amount,
        limit: _,
        after: _,
    } = f;
    account_id.is_none()
        && item_id.is_none()
        && start.is_none()
        && end.is_none()
        && category.is_none()
        && effective_category.is_none()
        && detailed_category.is_none()
        && pending.is_none()
        && q.is_none()
        && min_amount.is_none()
        && max_amount.is_none()
}

/// Posted date first: every `transactions_*_time` index leads with it (and the amount index with it after the
/// band), so a date range is a range of the index, walked in order and stopped at the page's end.
const ORDER: &str = " ORDER BY t.date DESC, t.datetime DESC, t.transaction_id DESC LIMIT ";

const LATEST_POSTED_DAY: &str = "SELECT date FROM transactions WHERE user_id = $1 ORDER BY date DESC LIMIT 1";

/// The transactions table joined to the newest matches of a search (`m`, see [`search::push_newest_matches`]).
const FOLLOWED: &str = "m CROSS JOIN transactions t ON t.rowid = (m.key & 4294967295)";

/// A row of a search read from its newest matches, with how many of those were read and the oldest one's day
/// ([`search::NEWEST_MATCHES_READ`]).
#[derive(sqlx::FromRow)]
struct FollowedRow {
    #[sqlx(flatten)]
    row: TxnRow,
    matches_read: i64,
    oldest_match_day: Option<i64>,
}

/// The days a search can list: to the filter's start from the cursor's day or the filter's end, whichever is
/// earlier.
fn search_days(f: &TransactionFilter) -> Result<Days> {
    Ok(Days { from: f.start, until: search_newest_day(f)?.map(|d| d + chrono::Days::new(1)) })
}

/// The windows of days a dense search reads ([`Days::windows`]): from the cursor's day (or the filter's end, if
/// earlier; without either, the user's `latest` posted day, today when unknown) back to the filter's start.
fn search_windows(f: &TransactionFilter, latest: Option<NaiveDate>) -> Result<Vec<Days>> {
    Ok(Days::windows(search_newest_day(f)?, latest.unwrap_or_else(|| codec::now().date_naive()), f.start))
}

/// The newest day a search can list: the cursor's day or the filter's end, whichever is earlier; `None` when
/// neither bounds it.
fn search_newest_day(f: &TransactionFilter) -> Result<Option<NaiveDate>> {
    let cursor_day = match f.after.as_deref().map(TxnCursor::decode).transpose()? {
        // A day SQLite cannot read is not a bound: the cursor's own condition still applies.
        Some(c) => codec::parse_date(&c.date).ok(),
        None => None,
    };
    Ok(match (cursor_day, f.end) {
        (Some(c), Some(e)) => Some(c.min(e)),
        (c, e) => c.or(e),
    })
}

/// The filter's exact amount range.
fn push_amount_keys(select: &mut Sql<'_>, f: &TransactionFilter) {
    if let Some(min) = f.min_amount {
        select.push(" AND t.amount_key >= ").push_bind(codec::amount_key(min));
    }
    if let Some(max) = f.max_amount {
        select.push(" AND t.amount_key <= ").push_bind(codec::amount_key(max));
    }
}

/// The rows after the keyset cursor `c` in the list's order; `date` is how the date column is named.
fn push_after<'a>(select: &mut Sql<'a>, c: &TxnCursor, date: &str) {
    select.push(&format!(" AND ({date}, t.datetime, t.transaction_id) < ("));
    select.push_bind(c.date.clone()).push(", ").push_bind(c.datetime.clone());
    select.push(", ").push_bind(c.transaction_id.clone()).push(")");
}

#[derive(sqlx::FromRow)]
struct SqlitePlanRow {
    detail: String,
}

#[derive(sqlx::FromRow)]
struct PgPlanRow {
    #[sqlx(rename = "QUERY PLAN")]
    plan: String,
}
