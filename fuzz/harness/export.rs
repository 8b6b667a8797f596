//! Fuzz harness: the export writers (CSV, JSON lines, OFX, Beancount, Ledger) over a transaction whose every
//! Plaid-controlled text (name, merchant, currency, categories, amount, dates) and the user's note and category come
//! from untrusted bytes, stored through the real store (SQLite) and exported through `banksync::export::export`.
//!
//! Shared by `fuzz/fuzz_targets/export.rs` and the replay test `crates/banksync/tests/fuzz_corpus.rs`.
//! Input: fields separated by `\x1f`: name, merchant_name, amount, iso currency, date (YYYY-MM-DD), note, category,
//! pfc primary, pending ("1"). Missing fields take a default; invalid amounts or dates are skipped (the decoder
//! refuses them before anything is stored).
//! Properties: no panic and no error from any writer; a CSV export parses back (RFC 4180) to one record per
//! transaction with the name, merchant, note and amount intact; each JSON line parses and carries the same texts;
//! in the journals (Beancount, Ledger) and OFX the user's text cannot start a line of its own, so it cannot inject
//! a directive, a posting or an element.

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::{Arc, OnceLock};

use banksync::domain::{
    BalanceSource, Balances, Item, NewAccount, NewItem, SyncBatch, SyncPage, TransactionId, User, UserFieldsPatch,
};
use banksync::export::{self, ExportOptions, Format, Pending};
use banksync::store::Store;
use banksync::vault::{MasterKey, Vault};
use rust_decimal::Decimal;
use serde_json::json;

struct Fixture {
    runtime: tokio::runtime::Runtime,
    store: Arc<Store>,
    user: User,
    item: Item,
    _dir: PathBuf,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let dir = std::env::temp_dir().join(format!("banksync-fuzz-export-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let url = format!("sqlite://{}", dir.join("banksync.db").display());
        let (store, user, item) = runtime.block_on(async {
            let store = banksync::store::connect(&url).await.unwrap();
            store.migrate().await.unwrap();
            let user = store.create_user("fuzz", "not-a-hash").await.unwrap();
            let vault = Vault::new(MasterKey::from_bytes([7; 32]));
            let item_id = "fuzz-item".to_owned();
            let sealed = vault.encrypt(&"access-sandbox-fuzz".to_owned().into(), &item_id).unwrap();
            let item = store
                .insert_item(&NewItem {
                    item_id: item_id.into(),
                    user_id: user.id.clone(),
                    institution_id: Some("ins_fuzz".into()),
                    institution_name: Some("Fuzz \"Bank\" & Co <1>".into()),
                    access_token: sealed,
                })
                .await
                .unwrap();
            let account = NewAccount {
                account_id: "fuzz-account".to_owned().into(),
                persistent_account_id: None,
                name: "Checking; \"main\"".into(),
                official_name: None,
                mask: Some("0000".into()),
                account_type: "depository".into(),
                subtype: Some("checking".into()),
                balances: Balances {
                    available: None,
                    current: Some(Decimal::new(10_000, 2)),
                    limit: None,
                    currency: Some("USD".into()),
                    currency_is_official: true,
                },
                balance_as_of: Some(chrono::Utc::now()),
                balance_source: BalanceSource::Cached,
            };
            store.upsert_accounts(&item, &[account], true).await.unwrap();
            (store, user, item)
        });
        Fixture { runtime, store, user, item, _dir: dir }
    })
}

/// The fields of one input.
struct Fields<'a> {
    name: &'a str,
    merchant: &'a str,
    amount: &'a str,
    currency: &'a str,
    date: &'a str,
    note: &'a str,
    category: &'a str,
    pfc: &'a str,
    pending: bool,
}

impl Fields<'_> {
    /// The texts the user or Plaid controls, in [`export_all`]'s order: name, merchant, note, category.
    fn texts(&self) -> [&str; 4] {
        [self.name, self.merchant, self.note, self.category]
    }
}

fn fields(text: &str) -> Fields<'_> {
    let mut parts = text.split('\x1f');
    let mut next = |default| parts.next().unwrap_or(default);
    Fields {
        name: next("Coffee"),
        merchant: next(""),
        amount: next("4.50"),
        currency: next("USD"),
        date: next("2026-01-15"),
        note: next(""),
        category: next(""),
        pfc: next(""),
        pending: next("") == "1",
    }
}

/// A minimal RFC 4180 reader (quoted fields may hold commas, quotes and line breaks).
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let (mut records, mut record, mut field, mut quoted) = (Vec::new(), Vec::new(), String::new(), false);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, _) => field.push(c),
            (false, '"') => quoted = true,
            (false, ',') => record.push(std::mem::take(&mut field)),
            (false, '\r') if chars.peek() == Some(&'\n') => {}
            (false, '\n') => {
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
            }
            (false, _) => field.push(c),
        }
    }
    records
}

/// Line breaks as a reader of the journal or OFX file could see them: `\n`, `\r\n` and a lone `\r` each end a line.
fn line_count(output: &str) -> usize {
    output.replace("\r\n", "\n").split(['\n', '\r']).count()
}

/// The user-controlled texts of `f` with every line break and markup character turned into a letter: the same
/// transaction, with no text that could start a line of its own or open an element (a letter, not a space, so no
/// text becomes blank and loses its field).
fn neutralized(f: &Fields<'_>) -> [String; 4] {
    f.texts().map(|text| text.replace(NEUTRALIZED, "x"))
}

/// What [`neutralized`] replaces.
const NEUTRALIZED: [char; 5] = ['\n', '\r', '<', '>', '&'];

