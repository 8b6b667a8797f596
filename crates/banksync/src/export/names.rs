//! Journal account names and categories, shared by Beancount and Ledger: names that both tools accept (each
//! component `[A-Z][A-Za-z0-9-]*`) and that are derived only from stable data, so two runs name an account alike.

use rust_decimal::Decimal;

use crate::domain::{Account, Transaction};

pub(crate) fn is_liability(account_type: &str) -> bool {
    matches!(account_type, "credit" | "loan")
}

/// `Assets:<institution>:<account name>-<mask>` (Liabilities for credit cards and loans).
pub(crate) fn account_name(institution: &str, account: &Account, liability: bool) -> String {
    let root = if liability { "Liabilities" } else { "Assets" };
    let mut leaf = component(&account.name);
    if let Some(mask) = account.mask.as_deref().map(component_tail).filter(|m| !m.is_empty()) {
        leaf = format!("{leaf}-{mask}");
    }
    format!("{root}:{}:{leaf}", component(institution))
}

/// One account-name component: words CamelCased, anything but ASCII letters and digits dropped, starting with a
/// capital letter.
pub(crate) fn component(text: &str) -> String {
    let mut out = String::new();
    for word in text.split(|c: char| !c.is_ascii_alphanumeric()).filter(|w| !w.is_empty()) {
        let mut chars = word.chars();
        if let Some(first) = chars.next() {
            out.push(first.to_ascii_uppercase());
            out.extend(chars);
        }
    }
    match out.chars().next() {
        None => "Unnamed".to_owned(),
        Some(c) if !c.is_ascii_uppercase() => format!("X{out}"),
        _ => out,
    }
}

/// Letters and digits only (for a mask after a `-`).
fn component_tail(text: &str) -> String {
    text.chars().filter(char::is_ascii_alphanumeric).collect()
}

/// A commodity both tools accept: uppercase letters and digits, starting with a letter.
pub(crate) fn commodity(code: Option<&str>) -> String {
    let c: String =
        code.unwrap_or("USD").chars().filter(char::is_ascii_alphanumeric).collect::<String>().to_uppercase();
    if c.chars().next().is_some_and(|f| f.is_ascii_alphabetic()) { c } else { "USD".to_owned() }
}

/// A title-cased component from Plaid's `SCREAMING_SNAKE` category.
fn pfc_component(text: &str) -> String {
    component(&text.to_lowercase())
}

/// The other side of a transaction: the user's category wins (a full `Expenses:…`-style name is kept as written,
/// else it goes under Expenses, or Income for money in), then Plaid's personal_finance_category (INCOME under
/// Income, transfers and loan payments under Equity:Transfers since both sides are often exported), else
/// `Expenses:Uncategorized` / `Income:Uncategorized` by sign.
pub(crate) fn category_account(t: &Transaction) -> String {
    let money_in = t.fields.amount < Decimal::ZERO;
    if let Some(user) = t.user_category.as_deref().filter(|c| !c.trim().is_empty()) {
        let parts: Vec<String> = user.split(':').map(component).collect();
        let rooted = matches!(parts[0].as_str(), "Expenses" | "Income" | "Equity" | "Assets" | "Liabilities");
        let root = if money_in { "Income" } else { "Expenses" };
        return if rooted { parts.join(":") } else { format!("{root}:{}", parts.join(":")) };
    }
    let Some(primary) = t.fields.pfc_primary.as_deref().filter(|p| !p.is_empty()) else {
        return if money_in { "Income:Uncategorized" } else { "Expenses:Uncategorized" }.to_owned();
    };
    let detailed = t
        .fields
        .pfc_detailed
        .as_deref()
        .map(|d| d.strip_prefix(primary).unwrap_or(d).trim_start_matches('_'))
        .filter(|d| !d.is_empty());
    match primary {
        "TRANSFER_IN" | "TRANSFER_OUT" | "LOAN_PAYMENTS" => "Equity:Transfers".to_owned(),
        "INCOME" => format!("Income:{}", detailed.map_or_else(|| "Other".to_owned(), pfc_component)),
        _ => match detailed {
            Some(d) => format!("Expenses:{}:{}", pfc_component(primary), pfc_component(d)),
            None => format!("Expenses:{}", pfc_component(primary)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_are_valid_account_name_parts() {
        assert_eq!(component("Plaid Gold Standard 0% Interest Checking"), "PlaidGoldStandard0InterestChecking");
        assert_eq!(component("ins_109508"), "Ins109508");
        assert_eq!(component("401k"), "X401k");
        assert_eq!(component("  "), "Unnamed");
        assert_eq!(component("Café & Co"), "CafCo");
        assert_eq!(commodity(Some("btc")), "BTC");
        assert_eq!(commodity(None), "USD");
        assert_eq!(pfc_component("FOOD_AND_DRINK"), "FoodAndDrink");
    }
}
