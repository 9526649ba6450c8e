use lambda_http::{Error, run, service_fn};
use shared::edge::{config, telemetry};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let sdk = config::aws_config().await;
    let deps = webhook::Deps {
        store: config::store_from_env(&sdk)?,
        provider: config::provider_webhook_from_env(&sdk).await?,
        reports: config::reports_queue_from_env(&sdk)?,
        profile: config::sender_profile()?,
        rsvp_page_url: config::rsvp_page_url()?,
    };
    run(service_fn(|req| async {
        Ok::<_, Error>(webhook::handle(&deps, req).await)
    }))
    .await
}
