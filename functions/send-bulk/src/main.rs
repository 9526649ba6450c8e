use lambda_http::{Error, run, service_fn};
use shared::edge::{config, telemetry};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let sdk = config::aws_config().await;
    let deps = send_bulk::Deps {
        store: config::store_from_env(&sdk)?,
        queue: config::queue_from_env(&sdk)?,
        admissions: config::admissions_queue_from_env(&sdk)?,
        profile: config::sender_profile()?,
        rates: config::message_rates()?,
    };
    run(service_fn(|req| async {
        Ok::<_, Error>(send_bulk::handle(&deps, req).await)
    }))
    .await
}
