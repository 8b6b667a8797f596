//! Spending aggregates (the web app's charts): which transactions count, months, and the shapes of
//! `GET /api/spending/categories` and `GET /api/spending/cash-flow` built from the store's per-month groups.
//!
//! A transaction *counts* when it is posted, not removed, its Item visible, and it is not money moving between the
//! user's own accounts (effective category `TRANSFER_IN`/`TRANSFER_OUT`, or Plaid's detailed category
//! `LOAN_PAYMENTS_CREDIT_CARD_PAYMENT`). Its *effective category* is the user's, else Plaid's primary, else
//! `UNCATEGORIZED`. Amounts keep Plaid's sign: spending sums the positive ones, income is minus the sum of the
//! negative ones.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{Datelike, NaiveDate};
use rust_decimal::Decimal;
use serde::Serialize;

use super::AccountId;

/// The category of transactions without any.
pub const UNCATEGORIZED: &str = "UNCATEGORIZED";
/// Longest range the aggregates answer, in months.
pub const MAX_SPENDING_MONTHS: u32 = 36;

/// A calendar month (`YYYY-MM`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Month {
    year: i32,
    /// 1..=12
    month: u32,
}

impl Month {
    pub fn of(date: NaiveDate) -> Self {
        Month { year: date.year(), month: date.month() }
    }

    /// `YYYY-MM` with a year 1000–9999.
    pub fn parse(s: &str) -> Option<Self> {
        let (y, m) = s.split_once('-')?;
        if y.len() != 4 || m.len() != 2 || !y.bytes().chain(m.bytes()).all(|b| b.is_ascii_digit()) {
            return None;
        }
        let (year, month) = (y.parse().ok()?, m.parse().ok()?);
        ((1000..=9999).contains(&year) && (1..=12).contains(&month)).then_some(Month { year, month })
    }

    pub fn next(self) -> Self {
        if self.month == 12 { Month { year: self.year + 1, month: 1 } } else { Month { month: self.month + 1, ..self } }
    }

    /// `n` months earlier.
    pub fn minus(self, n: u32) -> Self {
        let index = self.index() - i64::from(n);
        Month { year: i32::try_from(index.div_euclid(12)).unwrap_or(0), month: (index.rem_euclid(12) + 1) as u32 }
    }

    fn index(self) -> i64 {
        i64::from(self.year) * 12 + i64::from(self.month) - 1
    }

    /// Months from `self` to `to`, both included (0 when `to` is earlier).
    pub fn count_through(self, to: Month) -> u32 {
        u32::try_from(to.index() - self.index() + 1).unwrap_or(0)
    }

    /// `self`, the next month, … up to `to` included.
    pub fn through(self, to: Month) -> impl Iterator<Item = Month> {
        (0..self.count_through(to)).scan(self, |m, _| {
            let current = *m;
            *m = m.next();
            Some(current)
        })
    }
}

