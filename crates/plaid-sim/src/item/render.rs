//! JSON rendering of an Item's accounts (`/accounts/*` and the accounts of sync pages), of Link's
//! `metadata.accounts` and of the Item itself (`/item/get`).

use rust_decimal::Decimal;
use serde_json::{Value, json};

use super::{Balances, Item};
use crate::world::generator::AccountKind;

impl Item {
    pub fn account_json(&self, idx: usize, balances: &Balances) -> Value {
        let a = &self.accounts[idx];
        let (name, official, ty, subtype, mask) = match a.kind {
            AccountKind::Checking => {
                ("Plaid Checking", Some("Plaid Gold Standard 0% Interest Checking"), "depository", "checking", "0000")
            }
            AccountKind::Savings => {
                ("Plaid Saving", Some("Plaid Silver Standard 0.1% Interest Saving"), "depository", "savings", "1111")
            }
            AccountKind::Credit => (
                "Plaid Credit Card",
                Some("Plaid Diamond 12.5% APR Interest Credit Card"),
                "credit",
                "credit card",
                "3333",
            ),
            AccountKind::Crypto => ("Plaid Bitcoin Wallet", None, "depository", "cash management", "7777"),
        };
        let (iso, unofficial) = if a.kind == AccountKind::Crypto { (None, Some("BTC")) } else { (Some("USD"), None) };
        json!({
            "account_id": a.account_id,
            "balances": {
                "available": balances.available.map(decimal_json),
                "current": balances.current.map(decimal_json),
                "limit": balances.limit.map(decimal_json),
                "iso_currency_code": iso,
                "unofficial_currency_code": unofficial,
            },
            "mask": mask,
            "name": name,
            "official_name": official,
            "type": ty,
            "subtype": subtype,
            "persistent_account_id": a.persistent_account_id,
        })
    }

    /// Link's `metadata.accounts` entries.
    pub fn link_accounts_json(&self) -> Vec<Value> {
        let b = self.live_balances();
        (0..self.accounts.len())
            .map(|i| {
                let full = self.account_json(i, &b[i]);
                json!({
                    "id": full["account_id"],
                    "name": full["name"],
                    "mask": full["mask"],
                    "type": full["type"],
                    "subtype": full["subtype"],
                    "verification_status": null,
                    "class_type": null,
                })
            })
            .collect()
    }

    pub fn accounts_json(&self, balances: &[Balances], only: Option<&[String]>) -> Vec<Value> {
        (0..self.accounts.len())
            .filter(|&i| only.is_none_or(|ids| ids.contains(&self.accounts[i].account_id)))
            .map(|i| self.account_json(i, &balances[i]))
            .collect()
    }

    pub fn item_json(&self) -> Value {
        let products: Vec<&str> = self.products.iter().map(String::as_str).collect();
        let available: Vec<&str> =
            ["assets", "auth", "balance", "identity", "investments", "liabilities", "transactions"]
                .into_iter()
                .filter(|p| !products.contains(p))
                .collect();
        json!({
            "item_id": self.item_id,
            "institution_id": self.institution.id,
            "institution_name": self.institution.name,
            "webhook": self.webhook,
            "auth_method": null,
            "error": if self.login_required { crate::api::errors::ApiError::item_login_required().to_item_error() } else { Value::Null },
            "available_products": available,
            "billed_products": products,
            "products": products,
            "consented_products": products,
            "consent_expiration_time": null,
            "update_type": "background",
        })
    }
}

pub fn decimal_json(d: Decimal) -> Value {
    rust_decimal::serde::arbitrary_precision::serialize(&d, serde_json::value::Serializer).unwrap_or(Value::Null)
}
