use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use shared::adapters::sqs::SqsQueue;
use shared::edge::config::{self, env};
use shared::edge::deployment::QUEUE;
use shared::edge::telemetry;
use std::sync::Arc;
use std::time::Duration;

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let sdk = config::aws_config().await;
    let profile = config::sender_profile()?;
    let max_concurrency = config::number_or(env::SENDER_MAX_CONCURRENCY, QUEUE.max_concurrency)?;
    let deps = sender::Deps {
        store: config::store_from_env(&sdk)?,
        queue: Arc::new(
            SqsQueue::new(
                aws_sdk_sqs::Client::new(&sdk),
                config::required(env::QUEUE_URL)?,
            )
            .with_dead_letter(config::required(env::DEAD_LETTER_QUEUE_URL)?),
        ),
        messenger: Arc::new(config::twilio_client_from_env(&sdk).await?),
        webhook_url: config::required(env::WEBHOOK_URL)?,
        rsvp_page_url: config::rsvp_page_url()?,
        pacer: sender::Pacer::new(profile.rate_per_second, max_concurrency)?,
        profile,
        max_receive_count: QUEUE.max_receive_count,
        backoff: sender::Backoff::DEPLOYED,
    };
    let deps = &deps;
    run(service_fn(|event: LambdaEvent<_>| async move {
        // Lambda's deadline is wall-clock milliseconds; the sender counts on
        // the monotonic clock.
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis() as u64;
        let left = Duration::from_millis(event.context.deadline.saturating_sub(now_ms));
        let deadline = tokio::time::Instant::now() + left;
        Ok::<_, Error>(sender::handle_until(deps, event.payload, deadline).await)
    }))
    .await
}
