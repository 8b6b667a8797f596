//! Deterministic transaction generation. A transaction is a pure function of the Item's seed and
//! a key (its history index, or its day and slot for days added by `advance`), so history of any
//! length is generated lazily, page by page, and the same seed always yields the same world.

use chrono::{Datelike, Duration, NaiveDate, NaiveTime, TimeZone, Utc, Weekday};
use rand::Rng;
use rust_decimal::Decimal;

use std::collections::HashMap;
use std::sync::LazyLock;

use super::institutions::{INSTITUTIONS, Institution};
use super::merchants::{self, Channel, MERCHANTS, Merchant};
use crate::assets::AssetUrls;
use crate::ids::{self, ID_LEN, mix, tag};
use crate::model::{Counterparty, Location, PaymentMeta, Pfc, Txn};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountKind {
    Checking,
    Savings,
    Credit,
    Crypto,
}

/// What one slot of a day produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    Paycheck,
    Rent,
    /// Checking side of the monthly credit-card payment.
    CardPaymentOut,
    /// Credit-card side of the same payment.
    CardPaymentIn,
    SavingsOut,
    SavingsIn,
    Interest,
    Bill(usize),
    Purchase,
    Atm,
    Crypto,
}

impl Slot {
    /// Card purchases show up pending first; ACH, bills and transfers post directly.
    pub fn starts_pending(self) -> bool {
        matches!(self, Slot::Purchase)
    }
}

const EMPLOYERS: &[(&str, &str)] = &[
    ("Acme Corp", "ACME CORP PAYROLL"),
    ("Globex Inc", "GLOBEX INC DIR DEP"),
    ("Initech LLC", "INITECH LLC PAYROLL PPD"),
    ("Umbrella Health", "UMBRELLA HEALTH SALARY"),
];
const LANDLORDS: &[&str] = &["Oakwood Property Management", "Bayview Apartments", "Mission Rentals LLC"];

/// The entity id of a named merchant, employer, landlord, intermediary or institution (a pure
/// function of the name, cached: it shows up on most transactions).
fn entity_id(name: &str) -> String {
    static KNOWN: LazyLock<HashMap<&'static str, String>> = LazyLock::new(|| {
        let names = MERCHANTS
            .iter()
            .flat_map(|m| [Some(m.name), m.via.as_ref().map(|v| v.name)])
            .flatten()
            .chain(EMPLOYERS.iter().map(|(name, _)| *name))
            .chain(LANDLORDS.iter().copied())
            .chain(INSTITUTIONS.iter().map(|i| i.name))
            .chain(["Zelle"]);
        names.map(|name| (name, ids::base62(tag(name), ID_LEN))).collect()
    });
    KNOWN.get(name).cloned().unwrap_or_else(|| ids::base62(tag(name), ID_LEN))
}

/// The stable facts of one Item's owner that shape its transactions.
///
/// `seed` (the *persona* seed: config seed, institution and username) decides everything a person would
/// recognise — salary, rent, which merchants on which days, amounts, names — so a new Item for the same login
/// at the same bank (a relink) shows the same history. `id_seed` (the persona seed plus the Item counter) only
/// names things: transaction ids differ between two Items of one persona, as Plaid's do.
#[derive(Debug, Clone)]
pub struct Persona {
    pub seed: u64,
    pub id_seed: u64,
    pub institution: &'static Institution,
    pub account_ids: Vec<String>,
    pub kinds: Vec<AccountKind>,
    /// Where logo and category-icon URLs point (Plaid's hosts or the offline assets).
    pub assets: AssetUrls,
    salary_cents: i64,
    rent_cents: i64,
    savings_cents: i64,
    employer: usize,
    landlord: usize,
    payday_parity: i32,
}

impl Persona {
    pub fn new(
        seed: u64,
        id_seed: u64,
        institution: &'static Institution,
        account_ids: Vec<String>,
        assets: AssetUrls,
    ) -> Self {
        let mut kinds = vec![AccountKind::Checking, AccountKind::Savings, AccountKind::Credit];
        if institution.has_crypto {
            kinds.push(AccountKind::Crypto);
        }
        let mut rng = ids::rng(mix(seed, tag("persona")));
        Self {
            seed,
            id_seed,
            institution,
            account_ids,
            kinds,
            assets,
            salary_cents: rng.gen_range(180_000..320_000),
            rent_cents: rng.gen_range(150_000..260_000) / 100 * 100,
            savings_cents: rng.gen_range(2..8) * 10_000,
            employer: rng.gen_range(0..EMPLOYERS.len()),
            landlord: rng.gen_range(0..LANDLORDS.len()),
            payday_parity: rng.gen_range(0..2),
        }
    }

