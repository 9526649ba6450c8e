//! The reports queue's consumer: applies the delivery reports the webhook
//! deferred because the store was slow or failing while the provider
//! waited ([`shared::app::status_callback::receive`]). Each record is one
//! report as JSON; one that fails goes back to the queue
//! (`ReportBatchItemFailures`), and after the queue's receives to its
//! dead-letter queue.

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use shared::app::lifecycle::Outcome;
use shared::app::status_callback::{self, Applied, ReportStore};
use shared::domain::budget::SenderProfile;
use shared::edge::metrics;
use shared::ports::DeliveryReport;
use std::sync::Arc;

pub struct Deps {
    pub store: Arc<dyn ReportStore>,
    /// The WhatsApp sender's limits (a refusal for the daily limit teaches the budget).
    pub profile: SenderProfile,
}

pub async fn handle(deps: &Deps, event: SqsEvent) -> SqsBatchResponse {
    let applied = event.records.iter().map(|message| async move {
        let id = message.message_id.clone().unwrap_or_default();
        let body = message.body.as_deref().unwrap_or_default();
        let report: DeliveryReport = match serde_json::from_str(body) {
            Ok(report) => report,
            Err(error) => {
                tracing::error!(message_id = %id, %error, "not a delivery report; left for the dead-letter queue");
                return Some(id);
            }
        };
        match status_callback::apply(deps.store.as_ref(), &report, &deps.profile).await {
            Ok(Applied::Status(Outcome::Applied { .. })) => {
                if let Some(status) = report.status {
                    metrics::count(status, report.error.as_ref().map(|e| e.code.as_str()));
                }
                None
            }
            Ok(_) => None,
            Err(error) => {
                tracing::warn!(message_id = %id, %error, "deferred report not applied; back to the queue");
                Some(id)
            }
        }
    });
    let mut response = SqsBatchResponse::default();
    for id in futures::future::join_all(applied)
        .await
        .into_iter()
        .flatten()
    {
        let mut failure = BatchItemFailure::default();
        failure.item_identifier = id;
        response.batch_item_failures.push(failure);
    }
    response
}
