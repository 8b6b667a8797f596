//! `banksync export` against the real validators: a two-year simulated history (checking, savings and a credit
//! card, with pending card purchases) exported as Beancount (`bean-check`), Ledger (`hledger check`), OFX
//! (`ofxtools`), CSV and JSON lines, and `--append` run twice adding nothing the second time.
//!
//! The validators come from scripts/test-deps.sh (PyPI `beancount` and `ofxtools` in <repo>/.venv, Debian's
//! `hledger`), or from PATH. Without them a test skips loudly, and fails when `CI` is set.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use banksync::domain::{NewAccount, TransactionFilter, TransactionId};
use banksync::export::{self, ExportOptions, Format, Pending};
use banksync::sync::{SyncOptions, SyncTrigger};
use rust_decimal::Decimal;

/// A synced Item with 730 days of history at First Platypus Bank (pending transactions, a credit card).
async fn synced_env() -> support::Env {
    let env = support::sqlite(support::sim_config(), SyncOptions::default()).await;
    let item = env.new_item("ins_109508", "user_good").await;
    env.engine.sync_item(&item, SyncTrigger::Manual).await.unwrap();
    env
}

/// Every stored transaction: (id, pending, Plaid-sign amount).
async fn stored(env: &support::Env) -> Vec<(String, bool, Decimal)> {
    let mut filter = TransactionFilter { limit: TransactionFilter::MAX_LIMIT, ..Default::default() };
    let mut all = Vec::new();
    loop {
        let page = env.store.list_transactions(&env.user.id, &filter).await.unwrap();
        all.extend(
            page.items.iter().map(|t| (t.transaction_id.as_str().to_owned(), t.fields.pending, t.fields.amount)),
        );
        match page.next_cursor {
            Some(c) => filter.after = Some(c),
            None => return all,
        }
    }
}

async fn export_text(env: &support::Env, opts: &ExportOptions) -> String {
    let mut out = Vec::new();
    export::export(&env.store, &env.user.id, opts, &mut out).await.unwrap();
    String::from_utf8(out).unwrap()
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).ancestors().nth(2).unwrap().to_owned()
}

/// `tool` from PATH, else from the test venv; `None` (after a loud message, or a failure under CI) when missing.
fn validator(tool: &str) -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|dir| dir.join(tool))
        .find(|p| p.is_file());
    let found = on_path.or_else(|| Some(repo_root().join(".venv/bin").join(tool)).filter(|p| p.is_file()));
    if found.is_none() {
        let message = format!("SKIPPED: `{tool}` not found (run scripts/test-deps.sh)");
        eprintln!("{message}");
        assert!(std::env::var_os("CI").is_none(), "{message} (CI is set, so a missing validator is a failure)");
    }
    found
}

fn run_ok(mut cmd: Command) -> String {
    let output = cmd.output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "{cmd:?} failed:\n{}", text.chars().take(4000).collect::<String>());
    text
}

fn bean_check(path: &Path) -> Option<()> {
    let tool = validator("bean-check")?;
    let mut cmd = Command::new(tool);
    cmd.arg(path);
    let out = run_ok(cmd);
    assert!(out.trim().is_empty(), "bean-check reported: {out}");
    Some(())
}

fn hledger_check(path: &Path) -> Option<()> {
    let tool = validator("hledger")?;
    let mut cmd = Command::new(tool);
    cmd.arg("check").arg("-f").arg(path);
    run_ok(cmd);
    Some(())
}

fn account_lines(text: &str) -> Vec<&str> {
    text.lines().filter(|l| l.starts_with("account ")).collect()
}

async fn rename_accounts(env: &support::Env) {
    let accounts = env.store.list_accounts(&env.user.id, &Default::default()).await.unwrap();
    let item = env.store.get_item(&env.user.id, &accounts[0].item_id).await.unwrap();
    let renamed: Vec<NewAccount> = accounts
        .iter()
        .map(|a| NewAccount {
            account_id: a.account_id.clone(),
            persistent_account_id: a.persistent_account_id.clone(),
            name: format!("Renamed {}", a.name),
            official_name: a.official_name.clone(),
            mask: Some("9999".into()),
            account_type: a.account_type.clone(),
            subtype: a.subtype.clone(),
            balances: a.balances.clone(),
            balance_as_of: a.balance_as_of,
            balance_source: a.balance_source,
        })
        .collect();
    env.store.upsert_accounts(&item, &renamed, true).await.unwrap();
    let after = env.store.list_accounts(&env.user.id, &Default::default()).await.unwrap();
    assert!(after.iter().all(|a| a.name.starts_with("Renamed")), "the rename was stored");
}

