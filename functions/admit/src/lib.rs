//! The admissions queue's consumer: admits one chunk of a large send at a
//! time ([`shared::app::admission::admit_chunk`]), then rests so that each
//! instance admits at most its share of guests a second (the event's
//! partitions take about 1,000 write units a second). A chunk that fails
//! goes back to the queue (`ReportBatchItemFailures`); its next try takes
//! what the first wrote as written.

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use shared::app::admission::{self, AdmitStore, ChunkOutcome};
use shared::ports::{ChunkMessage, SendQueue};
use std::sync::Arc;
use std::time::Instant;

pub struct Deps {
    pub store: Arc<dyn AdmitStore>,
    /// The send queue, where admitted invitations go.
    pub queue: Arc<dyn SendQueue>,
    /// Guests this instance admits a second at most.
    pub guests_per_second: u32,
}

pub async fn handle(deps: &Deps, event: SqsEvent) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    // One at a time: the pace is per instance.
    for message in &event.records {
        let id = message.message_id.clone().unwrap_or_default();
        let body = message.body.as_deref().unwrap_or_default();
        let chunk: ChunkMessage = match serde_json::from_str(body) {
            Ok(chunk) => chunk,
            Err(error) => {
                tracing::error!(message_id = %id, %error, "not a chunk message; left for the dead-letter queue");
                let mut failure = BatchItemFailure::default();
                failure.item_identifier = id;
                response.batch_item_failures.push(failure);
                continue;
            }
        };
        let started = Instant::now();
        match admission::admit_chunk(deps.store.as_ref(), deps.queue.as_ref(), &chunk).await {
            Ok(ChunkOutcome::Admitted(tally)) => {
                tracing::info!(job_id = %chunk.job_id, chunk = chunk.chunk, invited = tally.total, left_out = tally.left_out, ms = started.elapsed().as_millis() as u64, "chunk admitted");
                let rest = admission::rest_after(
                    tally.total as usize + tally.left_out as usize,
                    deps.guests_per_second,
                    started.elapsed(),
                );
                tokio::time::sleep(rest).await;
            }
            Ok(ChunkOutcome::AlreadyDone) => {
                tracing::info!(job_id = %chunk.job_id, chunk = chunk.chunk, "chunk admitted already");
            }
            Ok(ChunkOutcome::Missing) => {
                tracing::warn!(job_id = %chunk.job_id, chunk = chunk.chunk, "no such chunk; nothing to admit");
            }
            Err(error) => {
                tracing::warn!(job_id = %chunk.job_id, chunk = chunk.chunk, %error, "chunk not admitted; back to the queue");
                let mut failure = BatchItemFailure::default();
                failure.item_identifier = id;
                response.batch_item_failures.push(failure);
            }
        }
    }
    response
}
