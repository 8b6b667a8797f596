//! Accounts and their balances: each account's opening figures, the running sums `advance` keeps
//! up to date, the live balances derived from them and the cached (last refreshed) ones.

use rand::Rng;
use rust_decimal::Decimal;

use super::Item;
use crate::world::generator::AccountKind;

#[derive(Debug, Clone)]
pub struct Account {
    pub account_id: String,
    /// The same for this account in every Item of the persona (Plaid's `persistent_account_id`).
    pub persistent_account_id: String,
    pub kind: AccountKind,
    /// The current balance at creation; the implied opening balance is `base ± Σ history`.
    pub(super) base: Decimal,
    pub(super) limit: Option<Decimal>,
    /// Σ posted amounts added, changed or removed since creation.
    pub(super) posted_delta: Decimal,
    /// Σ amounts of the currently pending transactions.
    pub(super) pending_sum: Decimal,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Balances {
    pub available: Option<Decimal>,
    pub current: Option<Decimal>,
    pub limit: Option<Decimal>,
}

impl Account {
    /// A new account of `kind`, its balance (and credit limit) drawn from `rng`.
    pub(super) fn open(
        kind: AccountKind,
        account_id: String,
        persistent_account_id: String,
        rng: &mut impl Rng,
    ) -> Self {
        let (base, limit) = match kind {
            AccountKind::Checking => (Decimal::new(rng.gen_range(120_000..800_000), 2), None),
            AccountKind::Savings => (Decimal::new(rng.gen_range(500_000..4_000_000), 2), None),
            AccountKind::Credit => (
                Decimal::new(rng.gen_range(30_000..250_000), 2),
                Some(Decimal::new([500_000, 800_000, 1_200_000][rng.gen_range(0..3)], 2)),
            ),
            AccountKind::Crypto => (Decimal::new(rng.gen_range(20_000_000..150_000_000), 8), None),
        };
        Account {
            account_id,
            persistent_account_id,
            kind,
            base,
            limit,
            posted_delta: Decimal::ZERO,
            pending_sum: Decimal::ZERO,
        }
    }
}

impl Item {
    pub fn live_balances(&self) -> Vec<Balances> {
        self.accounts
            .iter()
            .map(|a| match a.kind {
                AccountKind::Credit => {
                    let current = a.base + a.posted_delta;
                    Balances {
                        available: a.limit.map(|l| l - current - a.pending_sum),
                        current: Some(current),
                        limit: a.limit,
                    }
                }
                _ => {
                    let current = a.base - a.posted_delta;
                    Balances { available: Some(current - a.pending_sum), current: Some(current), limit: None }
                }
            })
            .collect()
    }

    pub fn cached_balances(&self) -> &[Balances] {
        &self.cached
    }

    /// Stores live balances as the cached ones (what a bank refresh does).
    pub fn refresh_cache(&mut self) {
        self.cached = self.live_balances();
    }
}
