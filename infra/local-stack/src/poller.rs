//! Feeds an SQS consumer (the sender, the delivery reports' and admissions' consumers) the
//! way Lambda's SQS event source mapping does: at most
//! `max_concurrency` batches in flight (one worker each), batches of up to
//! `batch_size` records as an `SqsEvent`, and on return deletes every
//! record not listed in the `SqsBatchResponse`'s failures. Failed records
//! stay hidden until their visibility timeout, then come back.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, Message, MessageSystemAttributeName};
use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

#[derive(Debug, Clone)]
pub struct PollerConfig {
    pub queue_url: String,
    pub batch_size: u32,
    pub wait_seconds: u32,
}

/// Reads the queue's attributes, as Lambda does when an event source mapping
/// is created (its role needs `sqs:GetQueueAttributes`).
pub async fn check_queue(sqs: &Client, queue_url: &str) -> Result<(), String> {
    sqs.get_queue_attributes()
        .queue_url(queue_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::All)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| aws_sdk_sqs::error::DisplayErrorContext(e).to_string())
}

/// One function instance's handler of a batch.
pub type Handler =
    Arc<dyn Fn(SqsEvent) -> Pin<Box<dyn Future<Output = SqsBatchResponse> + Send>> + Send + Sync>;

/// A handler for each sender instance.
pub fn sender(deps: Arc<sender::Deps>) -> Handler {
    Arc::new(move |event| {
        let deps = deps.clone();
        Box::pin(async move { sender::handle(&deps, event).await })
    })
}

/// A handler for each instance of the delivery reports' consumer.
pub fn delivery_reports(deps: Arc<delivery_reports::Deps>) -> Handler {
    Arc::new(move |event| {
        let deps = deps.clone();
        Box::pin(async move { delivery_reports::handle(&deps, event).await })
    })
}

/// A handler for each instance of the admissions queue's consumer.
pub fn admit(deps: Arc<admit::Deps>) -> Handler {
    Arc::new(move |event| {
        let deps = deps.clone();
        Box::pin(async move { admit::handle(&deps, event).await })
    })
}

/// Starts one worker per function instance.
pub fn spawn(
    sqs: Client,
    config: PollerConfig,
    instances: Vec<Handler>,
    stopped: watch::Receiver<bool>,
) -> Vec<JoinHandle<()>> {
    instances
        .into_iter()
        .map(|handler| {
            tokio::spawn(worker(
                sqs.clone(),
                config.clone(),
                handler,
                stopped.clone(),
            ))
        })
        .collect()
}

async fn worker(
    sqs: Client,
    config: PollerConfig,
    handler: Handler,
    stopped: watch::Receiver<bool>,
) {
    while !*stopped.borrow() {
        let received = sqs
            .receive_message()
            .queue_url(&config.queue_url)
            .max_number_of_messages(config.batch_size as i32)
            .wait_time_seconds(config.wait_seconds as i32)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await;
        let messages = match received {
            Ok(out) => out.messages.unwrap_or_default(),
            Err(e) => {
                if !*stopped.borrow() {
                    tracing::warn!(error = %aws_sdk_sqs::error::DisplayErrorContext(e), "receive failed; retrying");
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        if messages.is_empty() {
            continue;
        }
        let event = to_event(&messages, &config.queue_url);
        let response = handler(event).await;
        let failed: HashSet<&str> = response
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.as_str())
            .collect();
        delete_succeeded(&sqs, &config.queue_url, &messages, &failed).await;
    }
}

fn to_event(messages: &[Message], queue_url: &str) -> SqsEvent {
    let queue_name = queue_url.rsplit('/').next().unwrap_or_default();
    let mut event = SqsEvent::default();
    event.records = messages
        .iter()
        .map(|m| {
            let mut record = SqsMessage::default();
            record.message_id = m.message_id.clone();
            record.receipt_handle = m.receipt_handle.clone();
            record.body = m.body.clone();
            record.md5_of_body = m.md5_of_body.clone();
            record.attributes = m
                .attributes
                .iter()
                .flatten()
                .map(|(k, v)| (k.as_str().to_owned(), v.clone()))
                .collect();
            record.event_source = Some("aws:sqs".into());
            record.event_source_arn =
                Some(format!("arn:aws:sqs:us-east-1:000000000000:{queue_name}"));
            record.aws_region = Some("us-east-1".into());
            record
        })
        .collect();
    event
}

async fn delete_succeeded(
    sqs: &Client,
    queue_url: &str,
    messages: &[Message],
    failed: &HashSet<&str>,
) {
    let entries: Vec<DeleteMessageBatchRequestEntry> = messages
        .iter()
        .filter(|m| !failed.contains(m.message_id.as_deref().unwrap_or_default()))
        .enumerate()
        .filter_map(|(i, m)| {
            DeleteMessageBatchRequestEntry::builder()
                .id(i.to_string())
                .receipt_handle(m.receipt_handle.clone()?)
                .build()
                .ok()
        })
        .collect();
    for chunk in entries.chunks(10) {
        let result = sqs
            .delete_message_batch()
            .queue_url(queue_url)
            .set_entries(Some(chunk.to_vec()))
            .send()
            .await;
        if let Err(e) = result {
            tracing::warn!(error = %aws_sdk_sqs::error::DisplayErrorContext(e), "delete failed; messages will be redelivered");
        }
    }
}
