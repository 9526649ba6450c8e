use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use shared::app::reconcile::Thresholds;
use shared::edge::config;
use shared::edge::telemetry;
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let sdk = config::aws_config().await;
    let deps = reconcile::Deps {
        store: config::store_from_env(&sdk)?,
        queue: config::queue_from_env(&sdk)?,
        admissions: config::admissions_queue_from_env(&sdk)?,
        messenger: Arc::new(config::twilio_client_from_env(&sdk).await?),
        thresholds: Thresholds::DEPLOYED,
        profile: config::sender_profile()?,
        rsvp_page_url: config::rsvp_page_url()?,
    };
    // The scheduled event carries nothing the run needs.
    run(service_fn(|_: LambdaEvent<serde_json::Value>| async {
        let report = reconcile::handle(&deps).await.map_err(Error::from)?;
        Ok::<_, Error>(serde_json::to_value(report)?)
    }))
    .await
}