fn count(text: &str, needle: &str) -> usize {
    text.matches(needle).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beancount_passes_bean_check_with_each_pending_mode_and_append_twice_adds_nothing() {
    let env = synced_env().await;
    let all = stored(&env).await;
    let posted = all.iter().filter(|t| !t.1).count();
    assert!(all.iter().any(|t| t.1), "the history has pending transactions");
    assert!(posted > 1000, "two years of history: {posted}");
    let dir = tempfile::tempdir().unwrap();

    let text = export_text(&env, &ExportOptions::new(Format::Beancount)).await;
    assert_eq!(count(&text, "plaid_transaction_id:"), posted, "pending excluded by default");
    assert!(text.contains("open Liabilities:Ins109508:"), "the credit card is a liability");
    assert_eq!(count(&text, " balance "), 3, "one assertion per account");
    assert!(!text.contains(" ! "));
    let path = dir.path().join("export.beancount");
    std::fs::write(&path, &text).unwrap();
    bean_check(&path);

    let flagged =
        export_text(&env, &ExportOptions { pending: Pending::Flag, ..ExportOptions::new(Format::Beancount) }).await;
    assert_eq!(count(&flagged, "plaid_transaction_id:"), all.len());
    assert_eq!(count(&flagged, " ! "), all.len() - posted, "pending written with the ! flag");
    let path = dir.path().join("flagged.beancount");
    std::fs::write(&path, &flagged).unwrap();
    bean_check(&path);

    let path = dir.path().join("cron.beancount");
    let opts = ExportOptions::new(Format::Beancount);
    let mut report = Vec::new();
    let first = export::append(&env.store, &env.user.id, &opts, &path, &mut report).await.unwrap();
    assert_eq!(first.transactions as usize, posted);
    assert_eq!(first.balance_assertions, 3);
    let before = std::fs::read_to_string(&path).unwrap();
    let second = export::append(&env.store, &env.user.id, &opts, &path, &mut report).await.unwrap();
    assert_eq!((second.transactions, second.balance_assertions, second.changed), (0, 0, 0), "{second:?}");
    assert_eq!(second.already_present as usize, posted);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), before, "the second run changed nothing");
    assert!(report.is_empty(), "{}", String::from_utf8_lossy(&report));
    bean_check(&path);
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ledger_passes_hledger_check_and_append_twice_adds_nothing() {
    let env = synced_env().await;
    let all = stored(&env).await;
    let posted = all.iter().filter(|t| !t.1).count();
    let dir = tempfile::tempdir().unwrap();

    for pending in [Pending::Exclude, Pending::Include] {
        let text = export_text(&env, &ExportOptions { pending, ..ExportOptions::new(Format::Ledger) }).await;
        let expected = if pending == Pending::Exclude { posted } else { all.len() };
        assert_eq!(count(&text, "plaid_transaction_id:"), expected);
        assert_eq!(count(&text, " = "), 3, "one balance assertion per account");
        assert!(text.contains("account Liabilities:Ins109508:"));
        let path = dir.path().join(format!("{pending:?}.journal"));
        std::fs::write(&path, &text).unwrap();
        hledger_check(&path);
    }

    let path = dir.path().join("cron.journal");
    let opts = ExportOptions::new(Format::Ledger);
    let mut report = Vec::new();
    let first = export::append(&env.store, &env.user.id, &opts, &path, &mut report).await.unwrap();
    assert_eq!(first.transactions as usize, posted);
    let before = std::fs::read_to_string(&path).unwrap();
    // The bank renames every account and changes its mask: the journal names stay (they are stored).
    rename_accounts(&env).await;
    let renamed = export_text(&env, &opts).await;
    assert!(!renamed.contains("Renamed"), "journal names are kept across renames");
    assert_eq!(account_lines(&renamed), account_lines(&before));
    let second = export::append(&env.store, &env.user.id, &opts, &path, &mut report).await.unwrap();
    assert_eq!((second.transactions, second.balance_assertions, second.changed), (0, 0, 0), "{second:?}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), before);
    hledger_check(&path);
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ofx_parses_with_ofxtools_one_statement_per_account() {
    let env = synced_env().await;
    let posted = stored(&env).await.iter().filter(|t| !t.1).count();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("export.ofx");
    let mut file = std::fs::File::create(&path).unwrap();
    let summary = export::export(&env.store, &env.user.id, &ExportOptions::new(Format::Ofx), &mut file).await.unwrap();
    drop(file);
    assert_eq!(summary.transactions as usize, posted, "pending left out");
    assert_eq!(summary.accounts, 3);
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(count(&text, "<STMTRS>"), 2, "checking and savings");
    assert_eq!(count(&text, "<CCSTMTRS>"), 1, "the credit card");

    let Some(ofxget) = validator("ofxget") else { return };
    let script = "import sys\nfrom ofxtools.Parser import OFXTree\nt = OFXTree()\nt.parse(sys.argv[1])\nofx = t.convert()\n\
                  print(len(ofx.statements), sum(len(s.transactions) for s in ofx.statements))";
    let mut cmd = Command::new(ofxget.with_file_name("python"));
    cmd.arg("-c").arg(script).arg(&path);
    let out = run_ok(cmd);
    assert_eq!(out.trim(), format!("3 {posted}"), "ofxtools read every statement and transaction");
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csv_and_json_carry_exact_amounts_and_append_reports_what_plaid_changed() {
    let env = synced_env().await;
    let all = stored(&env).await;
    let posted: Vec<_> = all.iter().filter(|t| !t.1).collect();

    let opts = ExportOptions { pending: Pending::Include, ..ExportOptions::new(Format::Json) };
    let json = export_text(&env, &opts).await;
    let lines: Vec<serde_json::Value> = json.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), all.len());
    let amounts: std::collections::HashMap<&str, &Decimal> = all.iter().map(|(id, _, a)| (id.as_str(), a)).collect();
    for line in &lines {
        let amount = amounts[line["transaction_id"].as_str().unwrap()];
        assert_eq!(line["amount"], amount.to_string(), "exact decimal text");
    }
    let sample = env.store.get_transaction(&env.user.id, &TransactionId::new(all[0].0.clone())).await.unwrap();
    let mut api = serde_json::to_value(banksync::http::views::TransactionView::of(sample)).unwrap();
    // `logo_path` is this server's logo proxy route (`/api/logos/…`): meaningless in a file, so exports leave it out.
    api.as_object_mut().unwrap().remove("logo_path");
    let line = lines.iter().find(|l| l["transaction_id"] == all[0].0.as_str()).unwrap();
    assert_eq!(line, &api, "a line is the API's view of the transaction");
    let times: Vec<&str> = lines.iter().map(|l| l["datetime"].as_str().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "oldest first");

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("export.csv");
    let opts = ExportOptions::new(Format::Csv);
    let mut report = Vec::new();
    export::append(&env.store, &env.user.id, &opts, &path, &mut report).await.unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.starts_with("date,transaction_id,"));
    assert_eq!(text.matches("\r\n").count(), posted.len() + 1, "a header and one row each");
    let second = export::append(&env.store, &env.user.id, &opts, &path, &mut report).await.unwrap();
    assert_eq!((second.transactions, second.changed), (0, 0));

    // The user's file says one transaction had another amount, and holds one Plaid no longer has.
    let (changed_id, _, amount) = posted[0];
    let edited = text.clone();
    let row_start = edited.find(changed_id.as_str()).unwrap();
    let row_end = row_start + edited[row_start..].find("\r\n").unwrap();
    let row = &edited[row_start..row_end];
    let bumped = row.replacen(&format!(",{amount},"), &format!(",{},", amount + Decimal::ONE), 1);
    assert_ne!(row, bumped);
    let edited = format!(
        "{}{}{}2020-01-01,gone_txn,x,x,1.00,USD,,Gone,,,,false,,\r\n",
        &edited[..row_start],
        bumped,
        &edited[row_end..]
    );
    std::fs::write(&path, &edited).unwrap();
    let mut report = Vec::new();
    let third = export::append(&env.store, &env.user.id, &opts, &path, &mut report).await.unwrap();
    let report = String::from_utf8(report).unwrap();
    assert_eq!((third.transactions, third.changed), (0, 2), "{report}");
    assert!(report.contains(&format!("modified at Plaid: {changed_id}")), "{report}");
    assert!(report.contains(&format!("amount {} -> {amount}", amount + Decimal::ONE)), "{report}");
    assert!(report.contains("removed at Plaid (or now pending/excluded): gone_txn 2020-01-01"), "{report}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), edited, "the user's file is never rewritten");
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_options_get_clear_errors() {
    let env = support::sqlite(support::sim_config(), SyncOptions::default()).await;
    assert!("xlsx".parse::<Format>().unwrap_err().to_string().contains("csv, json, ofx, beancount or ledger"));
    assert!("maybe".parse::<Pending>().is_err());
    let opts = ExportOptions {
        start: Some("2025-02-01".parse().unwrap()),
        end: Some("2025-01-01".parse().unwrap()),
        ..ExportOptions::new(Format::Csv)
    };
    let err = export::export(&env.store, &env.user.id, &opts, &mut Vec::new()).await.unwrap_err();
    assert!(err.to_string().contains("is after --end"), "{err}");
    let dir = tempfile::tempdir().unwrap();
    let err = export::append(
        &env.store,
        &env.user.id,
        &ExportOptions::new(Format::Ofx),
        &dir.path().join("x.ofx"),
        &mut Vec::new(),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("not ofx"), "{err}");
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_exports_the_same_journal_and_keeps_its_names() {
    let Some(env) = support::postgres(support::sim_config(), SyncOptions::default()).await else { return };
    let item = env.new_item("ins_109508", "user_good").await;
    env.engine.sync_item(&item, SyncTrigger::Manual).await.unwrap();
    let posted = stored(&env).await.iter().filter(|t| !t.1).count();
    let opts = ExportOptions::new(Format::Ledger);
    let first = export_text(&env, &opts).await;
    assert_eq!(count(&first, "plaid_transaction_id:"), posted);
    rename_accounts(&env).await;
    let second = export_text(&env, &opts).await;
    assert_eq!(account_lines(&second), account_lines(&first), "names stored in PostgreSQL too");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pg.journal");
    std::fs::write(&path, &second).unwrap();
    hledger_check(&path);
    env.finish().await;
}
