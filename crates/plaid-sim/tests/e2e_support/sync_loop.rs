//! The reference sync loop from ARCHITECTURE.md, written against the client's public API, and
//! the convergence check against the simulator's ground truth.
//!
//! Algorithm: remember the start cursor; fetch pages (`count` each) into a buffer until
//! `has_more` is false; if a page fails with TRANSACTIONS_SYNC_MUTATION_DURING_PAGINATION,
//! drop the buffer and start again from the start cursor; otherwise apply the buffered pages in
//! order (added/modified as upserts, removed as deletes) and store the last `next_cursor`. A
//! NOT_READY answer (empty `next_cursor`) applies nothing and keeps the stored cursor.

use std::collections::{HashMap, HashSet};

use plaid::{
    AccessToken, Error, PlaidClient, PlaidError, RemovedTransaction, Transaction, TransactionsSyncRequest,
    TransactionsSyncResponse, TransactionsUpdateStatus, codes,
};

/// Page size the service uses (Plaid's maximum).
pub const PAGE_SIZE: u32 = 500;

/// Restarts tolerated before the loop gives up (each needs the Item to change again).
const MAX_RESTARTS: usize = 5;

/// What an application keeps per Item: the cursor and the transactions it has applied.
#[derive(Debug, Default)]
pub struct Mirror {
    pub cursor: String,
    pub transactions: HashMap<String, Transaction>,
}

/// One completed run of the loop.
#[derive(Debug)]
pub struct SyncRun {
    pub status: TransactionsUpdateStatus,
    /// Pages of the pass that was applied.
    pub pages: usize,
    /// Errors (HTTP status, Plaid error) that made the loop start over.
    pub restarts: Vec<(u16, PlaidError)>,
    /// The applied pass, page by page concatenated.
    pub added: Vec<Transaction>,
    pub modified: Vec<Transaction>,
    pub removed: Vec<RemovedTransaction>,
}

impl Mirror {
    /// Syncs from the stored cursor until `has_more` is false.
    pub async fn sync(&mut self, client: &PlaidClient, token: &AccessToken, count: u32) -> Result<SyncRun, Error> {
        self.sync_with(client, token, count, async |_| {}).await
    }

    /// Like [`Mirror::sync`], calling `between_pages(n)` after the n-th page of a pass when
    /// another page follows (tests use it to change the bank or inject faults mid-pagination).
    pub async fn sync_with(
        &mut self,
        client: &PlaidClient,
        token: &AccessToken,
        count: u32,
        mut between_pages: impl AsyncFnMut(usize),
    ) -> Result<SyncRun, Error> {
        let start = self.cursor.clone();
        let mut restarts = Vec::new();
        'pass: loop {
            let mut cursor = start.clone();
            let mut pages: Vec<TransactionsSyncResponse> = Vec::new();
            loop {
                let request = TransactionsSyncRequest::new(token.clone()).cursor(cursor.clone()).count(count);
                let page = match client.transactions_sync(&request).await {
                    Ok(page) => page,
                    Err(Error::Api { status, error })
                        if error.error_code == codes::TRANSACTIONS_SYNC_MUTATION_DURING_PAGINATION =>
                    {
                        restarts.push((status, *error));
                        assert!(restarts.len() <= MAX_RESTARTS, "sync kept restarting: {restarts:?}");
                        continue 'pass;
                    }
                    Err(other) => return Err(other),
                };
                let size = page.added.len() + page.modified.len() + page.removed.len();
                assert!(size <= count as usize, "a page held {size} changes for count {count}");
                if page.transactions_update_status == TransactionsUpdateStatus::NotReady {
                    assert!(page.next_cursor.is_empty(), "NOT_READY with a cursor");
                    assert!(size == 0 && !page.has_more, "NOT_READY with data");
                    return Ok(SyncRun {
                        status: page.transactions_update_status,
                        pages: 1,
                        restarts,
                        added: Vec::new(),
                        modified: Vec::new(),
                        removed: Vec::new(),
                    });
                }
                assert!(!page.next_cursor.is_empty(), "a ready page without next_cursor");
                cursor = page.next_cursor.clone();
                let has_more = page.has_more;
                pages.push(page);
                if !has_more {
                    break;
                }
                between_pages(pages.len()).await;
            }
            return Ok(self.apply(pages, cursor, restarts));
        }
    }

    fn apply(
        &mut self,
        pages: Vec<TransactionsSyncResponse>,
        cursor: String,
        restarts: Vec<(u16, PlaidError)>,
    ) -> SyncRun {
        let mut run = SyncRun {
            status: pages.last().map(|p| p.transactions_update_status.clone()).unwrap_or_default(),
            pages: pages.len(),
            restarts,
            added: Vec::new(),
            modified: Vec::new(),
            removed: Vec::new(),
        };
        for page in pages {
            for t in page.added.iter().chain(&page.modified) {
                self.transactions.insert(t.transaction_id.clone(), t.clone());
            }
            for r in &page.removed {
                self.transactions.remove(&r.transaction_id);
            }
            run.added.extend(page.added);
            run.modified.extend(page.modified);
            run.removed.extend(page.removed);
        }
        self.cursor = cursor;
        run
    }
}

/// Asserts the mirror holds exactly the ground truth: the same ids, each transaction equal as
/// a typed value and as raw JSON, and every amount exactly the decimal text Plaid sent.
pub fn assert_converged(mirror: &Mirror, truth: &[Transaction]) {
    let mut mine: Vec<&String> = mirror.transactions.keys().collect();
    mine.sort();
    let theirs: Vec<&String> = truth.iter().map(|t| &t.transaction_id).collect();
    if mine != theirs {
        let truth_ids: HashSet<&String> = theirs.iter().copied().collect();
        let missing: Vec<_> = theirs.iter().filter(|id| !mirror.transactions.contains_key(**id)).take(5).collect();
        let extra: Vec<_> = mine.iter().filter(|id| !truth_ids.contains(**id)).take(5).collect();
        panic!(
            "transaction ids differ: mirror {} vs ground truth {}; missing e.g. {missing:?}; extra e.g. {extra:?}",
            mine.len(),
            theirs.len()
        );
    }
    for expected in truth {
        let got = &mirror.transactions[&expected.transaction_id];
        assert_eq!(got.raw_value(), expected.raw_value(), "raw JSON of {}", expected.transaction_id);
        assert_eq!(got, expected, "typed fields of {}", expected.transaction_id);
        // With arbitrary_precision the raw number keeps Plaid's text: the Decimal must print
        // as exactly that text (no detour through f64).
        assert_eq!(got.amount.to_string(), got.raw_value()["amount"].to_string(), "amount of {}", got.transaction_id);
    }
}
