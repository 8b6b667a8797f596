//! banksync's own model of users, Items, accounts, transactions, sync runs, audit records and jobs: what the store
//! reads and writes and the services work with. Not Plaid's wire models (those are `plaid::models`): the sync engine
//! normalizes Plaid objects into these types following the architecture's rules. No I/O here.

mod accounts;
mod audit;
mod ids;
mod items;
mod jobs;
mod relink;
mod spending;
mod sync_runs;
mod sync_state;
mod transactions;
mod users;

pub use accounts::*;
pub use audit::*;
pub use ids::*;
pub use items::*;
pub use jobs::*;
pub use relink::*;
pub use spending::*;
pub use sync_runs::*;
pub use sync_state::*;
pub use transactions::*;
pub(crate) use transactions::{json_text, money_text, transaction_fields};
pub use users::*;
