//! The spending aggregates over a synced bank: `GET /api/spending/cash-flow` and `/api/spending/categories` agree
//! with the transactions the API lists (contracts.md's counting rules), with each other, and with the
//! `effective_category` drill-down; bad ranges are a 400.

use std::collections::BTreeMap;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde_json::Value;

use crate::helpers::spawn_app;
use crate::sync::wait_for_first_sync;

fn money(v: &Value) -> Decimal {
    Decimal::from_str(v.as_str().unwrap_or_else(|| panic!("money is text: {v}"))).unwrap()
}

fn effective_category(t: &Value) -> String {
    t["user_category"].as_str().or(t["category"].as_str()).unwrap_or("UNCATEGORIZED").to_owned()
}

fn counts(t: &Value) -> bool {
    let category = effective_category(t);
    !t["pending"].as_bool().unwrap()
        && category != "TRANSFER_IN"
        && category != "TRANSFER_OUT"
        && t["category_detailed"] != "LOAN_PAYMENTS_CREDIT_CARD_PAYMENT"
}

#[tokio::test]
async fn spending_aggregates_match_the_listed_transactions_and_the_drill_down() {
    let app = spawn_app().await;
    let item = app.link_bank(0).await;
    let item_id = item["item_id"].as_str().unwrap().to_owned();
    wait_for_first_sync(&app, &item_id).await;
    let transactions = app.all_transactions(&item_id).await;
    let latest = transactions.iter().map(|t| t["date"].as_str().unwrap()[..7].to_owned()).max().unwrap();

    // The 24 months ending with the newest transaction, straight from the listed transactions.
    let cash_flow = app.get(&format!("/api/spending/cash-flow?to={latest}&from={}", months_before(&latest, 23))).await;
    let cash_flow = cash_flow.expect(200);
    let from = cash_flow["from"].as_str().unwrap().to_owned();
    let mut expected: BTreeMap<(String, String), (Decimal, Decimal)> = BTreeMap::new();
    for t in transactions.iter().filter(|t| counts(t)) {
        let month = t["date"].as_str().unwrap()[..7].to_owned();
        if month < from || month > latest {
            continue;
        }
        let currency = t["currency"].as_str().unwrap_or("XXX").to_owned();
        let amount = money(&t["amount"]);
        let sums = expected.entry((currency, month)).or_default();
        if amount > Decimal::ZERO {
            sums.1 += amount;
        } else {
            sums.0 -= amount;
        }
    }
    assert!(!expected.is_empty(), "the simulated history has spending");
    let mut spending_per_month = BTreeMap::new();
    for currency in cash_flow["currencies"].as_array().unwrap() {
        let code = currency["currency"].as_str().unwrap().to_owned();
        let months = currency["months"].as_array().unwrap();
        assert_eq!(months.len(), 24, "every month, zeros included");
        for m in months {
            let month = m["month"].as_str().unwrap().to_owned();
            let (income, spending) = expected.get(&(code.clone(), month.clone())).copied().unwrap_or_default();
            assert_eq!((money(&m["income"]), money(&m["spending"])), (income, spending), "{code} {month}");
            assert_eq!(money(&m["net"]), income - spending);
            spending_per_month.insert((code.clone(), month), spending);
        }
    }

    // Category totals add up to each month's spending, sorted by total; the drill-down lists exactly their rows.
    let categories = app.get(&format!("/api/spending/categories?from={from}&to={latest}")).await.expect(200);
    for currency in categories["currencies"].as_array().unwrap() {
        let code = currency["currency"].as_str().unwrap();
        let months: Vec<String> =
            currency["months"].as_array().unwrap().iter().map(|m| m.as_str().unwrap().to_owned()).collect();
        let cats = currency["categories"].as_array().unwrap();
        let totals: Vec<Decimal> = cats.iter().map(|c| money(&c["total"])).collect();
        assert!(totals.windows(2).all(|w| w[0] >= w[1]), "sorted by total descending");
        for (i, month) in months.iter().enumerate() {
            let sum: Decimal = cats.iter().map(|c| money(&c["totals"][i])).sum();
            assert_eq!(sum, spending_per_month[&(code.to_owned(), month.clone())], "{code} {month}");
        }
        let top = &cats[0];
        let category = top["category"].as_str().unwrap();
        let (i, month) = months
            .iter()
            .enumerate()
            .find(|(i, _)| money(&top["totals"][*i]) > Decimal::ZERO)
            .expect("the top category spent in some month");
        let drill = app
            .get(&format!(
                "/api/transactions?effective_category={category}&start={month}-01&end={}&limit=500",
                last_day(month)
            ))
            .await
            .expect(200);
        let rows = drill["transactions"].as_array().unwrap();
        assert!(rows.iter().all(|t| effective_category(t) == category), "exactly that category");
        let spent: Decimal = rows
            .iter()
            .filter(|t| counts(t) && t["currency"].as_str().unwrap_or("XXX") == code)
            .map(|t| money(&t["amount"]))
            .filter(|a| *a > Decimal::ZERO)
            .sum();
        assert_eq!(spent, money(&top["totals"][i]), "{category} {month}");
    }

    // Bad ranges name the problem.
    for query in ["from=2023-01&to=2026-01", "from=2026-02&to=2026-01", "from=2026-13", "to=last"] {
        let reply = app.get(&format!("/api/spending/categories?{query}")).await;
        assert_eq!(reply.status, 400, "{query}: {}", reply.body);
        assert_eq!(reply.body["error"]["code"], "invalid_query");
    }
    assert_eq!(app.get("/api/spending/cash-flow?from=2020-01&to=2022-12").await.status, 200, "36 months");
}

/// `YYYY-MM` `n` months before `month`.
fn months_before(month: &str, n: i32) -> String {
    let (y, m) = month.split_once('-').unwrap();
    let index = y.parse::<i32>().unwrap() * 12 + m.parse::<i32>().unwrap() - 1 - n;
    format!("{:04}-{:02}", index / 12, index % 12 + 1)
}

/// The last day of `YYYY-MM`.
fn last_day(month: &str) -> String {
    let first = chrono::NaiveDate::parse_from_str(&format!("{}-01", months_before(month, -1)), "%Y-%m-%d").unwrap();
    (first - chrono::Duration::days(1)).to_string()
}
