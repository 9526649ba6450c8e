//! The SQS-triggered sender: turns the batch's records into the deliver
//! use case's input ([`shared::app::deliver`]) and its results into the
//! batch response, reporting only the records that go back to the queue
//! (`ReportBatchItemFailures`).

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use shared::app::deliver::{self, Delivered, QueuedRecord};
use shared::domain::Status;
use shared::edge::deployment::QUEUE;
use shared::edge::metrics;
use std::time::Duration;
use tokio::time::Instant;

pub use shared::app::deliver::{Backoff, Deps, Pacer, SEND_BUDGET};

/// One invocation with the deployed function's time limit (the local stack,
/// tests).
pub async fn handle(deps: &Deps, event: SqsEvent) -> SqsBatchResponse {
    let timeout = Duration::from_secs(u64::from(QUEUE.sender_timeout_seconds));
    handle_until(deps, event, Instant::now() + timeout).await
}

/// One invocation that must be done by `deadline`.
pub async fn handle_until(deps: &Deps, event: SqsEvent, deadline: Instant) -> SqsBatchResponse {
    let records: Vec<QueuedRecord> = event.records.iter().map(record).collect();
    let results = deliver::deliver(deps, &records, deadline).await;
    let mut response = SqsBatchResponse::default();
    for (record, result) in records.into_iter().zip(results) {
        match result {
            Ok(Delivered::Failed { code }) => metrics::count(Status::Failed, Some(&code)),
            Ok(_) => {}
            Err(_) => {
                let mut failure = BatchItemFailure::default();
                failure.item_identifier = record.id;
                response.batch_item_failures.push(failure);
            }
        }
    }
    response
}

fn record(message: &SqsMessage) -> QueuedRecord {
    QueuedRecord {
        id: message.message_id.clone().unwrap_or_default(),
        body: message.body.clone().unwrap_or_default(),
        receive_count: message
            .attributes
            .get("ApproximateReceiveCount")
            .and_then(|c| c.parse().ok())
            .unwrap_or(1),
        receipt_handle: message.receipt_handle.clone(),
    }
}
