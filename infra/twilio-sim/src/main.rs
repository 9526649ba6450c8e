//! Runs the Twilio simulator on 127.0.0.1:$TWILIO_SIM_PORT (default 3001) until Ctrl-C.

use std::process::ExitCode;

use tracing_subscriber::EnvFilter;
use twilio_sim::SimConfig;

const DEFAULT_PORT: u16 = 3001;

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("twilio-sim: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let config = SimConfig::from_env()?;
    let port = match std::env::var("TWILIO_SIM_PORT") {
        Ok(port) => port
            .parse::<u16>()
            .map_err(|e| format!("TWILIO_SIM_PORT={port:?}: {e}"))?,
        Err(_) => DEFAULT_PORT,
    };
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let sim = twilio_sim::spawn(listener, config).await?;
    println!("twilio-sim listening on {}", sim.base_url());
    tokio::signal::ctrl_c().await?;
    sim.shutdown().await?;
    Ok(())
}
