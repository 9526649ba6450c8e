use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use shared::adapters::twilio::TwilioClient;
use shared::app::reconcile::Thresholds;
use shared::edge::config::{self, env};
use shared::edge::telemetry;
use std::sync::Arc;
use std::time::Duration;

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let sdk = config::aws_config().await;
    let credentials = config::twilio_from_env(&sdk).await?;
    let api_base =
        std::env::var(env::TWILIO_API_BASE).unwrap_or_else(|_| "https://api.twilio.com".into());
    let deps = reconcile::Deps {
        store: config::store_from_env(&sdk)?,
        queue: config::queue_from_env(&sdk)?,
        messenger: Arc::new(TwilioClient::new(
            &api_base,
            credentials,
            Duration::from_secs(10),
        )),
        thresholds: Thresholds::DEPLOYED,
    };
    // The scheduled event carries nothing the run needs.
    run(service_fn(|_: LambdaEvent<serde_json::Value>| async {
        let report = reconcile::handle(&deps).await.map_err(Error::from)?;
        Ok::<_, Error>(serde_json::to_value(report)?)
    }))
    .await
}
