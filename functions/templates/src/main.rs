use lambda_http::{Error, run, service_fn};
use shared::edge::{config, telemetry};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let sdk = config::aws_config().await;
    let deps = templates::Deps {
        store: config::store_from_env(&sdk)?,
        content: std::sync::Arc::new(config::twilio_client_from_env(&sdk).await?),
    };
    run(service_fn(|req| async {
        Ok::<_, Error>(templates::handle(&deps, req).await)
    }))
    .await
}
