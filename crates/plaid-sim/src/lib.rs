//! plaid-sim: an offline Plaid. The same API over HTTP (Plaid's validation, error bodies and
//! spec-valid responses), a deterministic bank world built from a seed, the pending→posted life
//! cycle, ES256-signed webhooks, a backend for the drop-in Link script, fault injection and
//! ground-truth inspection under `/sim/*`.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use plaid_sim::{SimConfig, Simulator};
//! let sim = Simulator::new(SimConfig::default()).spawn("127.0.0.1:0".parse().unwrap()).await?;
//! println!("Plaid at {}", sim.url());
//! # Ok(()) }
//! ```

pub mod api;
pub mod assets;
pub mod clock;
pub mod config;
pub mod control;
pub mod cursor;
pub mod exchanges;
pub mod faults;
pub mod ids;
pub mod item;
pub mod model;
pub mod persist;
pub mod png;
pub mod rate_limit;
pub mod state;
pub mod updates;
pub mod webhooks;
pub mod world;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};
use tokio::sync::oneshot;
use tower_http::cors::CorsLayer;

pub use config::SimConfig;
use state::SimState;

/// A simulator: cheap to clone (shared state).
#[derive(Clone)]
pub struct Simulator {
    state: Arc<SimState>,
}

impl Simulator {
    /// A simulator; with `config.state_dir` set, the one saved there (see [`Simulator::open`]).
    ///
    /// # Panics
    /// If `config.state_dir` is set and its state cannot be loaded: use `open` to handle that.
    pub fn new(config: SimConfig) -> Self {
        match Self::open(config) {
            Ok(sim) => sim,
            Err(e) => panic!("cannot open the simulator state: {e}"),
        }
    }

    /// A simulator that keeps its state in `config.state_dir` (restoring what is saved there, see
    /// [`persist`]), or a fresh in-memory one when it is None. Fails with a message naming the
    /// problem when the directory cannot be used or holds a journal this build cannot replay.
    pub fn open(config: SimConfig) -> std::io::Result<Self> {
        Ok(Self { state: Arc::new(SimState::open(config)?) })
    }

    pub fn config(&self) -> &SimConfig {
        &self.state.config
    }

    /// All routes (Plaid API, Link backend, `/sim/*`), mountable in another app.
    pub fn router(&self) -> Router {
        let plaid = api::router().layer(axum::middleware::from_fn_with_state(self.state.clone(), exchanges::record));
        // The Link page lives on another origin, so the Link backend allows CORS.
        let link = Router::new()
            .route("/link/v2/stable/link-initialize.js", get(api::link_session::script))
            .route("/link/session/start", post(api::link_session::start))
            .route("/link/session/submit", post(api::link_session::submit))
            .route("/link/session/oauth", post(api::oauth::begin_route))
            .route("/link/session/oauth/complete", post(api::oauth::complete_route))
            .layer(CorsLayer::permissive());
        // The OAuth institution's bank page (a top-level navigation: no CORS).
        let bank = Router::new()
            .route("/sim/oauth/authorize", get(api::oauth::authorize_page).post(api::oauth::authorize_approve))
            .route("/sim/oauth/bank.css", get(api::oauth::bank_css));
        plaid.merge(link).merge(bank).merge(control::router()).with_state(self.state.clone())
    }

    /// Serves the simulator on `addr` ("127.0.0.1:0" picks a free port).
    pub async fn spawn(self, addr: SocketAddr) -> std::io::Result<RunningSim> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let (tx, rx) = oneshot::channel::<()>();
        let app = self.router();
        let task = tokio::spawn(async move {
            let shutdown = async {
                let _ = rx.await;
            };
            if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(shutdown).await {
                tracing::error!(error = %e, "plaid-sim server stopped");
            }
        });
        Ok(RunningSim { addr, simulator: self, shutdown: Some(tx), task: Some(task) })
    }
}

/// A simulator serving on a socket. Dropping it stops the server.
pub struct RunningSim {
    addr: SocketAddr,
    simulator: Simulator,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl RunningSim {
    /// `http://127.0.0.1:PORT` (no trailing slash).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn simulator(&self) -> &Simulator {
        &self.simulator
    }

    /// Stops accepting connections and waits for the server task to end. Hung requests (an
    /// injected `hang` fault) are cut off rather than waited for.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(mut task) = self.task.take() {
            if tokio::time::timeout(std::time::Duration::from_secs(2), &mut task).await.is_err() {
                tracing::warn!("plaid-sim shutdown timed out; aborting open connections");
                task.abort();
            }
        }
    }
}

impl Drop for RunningSim {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
