//! Serves the simulator standalone: `cargo run -p plaid-sim --example serve -- 127.0.0.1:4000`.
//! Records exchanges so `GET /sim/exchanges` shows the traffic. (The product's own entry point is
//! `banksync sim --listen ADDR`.)

use plaid_sim::{SimConfig, Simulator};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:4000".to_owned())
        .parse()
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let config = SimConfig { record_exchanges: true, ..SimConfig::default() };
    let sim = Simulator::new(config).spawn(addr).await?;
    println!("plaid-sim listening on {}", sim.url());
    tokio::signal::ctrl_c().await?;
    sim.shutdown().await;
    Ok(())
}