/// Stores the transaction (through the real decoder, normalizer and sync write) with `texts` as its name, merchant,
/// note and category, and exports it in every format. `None` when the decoder or normalizer refuses the input.
fn export_all(f: &Fields<'_>, amount: Decimal, date: chrono::NaiveDate, texts: [&str; 4]) -> Option<Exported> {
    let [name, merchant, note, category] = texts;
    // Plaid's JSON as the sync engine would receive it; the decoder and normalizer are the real ones.
    let raw = json!({
        "transaction_id": "fuzz-txn",
        "account_id": "fuzz-account",
        // A JSON number with the decimal's exact text (Plaid sends numbers, never strings).
        "amount": serde_json::Value::from_str(&amount.to_string()).unwrap(),
        "iso_currency_code": (!f.currency.is_empty()).then_some(f.currency),
        "date": date.to_string(),
        "name": name,
        "merchant_name": (!merchant.is_empty()).then_some(merchant),
        "pending": f.pending,
        "personal_finance_category": (!f.pfc.is_empty()).then(|| json!({"primary": f.pfc, "detailed": format!("{}_X", f.pfc)})),
    });
    let t = plaid::Transaction::from_value(raw).ok()?;
    let normalized = banksync::normalize::transaction(&t).ok()?;
    let fx = fixture();
    let note = (!note.is_empty()).then(|| note.to_owned());
    let category = (!category.is_empty()).then(|| category.to_owned());
    let outputs = fx.runtime.block_on(async {
        let batch = SyncBatch {
            page: SyncPage { added: vec![normalized], modified: Vec::new(), removed: Vec::new() },
            next_cursor: None,
        };
        fx.store.apply_sync(&fx.item, &batch).await.unwrap();
        let patch = UserFieldsPatch { note: Some(note.clone()), category: Some(category.clone()) };
        let id = TransactionId::from("fuzz-txn".to_owned());
        fx.store.update_transaction_user_fields(&fx.user.id, &id, &patch).await.unwrap();
        let mut outputs = Vec::new();
        for format in [Format::Csv, Format::Json, Format::Ofx, Format::Beancount, Format::Ledger] {
            let mut opts = ExportOptions::new(format);
            opts.pending = Pending::Include;
            let mut out = Vec::new();
            let summary = export::export(&fx.store, &fx.user.id, &opts, &mut out)
                .await
                .unwrap_or_else(|e| panic!("{format:?} export failed: {e}"));
            // OFX never carries pending transactions (they have no stable FITID yet); every other format does here.
            let expected = u64::from(format != Format::Ofx || !f.pending);
            assert_eq!(summary.transactions, expected, "{format:?}");
            outputs.push((format, String::from_utf8(out).expect("exports are UTF-8")));
        }
        outputs
    });
    Some(Exported { t, note, outputs })
}

struct Exported {
    t: plaid::Transaction,
    note: Option<String>,
    outputs: Vec<(Format, String)>,
}

/// Runs one input; panics when a property breaks. Returns whether a transaction was exported.
pub fn run(data: &[u8]) -> bool {
    let text = String::from_utf8_lossy(data);
    let f = fields(&text);
    let Ok(amount) = Decimal::from_str(f.amount.trim()) else { return false };
    let Ok(date) = chrono::NaiveDate::parse_from_str(f.date, "%Y-%m-%d") else { return false };
    let Some(Exported { t, note, outputs }) = export_all(&f, amount, date, f.texts()) else { return false };
    // The same transaction with its line breaks and markup characters neutralized: in the journals and OFX the
    // user's texts may change the lines' contents, never their number (a text that started a line of its own would
    // add one), and in OFX never the number of elements (a `<` that is not escaped would open one). Compared with the
    // writer's own output, so a text that happens to be (part of) the format's own markup cannot pass for an injection.
    let needs_neutral = f.texts().iter().any(|text| text.contains(NEUTRALIZED));
    let neutral_outputs = if needs_neutral {
        let neutral = neutralized(&f);
        export_all(&f, amount, date, neutral.each_ref().map(String::as_str)).map(|e| e.outputs)
    } else {
        None
    };
    for (format, output) in outputs {
        match format {
            Format::Csv => {
                let records = parse_csv(&output);
                assert_eq!(records.len(), 2, "CSV: a header and one record: {output:?}");
                let (header, row) = (&records[0], &records[1]);
                let col = |name: &str| &row[header.iter().position(|h| h == name).unwrap()];
                assert_eq!(col("name"), &t.name);
                assert_eq!(col("payee"), t.merchant_name.as_deref().unwrap_or(""));
                assert_eq!(col("note"), note.as_deref().unwrap_or(""));
                assert_eq!(Decimal::from_str(col("amount")).unwrap(), amount);
            }
            Format::Json => {
                let lines: Vec<&str> = output.lines().collect();
                assert_eq!(lines.len(), 1, "JSON lines: {output:?}");
                let v: serde_json::Value = serde_json::from_str(lines[0]).expect("a JSON line");
                assert_eq!(v["name"], t.name);
                assert_eq!(v["user_note"].as_str(), note.as_deref());
            }
            Format::Ofx | Format::Beancount | Format::Ledger => {
                let Some((_, neutral)) = neutral_outputs.as_ref().and_then(|o| o.iter().find(|(f, _)| *f == format))
                else {
                    continue;
                };
                assert!(
                    line_count(&output) <= line_count(neutral),
                    "{format:?}: a line break in the user's text started a line of its own:\n{output}\n\
                     (the same transaction with its texts neutralized:)\n{neutral}"
                );
                if format == Format::Ofx {
                    assert!(
                        output.matches('<').count() <= neutral.matches('<').count(),
                        "OFX: the user's text opened an element:\n{output}\n(neutralized:)\n{neutral}"
                    );
                }
            }
        }
    }
    true
}
