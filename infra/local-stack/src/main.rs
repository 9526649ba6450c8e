//! `make dev`: the whole stack on 127.0.0.1 until Ctrl-C.

use local_stack::emulators::{Emulator, free_port, spawn_fauxqs, spawn_moto};
use local_stack::{GivenEndpoints, LocalStack, ResourceNames, StackOptions, TwilioSetup};
use std::env;
use std::time::Duration;

fn port(name: &str, default: u16) -> Result<u16, Box<dyn std::error::Error>> {
    match env::var(name) {
        Ok(v) => v
            .parse()
            .map_err(|_| format!("{name}={v} is not a port number").into()),
        Err(_) => Ok(default),
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    shared::edge::telemetry::init();
    let api_port = port("PORT", 3000)?;
    let sim_port = port("TWILIO_SIM_PORT", 3001)?;

    // An endpoint given in the environment is used as is (LocalStack, a
    // fault-injecting proxy, a development AWS account); only the emulators
    // for the others start.
    let given = GivenEndpoints::from_lookup(|name| env::var(name).ok());
    let moto = match given.needs_moto() {
        true => Some(spawn_moto(free_port()).await?),
        false => None,
    };
    let fauxqs = match given.needs_fauxqs() {
        true => Some(spawn_fauxqs(free_port()).await?),
        false => None,
    };
    let emulator = |e: &Option<Emulator>| e.as_ref().map(Emulator::endpoint).unwrap_or_default();
    let aws = given.or(&emulator(&moto), &emulator(&fauxqs));

    // Real Twilio when TWILIO_API_BASE names it; the simulator otherwise.
    let sim_config = twilio_sim::SimConfig::from_env()?;
    let (api_base, _sim) = match env::var("TWILIO_API_BASE") {
        Ok(base) if !base.is_empty() => (base, None),
        _ => {
            let listener = tokio::net::TcpListener::bind(("127.0.0.1", sim_port)).await?;
            sim_config.knobs.validate()?;
            let sim = twilio_sim::spawn(listener, sim_config.clone()).await?;
            (sim.base_url(), Some(sim))
        }
    };
    let twilio = TwilioSetup {
        account_sid: sim_config.account_sid.clone(),
        auth_token: sim_config.auth_token.clone(),
        from: env::var("TWILIO_FROM").unwrap_or_else(|_| "+14155238886".into()),
        api_base: api_base.clone(),
    };
    let mut options = StackOptions::new(
        api_port,
        aws.clone(),
        ResourceNames::with_suffix(""),
        twilio,
    );
    options.webhook_public_url = shared::edge::config::webhook_public_url()?;
    // The deployed functions' settings, from the same environment names.
    options.profile = shared::edge::config::sender_profile()?;
    options.rates = shared::edge::config::message_rates()?;
    // A short "day" (DAILY_WINDOW_SECONDS, to try the limit by hand) frees
    // places within seconds: release waiting invitations as often.
    let window = Duration::from_secs(options.profile.window_seconds as u64);
    options.reconcile_every = options
        .reconcile_every
        .min((window / 10).max(Duration::from_secs(1)));
    let stack = LocalStack::start(options).await?;

    println!("local stack ready");
    println!("  API and dashboard  {}", stack.api_url);
    println!("  webhook            {}", stack.webhook_url);
    println!("  Twilio API         {api_base}");
    println!(
        "  DynamoDB           {}   (table {})",
        aws.dynamodb, stack.names.table
    );
    println!(
        "  Secrets Manager    {}   (secret {})",
        aws.secretsmanager, stack.names.twilio_secret
    );
    println!(
        "  SQS                {}   (queue {})",
        aws.sqs, stack.queue_url
    );
    println!("Ctrl-C stops everything.");

    tokio::signal::ctrl_c().await?;
    stack.stop().await;
    Ok(())
}
