//! Changes to an Item's data that happen without a client asking: a new Item's data becoming
//! ready (first the last 30 days, then the full history) and the bank answering a
//! `/transactions/refresh`. Both are due at a time on the simulator's clock; an Item is brought up
//! to date (`settle`) by every endpoint that reads it, and by a background watcher so that
//! SYNC_UPDATES_AVAILABLE goes out on time even when nobody asks.

use std::sync::Arc;
use std::time::Duration;

use crate::api::sandbox::webhook_body;
use crate::item::{Item, Phase};
use crate::state::SimState;

/// How often a watcher looks at an Item with something due.
const WATCH_INTERVAL: Duration = Duration::from_millis(100);

/// Brings the Item up to the simulator's clock and tells the client about it: one
/// SYNC_UPDATES_AVAILABLE (with the phase's flags) when the data reached a phase the client has
/// not been told about, or when a refresh's pull changed transactions. Plaid only sends it once
/// sync has been called on the Item.
pub fn settle(state: &SimState, item: &mut Item) {
    let settled = item.settle(state.clock.now());
    if !item.sync_called {
        return;
    }
    let new_phase = item.phase() > item.announced;
    let pulled_changes = settled.pulled.is_some_and(|r| r.changed());
    if new_phase || pulled_changes {
        item.announced = item.announced.max(item.phase());
        if let Some(body) = webhook_body(state, item, "TRANSACTIONS", "SYNC_UPDATES_AVAILABLE") {
            if state.fire_item_webhook(item, body).is_err() {
                tracing::warn!(item_id = %item.item_id, "SYNC_UPDATES_AVAILABLE not sent: its record could not be saved");
            }
        }
    }
}

/// Whether something is due later that the client must hear about.
fn pending(item: &Item) -> bool {
    (item.sync_called && item.phase() < Phase::Historical) || item.pull_due.is_some()
}

/// Starts a watcher for the Item if something is due later and none runs. The watcher holds
/// the simulator weakly (a dropped simulator is not kept alive by it) and ends when nothing is
/// due or the Item is removed.
pub fn watch(state: &Arc<SimState>, item: &mut Item) {
    if item.watching || !pending(item) {
        return;
    }
    item.watching = true;
    let weak = Arc::downgrade(state);
    let item_id = item.item_id.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(WATCH_INTERVAL).await;
            let Some(state) = weak.upgrade() else {
                return;
            };
            // The lock order is always items map, then Item.
            let Some(shared) = state.item_by_id(&item_id) else {
                return;
            };
            let mut item = shared.lock();
            settle(&state, &mut item);
            if !pending(&item) {
                item.watching = false;
                return;
            }
        }
    });
}