impl fmt::Display for Month {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

impl Serialize for Month {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Which transactions the aggregates cover: months `from` through `to`, optionally one account.
#[derive(Debug, Clone)]
pub struct SpendingScope {
    pub from: Month,
    pub to: Month,
    pub account_id: Option<AccountId>,
}

/// The counting transactions of one currency, month and effective category, summed (what the store returns).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpendingGroup {
    pub currency: String,
    pub month: Month,
    pub category: String,
    /// Sum of the positive amounts.
    pub spending: Decimal,
    /// Minus the sum of the negative amounts.
    pub income: Decimal,
    pub count: i64,
}

/// Money as the aggregates show it: exact, at least two decimals ("12.30", "0.00").
fn money(d: Decimal) -> String {
    let mut d = d.normalize();
    if d.scale() < 2 {
        d.rescale(2);
    }
    d.to_string()
}

/// `GET /api/spending/categories`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CategorySpending {
    #[schema(value_type = String, example = "2025-12")]
    pub from: Month,
    #[schema(value_type = String, example = "2026-11")]
    pub to: Month,
    /// Sorted by currency code.
    pub currencies: Vec<CurrencyCategories>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CurrencyCategories {
    /// ISO 4217 (or Plaid's unofficial code); `XXX` when Plaid gave none.
    pub currency: String,
    /// Every month of the range, oldest first.
    #[schema(value_type = Vec<String>)]
    pub months: Vec<Month>,
    /// Categories with any spending in the range, by total descending.
    pub categories: Vec<CategoryTotals>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CategoryTotals {
    pub category: String,
    /// Spending per month of `months` (decimal text, zeros included).
    pub totals: Vec<String>,
    pub total: String,
}

/// `GET /api/spending/cash-flow`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CashFlow {
    #[schema(value_type = String, example = "2025-12")]
    pub from: Month,
    #[schema(value_type = String, example = "2026-11")]
    pub to: Month,
    /// Sorted by currency code.
    pub currencies: Vec<CurrencyCashFlow>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CurrencyCashFlow {
    pub currency: String,
    /// Every month of the range, oldest first.
    pub months: Vec<MonthCashFlow>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MonthCashFlow {
    #[schema(value_type = String, example = "2026-01")]
    pub month: Month,
    /// Minus the sum of negative amounts.
    pub income: String,
    /// The sum of positive amounts (the month's category totals added up).
    pub spending: String,
    /// income − spending.
    pub net: String,
}

impl CategorySpending {
    pub fn from_groups(scope: &SpendingScope, groups: &[SpendingGroup]) -> Self {
        let months: Vec<Month> = scope.from.through(scope.to).collect();
        let slot = |m: Month| usize::try_from(scope.from.count_through(m)).unwrap_or(1).saturating_sub(1);
        let mut by_currency: BTreeMap<&str, BTreeMap<&str, Vec<Decimal>>> = BTreeMap::new();
        for g in groups.iter().filter(|g| g.month >= scope.from && g.month <= scope.to && !g.spending.is_zero()) {
            let totals = by_currency
                .entry(g.currency.as_str())
                .or_default()
                .entry(g.category.as_str())
                .or_insert_with(|| vec![Decimal::ZERO; months.len()]);
            totals[slot(g.month)] += g.spending;
        }
        let currencies = by_currency
            .into_iter()
            .map(|(currency, categories)| {
                let mut categories: Vec<(Decimal, &str, Vec<Decimal>)> =
                    categories.into_iter().map(|(c, totals)| (totals.iter().sum(), c, totals)).collect();
                categories.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(b.1)));
                CurrencyCategories {
                    currency: currency.to_owned(),
                    months: months.clone(),
                    categories: categories
                        .into_iter()
                        .map(|(total, category, totals)| CategoryTotals {
                            category: category.to_owned(),
                            totals: totals.into_iter().map(money).collect(),
                            total: money(total),
                        })
                        .collect(),
                }
            })
            .collect();
        CategorySpending { from: scope.from, to: scope.to, currencies }
    }
}

impl CashFlow {
    pub fn from_groups(scope: &SpendingScope, groups: &[SpendingGroup]) -> Self {
        let months: Vec<Month> = scope.from.through(scope.to).collect();
        let slot = |m: Month| usize::try_from(scope.from.count_through(m)).unwrap_or(1).saturating_sub(1);
        let mut by_currency: BTreeMap<&str, Vec<(Decimal, Decimal)>> = BTreeMap::new();
        for g in groups.iter().filter(|g| g.month >= scope.from && g.month <= scope.to && g.count > 0) {
            let sums = by_currency
                .entry(g.currency.as_str())
                .or_insert_with(|| vec![(Decimal::ZERO, Decimal::ZERO); months.len()]);
            let (income, spending) = &mut sums[slot(g.month)];
            *income += g.income;
            *spending += g.spending;
        }
        let currencies = by_currency
            .into_iter()
            .map(|(currency, sums)| CurrencyCashFlow {
                currency: currency.to_owned(),
                months: months
                    .iter()
                    .zip(sums)
                    .map(|(month, (income, spending))| MonthCashFlow {
                        month: *month,
                        income: money(income),
                        spending: money(spending),
                        net: money(income - spending),
                    })
                    .collect(),
            })
            .collect();
        CashFlow { from: scope.from, to: scope.to, currencies }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(s: &str) -> Month {
        Month::parse(s).unwrap()
    }

    #[test]
    fn months_parse_count_and_step() {
        for bad in ["2026-13", "2026-00", "26-01", "2026-1", "2026/01", "+026-01", "2026-011", ""] {
            assert_eq!(Month::parse(bad), None, "{bad}");
        }
        assert_eq!(m("2025-12").next(), m("2026-01"));
        assert_eq!(m("2026-01").minus(1), m("2025-12"));
        assert_eq!(m("2026-11").minus(11), m("2025-12"));
        assert_eq!(m("2025-12").count_through(m("2026-11")), 12);
        assert_eq!(m("2026-02").count_through(m("2026-01")), 0);
        let all: Vec<String> = m("2025-11").through(m("2026-02")).map(|m| m.to_string()).collect();
        assert_eq!(all, ["2025-11", "2025-12", "2026-01", "2026-02"]);
        assert_eq!(m("2026-01").through(m("2026-01")).count(), 1);
    }

    #[test]
    fn shapes_fill_every_month_and_sort() {
        let scope = SpendingScope { from: m("2026-01"), to: m("2026-03"), account_id: None };
        let g = |cur: &str, month: &str, cat: &str, spending: &str, income: &str| SpendingGroup {
            currency: cur.into(),
            month: m(month),
            category: cat.into(),
            spending: spending.parse().unwrap(),
            income: income.parse().unwrap(),
            count: 1,
        };
        let groups = [
            g("USD", "2026-01", "FOOD", "12.3", "0"),
            g("USD", "2026-03", "FOOD", "1", "0"),
            g("USD", "2026-02", "RENT", "100", "0"),
            g("USD", "2026-02", "INCOME", "0", "2500.5"),
            g("EUR", "2026-01", "FOOD", "0.005", "0"),
        ];
        let c = CategorySpending::from_groups(&scope, &groups);
        let json = serde_json::to_value(&c).unwrap();
        assert_eq!(json["currencies"][0]["currency"], "EUR");
        assert_eq!(json["currencies"][0]["categories"][0]["totals"], serde_json::json!(["0.005", "0.00", "0.00"]));
        let usd = &json["currencies"][1];
        assert_eq!(usd["months"], serde_json::json!(["2026-01", "2026-02", "2026-03"]));
        assert_eq!(usd["categories"][0]["category"], "RENT");
        assert_eq!(usd["categories"][1]["totals"], serde_json::json!(["12.30", "0.00", "1.00"]));
        assert_eq!(usd["categories"][1]["total"], "13.30");
        assert_eq!(usd["categories"].as_array().unwrap().len(), 2, "no spending, no category");
        let f = serde_json::to_value(CashFlow::from_groups(&scope, &groups)).unwrap();
        assert_eq!(
            f["currencies"][1]["months"][1],
            serde_json::json!({"month": "2026-02", "income": "2500.50", "spending": "100.00", "net": "2400.50"})
        );
        assert_eq!(f["currencies"][1]["months"][0]["net"], "-12.30");
    }
}