    fn account_of(&self, kind: AccountKind) -> usize {
        self.kinds.iter().position(|k| *k == kind).unwrap_or(0)
    }

    /// The regular life of one day: scheduled items first, then a few card purchases.
    pub fn plan(&self, date: NaiveDate) -> Vec<Slot> {
        let mut slots = Vec::new();
        let week = date.num_days_from_ce().div_euclid(7);
        if date.weekday() == Weekday::Fri && week.rem_euclid(2) == self.payday_parity {
            slots.extend([Slot::Paycheck, Slot::SavingsOut, Slot::SavingsIn]);
        }
        if date.day() == 1 {
            slots.push(Slot::Rent);
        }
        if date.day() == 20 {
            slots.extend([Slot::CardPaymentOut, Slot::CardPaymentIn]);
        }
        if date.succ_opt().is_some_and(|d| d.day() == 1) {
            slots.push(Slot::Interest);
        }
        for (i, m) in MERCHANTS.iter().enumerate() {
            if m.monthly_on == Some(date.day()) {
                slots.push(Slot::Bill(i));
            }
        }
        let mut rng = ids::rng(mix(self.seed, mix(tag("day"), date.num_days_from_ce() as u64)));
        if rng.gen_ratio(1, 12) {
            slots.push(Slot::Atm);
        }
        if self.kinds.contains(&AccountKind::Crypto) && rng.gen_ratio(1, 6) {
            slots.push(Slot::Crypto);
        }
        let purchases = rng.gen_range(1..=4);
        slots.extend(std::iter::repeat_n(Slot::Purchase, purchases));
        slots
    }

    /// How many days a purchase made with this key stays pending (1–3).
    pub fn pending_lag(key: u64) -> i64 {
        1 + (ids::splitmix64(key ^ 0x5eed) % 3) as i64
    }

    /// The id of a generated transaction with this key: the content key plus this Item's id seed, so two
    /// Items of one persona never share an id.
    pub fn txn_id(&self, key: u64) -> String {
        ids::base62(mix(mix(key, self.id_seed), tag("txn-id")), ID_LEN)
    }

    fn day_amount(&self, date: NaiveDate, what: &str, lo: i64, hi: i64) -> i64 {
        let mut rng = ids::rng(mix(self.seed, mix(tag(what), date.num_days_from_ce() as u64)));
        rng.gen_range(lo..=hi)
    }

    fn times(
        &self,
        date: NaiveDate,
        authorized: Option<NaiveDate>,
        rng: &mut impl Rng,
    ) -> (Option<chrono::DateTime<Utc>>, Option<chrono::DateTime<Utc>>) {
        if !self.institution.provides_datetime {
            return (None, None);
        }
        let at = |d: NaiveDate, h: u32, m: u32| {
            NaiveTime::from_hms_opt(h, m, 0).map(|t| Utc.from_utc_datetime(&d.and_time(t)))
        };
        let h = rng.gen_range(7..22);
        let m = rng.gen_range(0..60);
        (at(date, rng.gen_range(0..6), 0), authorized.and_then(|d| at(d, h, m)))
    }

