use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use shared::edge::config::{self, env};
use shared::edge::deployment::{QUEUE, SEND_BACKOFF};
use shared::edge::telemetry;
use std::time::Duration;

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let sdk = config::aws_config().await;
    let profile = config::sender_profile()?;
    let max_concurrency = config::number_or(env::SENDER_MAX_CONCURRENCY, QUEUE.max_concurrency)?;
    let deps = sender::Deps {
        store: config::store_from_env(&sdk)?,
        queue: config::queue_with_dead_letter_from_env(&sdk)?,
        messenger: config::messenger_from_env(&sdk).await?,
        rsvp_page_url: config::rsvp_page_url()?,
        pacer: config::pacer(profile.rate_per_second, max_concurrency)?,
        profile,
        max_receive_count: QUEUE.max_receive_count,
        backoff: SEND_BACKOFF,
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
