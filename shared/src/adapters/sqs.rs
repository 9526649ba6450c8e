//! The queues on SQS: the send queue, the admissions queue, the reports queue.

use crate::ports::{
    AdmissionQueue, ChunkMessage, DeliveryReport, QueueError, ReportQueue, SendMessage, SendQueue,
};
use async_trait::async_trait;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::error::DisplayErrorContext;
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use futures::StreamExt;
use std::time::Duration;

/// SQS's SendMessageBatch limit.
const SEND_BATCH_SIZE: usize = 10;
const SEND_PARALLELISM: usize = 8;
const MAX_ENTRY_RETRIES: u32 = 5;

#[derive(Clone)]
pub struct SqsQueue {
    client: Client,
    queue_url: String,
    dead_letter_url: Option<String>,
}

impl SqsQueue {
    pub fn new(client: Client, queue_url: impl Into<String>) -> Self {
        Self {
            client,
            queue_url: queue_url.into(),
            dead_letter_url: None,
        }
    }

    /// Where [`SendQueue::dead_letter`] puts messages (the sender needs it).
    pub fn with_dead_letter(mut self, url: impl Into<String>) -> Self {
        self.dead_letter_url = Some(url.into());
        self
    }

    /// Sends up to ten messages, resending the entries SQS reports as failed.
    async fn send_batch<M: serde::Serialize>(&self, messages: &[M]) -> Result<(), QueueError> {
        let mut pending: Vec<(String, String)> = messages
            .iter()
            .enumerate()
            .map(|(i, m)| {
                (
                    i.to_string(),
                    serde_json::to_string(m).expect("message serializes"),
                )
            })
            .collect();
        let mut last_reason = String::new();
        for retry in 0..=MAX_ENTRY_RETRIES {
            if retry > 0 {
                tokio::time::sleep(Duration::from_millis(50 << retry)).await;
            }
            let entries = pending
                .iter()
                .map(|(id, body)| {
                    SendMessageBatchRequestEntry::builder()
                        .id(id)
                        .message_body(body)
                        .build()
                })
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| QueueError::Backend(e.to_string()))?;
            let out = match self
                .client
                .send_message_batch()
                .queue_url(&self.queue_url)
                .set_entries(Some(entries))
                .send()
                .await
            {
                Ok(out) => out,
                Err(err) => {
                    last_reason = DisplayErrorContext(err).to_string();
                    continue;
                }
            };
            let failed: Vec<&str> = out.failed().iter().map(|f| f.id()).collect();
            if let Some(f) = out.failed().first() {
                last_reason = format!("{}: {}", f.code(), f.message().unwrap_or_default());
            }
            pending.retain(|(id, _)| failed.contains(&id.as_str()));
            if pending.is_empty() {
                return Ok(());
            }
        }
        Err(QueueError::Partial {
            failed: pending.len(),
            total: messages.len(),
            reason: last_reason,
        })
    }
}

impl SqsQueue {
    /// Sends every message, ten at a time, several batches at once; each
    /// batch is tried whatever happens to the others.
    async fn send_all<M: serde::Serialize + Sync>(&self, messages: &[M]) -> Result<(), QueueError> {
        // Collected first: a lazy map here trips async-trait's lifetime inference.
        let sends: Vec<_> = messages
            .chunks(SEND_BATCH_SIZE)
            .map(|chunk| self.send_batch(chunk))
            .collect();
        // Every batch is tried, whatever happens to the others.
        let results: Vec<Result<(), QueueError>> = futures::stream::iter(sends)
            .buffered(SEND_PARALLELISM)
            .collect()
            .await;
        let mut failed = 0;
        let mut reason = String::new();
        for (result, chunk) in results.into_iter().zip(messages.chunks(SEND_BATCH_SIZE)) {
            if let Err(err) = result {
                failed += err.not_enqueued(chunk.len());
                reason = err.to_string();
            }
        }
        if failed == 0 {
            return Ok(());
        }
        Err(QueueError::Partial {
            failed,
            total: messages.len(),
            reason,
        })
    }
}

#[async_trait]
impl SendQueue for SqsQueue {
    async fn enqueue(&self, messages: &[SendMessage]) -> Result<(), QueueError> {
        self.send_all(messages).await
    }

    async fn delay(&self, receipt_handle: &str, seconds: u32) -> Result<(), QueueError> {
        self.client
            .change_message_visibility()
            .queue_url(&self.queue_url)
            .receipt_handle(receipt_handle)
            .visibility_timeout(seconds as i32)
            .send()
            .await
            .map_err(|e| QueueError::Backend(DisplayErrorContext(e).to_string()))?;
        Ok(())
    }

    async fn dead_letter(&self, body: &str, reason: &str) -> Result<(), QueueError> {
        let url = self
            .dead_letter_url
            .as_ref()
            .ok_or_else(|| QueueError::Backend("no dead-letter queue configured".into()))?;
        let reason = aws_sdk_sqs::types::MessageAttributeValue::builder()
            .data_type("String")
            .string_value(reason)
            .build()
            .map_err(|e| QueueError::Backend(e.to_string()))?;
        self.client
            .send_message()
            .queue_url(url)
            .message_body(body)
            .message_attributes("reason", reason)
            .send()
            .await
            .map_err(|e| QueueError::Backend(DisplayErrorContext(e).to_string()))?;
        Ok(())
    }
}

#[async_trait]
impl AdmissionQueue for SqsQueue {
    async fn admit_later(&self, chunks: &[ChunkMessage]) -> Result<(), QueueError> {
        self.send_all(chunks).await
    }
}

#[async_trait]
impl ReportQueue for SqsQueue {
    async fn defer(&self, report: &DeliveryReport) -> Result<(), QueueError> {
        let body = serde_json::to_string(report).expect("a report serializes");
        self.client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| QueueError::Backend(DisplayErrorContext(e).to_string()))
    }
}