    /// Builds the transaction for `slot` on `date`.
    pub fn make(&self, slot: Slot, date: NaiveDate, key: u64, pending: bool) -> Txn {
        let mut rng = ids::rng(mix(self.seed, key));
        let id = self.txn_id(key);
        let usd = |cents: i64| Decimal::new(cents, 2);
        let inst = self.institution;
        let fi_counterparty = || Counterparty {
            name: inst.name.to_owned(),
            kind: "financial_institution",
            website: None,
            logo_url: None,
            entity_id: Some(entity_id(inst.name)),
            confidence_level: Some("HIGH"),
        };
        let mut t = match slot {
            Slot::Purchase | Slot::Bill(_) => {
                let merchant = match slot {
                    Slot::Bill(i) => &MERCHANTS[i],
                    _ => {
                        let choices = merchants::purchase_merchants();
                        &MERCHANTS[choices[rng.gen_range(0..choices.len())]]
                    }
                };
                let account = match slot {
                    Slot::Bill(_) if merchant.channel == Channel::Other => AccountKind::Checking,
                    Slot::Bill(_) => {
                        if merchant.pfc_detailed.starts_with("RENT_AND_UTILITIES") {
                            AccountKind::Checking
                        } else {
                            AccountKind::Credit
                        }
                    }
                    _ if rng.gen_ratio(3, 5) => AccountKind::Credit,
                    _ => AccountKind::Checking,
                };
                let cents = rng.gen_range(merchant.min_cents..=merchant.max_cents);
                let authorized = date - Duration::days(if pending { 0 } else { rng.gen_range(0..=2) });
                self.merchant_txn(merchant, account, usd(cents), date, authorized, pending, &mut rng)
            }
            Slot::Paycheck => {
                let (employer, raw) = EMPLOYERS[self.employer];
                let ppd = format!("{:010}", ids::splitmix64(self.seed) % 10_000_000_000);
                let mut t = self.plain(
                    AccountKind::Checking,
                    -usd(self.salary_cents),
                    date,
                    &format!("{raw} PPD ID: {ppd}"),
                    "INCOME_WAGES",
                    "VERY_HIGH",
                );
                t.merchant_name = Some(employer.to_owned());
                t.payment_meta.ppd_id = Some(ppd);
                t.payment_meta.payer = Some(employer.to_owned());
                t.counterparties.push(Counterparty {
                    name: employer.to_owned(),
                    kind: "income_source",
                    website: None,
                    logo_url: None,
                    entity_id: Some(entity_id(employer)),
                    confidence_level: Some("HIGH"),
                });
                t
            }
            Slot::Rent => {
                let landlord = LANDLORDS[self.landlord];
                let mut t = self.plain(
                    AccountKind::Checking,
                    usd(self.rent_cents),
                    date,
                    &format!("ZELLE PAYMENT TO {}", landlord.to_uppercase()),
                    "RENT_AND_UTILITIES_RENT",
                    "HIGH",
                );
                t.merchant_name = Some(landlord.to_owned());
                t.payment_meta.payee = Some(landlord.to_owned());
                t.payment_meta.payment_processor = Some("Zelle");
                t.counterparties.push(Counterparty {
                    name: landlord.to_owned(),
                    kind: "merchant",
                    website: None,
                    logo_url: None,
                    entity_id: Some(entity_id(landlord)),
                    confidence_level: Some("MEDIUM"),
                });
                t.counterparties.push(Counterparty {
                    name: "Zelle".to_owned(),
                    kind: "payment_app",
                    website: Some("zellepay.com"),
                    logo_url: Some(self.assets.logo(merchants::ZELLE_SLUG)),
                    entity_id: Some(entity_id("Zelle")),
                    confidence_level: Some("VERY_HIGH"),
                });
                t
            }
            Slot::CardPaymentOut | Slot::CardPaymentIn => {
                let cents = self.day_amount(date, "card-payment", 25_000, 140_000);
                let mut t = if slot == Slot::CardPaymentOut {
                    self.plain(
                        AccountKind::Checking,
                        usd(cents),
                        date,
                        &format!("{} CREDIT CARD AUTOPAY", inst.name.to_uppercase()),
                        "LOAN_PAYMENTS_CREDIT_CARD_PAYMENT",
                        "VERY_HIGH",
                    )
                } else {
                    self.plain(
                        AccountKind::Credit,
                        -usd(cents),
                        date,
                        "AUTOMATIC PAYMENT - THANK YOU",
                        "TRANSFER_IN_ACCOUNT_TRANSFER",
                        "VERY_HIGH",
                    )
                };
                t.counterparties.push(fi_counterparty());
                t
            }
            Slot::SavingsOut => self.plain(
                AccountKind::Checking,
                usd(self.savings_cents),
                date,
                "ONLINE TRANSFER TO SAVINGS",
                "TRANSFER_OUT_SAVINGS",
                "VERY_HIGH",
            ),
            Slot::SavingsIn => self.plain(
                AccountKind::Savings,
                -usd(self.savings_cents),
                date,
                "ONLINE TRANSFER FROM CHECKING",
                "TRANSFER_IN_SAVINGS",
                "VERY_HIGH",
            ),
            Slot::Interest => {
                let mut t = self.plain(
                    AccountKind::Savings,
                    -usd(self.day_amount(date, "interest", 40, 900)),
                    date,
                    "INTEREST PAYMENT",
                    "INCOME_INTEREST_EARNED",
                    "VERY_HIGH",
                );
                t.transaction_code = Some("interest");
                t.counterparties.push(fi_counterparty());
                t
            }
            Slot::Atm => {
                let mut t = self.plain(
                    AccountKind::Checking,
                    usd(rng.gen_range(2..=10) * 2000),
                    date,
                    "ATM WITHDRAWAL 24TH ST MISSION",
                    "TRANSFER_OUT_WITHDRAWAL",
                    "HIGH",
                );
                t.payment_channel = Channel::InStore.as_str();
                t.transaction_type = Channel::InStore.transaction_type();
                t.transaction_code = Some("atm");
                t
            }
            Slot::Crypto => {
                let sats: i64 = rng.gen_range(50_000..2_000_000);
                let (amount, name, pfc) = if rng.gen_ratio(3, 4) {
                    (-Decimal::new(sats, 8), "BTC RECEIVED", "TRANSFER_IN_INVESTMENT_AND_RETIREMENT_FUNDS")
                } else {
                    (Decimal::new(sats / 4, 8), "BTC SENT", "TRANSFER_OUT_INVESTMENT_AND_RETIREMENT_FUNDS")
                };
                let mut t = self.plain(AccountKind::Crypto, amount, date, name, pfc, "MEDIUM");
                t.iso_currency_code = None;
                t.unofficial_currency_code = Some("BTC");
                t.payment_channel = Channel::Online.as_str();
                t.transaction_type = Channel::Online.transaction_type();
                t
            }
        };
        t.transaction_id = id;
        t.pending = pending;
        let authorized = t.authorized_date;
        let (datetime, authorized_datetime) = self.times(date, authorized, &mut rng);
        t.datetime = if pending { None } else { datetime };
        t.authorized_datetime = authorized_datetime;
        t
    }

    /// A transfer, paycheck or fee: no merchant, no location.
    fn plain(
        &self,
        account: AccountKind,
        amount: Decimal,
        date: NaiveDate,
        name: &str,
        pfc_detailed: &'static str,
        confidence: &'static str,
    ) -> Txn {
        let primary = merchants::pfc_primary(pfc_detailed);
        Txn {
            transaction_id: String::new(),
            account_id: self.account_ids[self.account_of(account)].clone(),
            amount,
            iso_currency_code: Some("USD"),
            unofficial_currency_code: None,
            check_number: None,
            date,
            datetime: None,
            authorized_date: Some(date),
            authorized_datetime: None,
            location: Location::default(),
            name: name.to_owned(),
            merchant_name: None,
            merchant_entity_id: None,
            original_description: Some(name.to_owned()),
            logo_url: None,
            website: None,
            payment_meta: PaymentMeta::default(),
            payment_channel: Channel::Other.as_str(),
            transaction_type: Channel::Other.transaction_type(),
            transaction_code: None,
            pending: false,
            pending_transaction_id: None,
            account_owner: None,
            personal_finance_category: Pfc { primary, detailed: pfc_detailed, confidence_level: confidence },
            personal_finance_category_icon_url: self.assets.category_icon(primary),
            counterparties: Vec::new(),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn merchant_txn(
        &self,
        m: &'static Merchant,
        account: AccountKind,
        amount: Decimal,
        date: NaiveDate,
        authorized: NaiveDate,
        pending: bool,
        rng: &mut impl Rng,
    ) -> Txn {
        let mut t = self.plain(account, amount, date, m.raw, m.pfc_detailed, m.confidence);
        t.authorized_date = Some(authorized);
        // Posted transactions carry the cleaned-up name, except a few recent ones Plaid has not
        // enriched yet (they get cleaned later, which shows up as a modification).
        let cleaned = !pending && rng.gen_ratio(9, 10);
        t.name = if cleaned { m.name.to_owned() } else { m.raw.to_owned() };
        t.merchant_name = Some(m.name.to_owned());
        t.merchant_entity_id = Some(entity_id(m.name));
        t.logo_url = m.slug.map(|slug| self.assets.logo(slug));
        t.website = m.website;
        t.payment_channel = m.channel.as_str();
        t.transaction_type = m.channel.transaction_type();
        if let Some(s) = &m.store {
            t.location = Location {
                address: Some(s.address),
                city: Some(s.city),
                region: Some(s.region),
                postal_code: Some(s.postal_code),
                country: Some("US"),
                lat: s.lat.parse().ok(),
                lon: s.lon.parse().ok(),
                store_number: s.store_number,
            };
        }
        t.counterparties.push(Counterparty {
            name: m.name.to_owned(),
            kind: "merchant",
            website: m.website,
            logo_url: t.logo_url.clone(),
            entity_id: t.merchant_entity_id.clone(),
            confidence_level: Some(m.confidence),
        });
        if let Some(via) = &m.via {
            t.counterparties.push(Counterparty {
                name: via.name.to_owned(),
                kind: via.kind,
                website: Some(via.website),
                logo_url: Some(self.assets.logo(via.slug)),
                entity_id: Some(entity_id(via.name)),
                confidence_level: Some("VERY_HIGH"),
            });
            if via.kind == "payment_app" {
                t.payment_meta.payment_processor = Some(via.name);
            }
        }
        t
    }

    /// The posted version of a pending purchase: a new id that names the pending one, the posting
    /// date, the cleaned name, and for tipped merchants a slightly larger amount.
    pub fn post(&self, pending: &Txn, key: u64, date: NaiveDate) -> Txn {
        let mut rng = ids::rng(mix(self.seed, key));
        let mut t = pending.clone();
        t.transaction_id = self.txn_id(key);
        t.pending = false;
        t.pending_transaction_id = Some(pending.transaction_id.clone());
        t.date = date;
        if let Some(m) = MERCHANTS.iter().find(|m| Some(m.name) == pending.merchant_name.as_deref()) {
            t.name = m.name.to_owned();
            if m.tips {
                let tip_pct = rng.gen_range(15..=22);
                t.amount = (pending.amount * Decimal::new(100 + tip_pct, 2)).round_dp(2);
            }
        }
        if self.institution.provides_datetime {
            t.datetime =
                NaiveTime::from_hms_opt(rng.gen_range(0..6), 0, 0).map(|tm| Utc.from_utc_datetime(&date.and_time(tm)));
        }
        t
    }

    /// A later correction of a posted transaction: the enrichment cleans up a raw name, or the
    /// amount is adjusted (a tip or fee settled).
    pub fn modify(&self, txn: &Txn, key: u64) -> Txn {
        let mut rng = ids::rng(mix(self.seed, key));
        let mut t = txn.clone();
        match txn.merchant_name.as_deref().filter(|m| *m != txn.name) {
            Some(clean) => t.name = clean.to_owned(),
            None => {
                let cents = if t.unofficial_currency_code.is_some() {
                    Decimal::new(rng.gen_range(1..1000), 8)
                } else {
                    Decimal::new(rng.gen_range(1..=500), 2)
                };
                t.amount += cents;
            }
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::world::institutions;

    fn persona(seed: u64) -> Persona {
        let inst = institutions::find("ins_109511").expect("known institution");
        let ids = (0..4).map(|i| ids::base62(mix(seed, i), ID_LEN)).collect();
        Persona::new(seed, seed, inst, ids, AssetUrls::default())
    }

    #[test]
    fn generation_is_a_pure_function_of_the_key() {
        let p = persona(1);
        let d = NaiveDate::from_ymd_opt(2025, 3, 20).expect("valid date");
        let plan = p.plan(d);
        assert_eq!(plan, persona(1).plan(d));
        assert!(plan.contains(&Slot::CardPaymentOut));
        let a = p.make(Slot::Purchase, d, 77, false);
        assert_eq!(a, persona(1).make(Slot::Purchase, d, 77, false));
        assert_ne!(a.transaction_id, p.make(Slot::Purchase, d, 78, false).transaction_id);
        let crypto = p.make(Slot::Crypto, d, 5, false);
        assert_eq!(crypto.unofficial_currency_code, Some("BTC"));
        assert_eq!(crypto.iso_currency_code, None);
    }

    #[test]
    fn posting_names_the_pending_transaction() {
        let p = persona(2);
        let d = NaiveDate::from_ymd_opt(2025, 3, 20).expect("valid date");
        let pending = p.make(Slot::Purchase, d, 9, true);
        let posted = p.post(&pending, 10, d + Duration::days(2));
        assert!(pending.pending && !posted.pending);
        assert_eq!(posted.pending_transaction_id.as_deref(), Some(pending.transaction_id.as_str()));
        assert_ne!(posted.transaction_id, pending.transaction_id);
        assert!(posted.amount >= pending.amount);
    }
}
