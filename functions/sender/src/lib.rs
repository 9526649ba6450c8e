//! The SQS-triggered sender: claims each invitation, renders its message,
//! sends it through Twilio at the fleet's rate, and reports only the failed
//! records back to SQS (`ReportBatchItemFailures`).

mod lookups;
mod pacer;

pub use pacer::Pacer;

use lookups::BatchLookups;

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use shared::dispatch;
use shared::domain::{Invitation, OptOut, OptOutSource, Status};
use shared::lifecycle::{self, now};
use shared::ports::{
    Annotation, ErrorInfo, MessageContent, Messenger, OutboundMessage, SendMessage, SendQueue,
    Store, StoreError,
};
use shared::template::{self, TemplateContext};
use shared::twilio::describe;
use std::sync::Arc;

pub struct Deps {
    pub store: Arc<dyn Store>,
    pub messenger: Arc<dyn Messenger>,
    pub queue: Arc<dyn SendQueue>,
    /// The webhook's public URL, where Twilio posts status callbacks.
    pub webhook_url: String,
    pub pacer: Pacer,
    /// Receives after which a retryable failure is final (the queue's maxReceiveCount).
    pub max_receive_count: u32,
}

/// Flag set when a redelivered message finds its invitation mid-send: Twilio
/// may have accepted the first try, so nothing is resent automatically.
pub const FLAG_UNCONFIRMED: &str = "send_unconfirmed";

/// Why a record goes back to the queue.
#[derive(Debug, thiserror::Error)]
enum RecordError {
    #[error("message is not a send request: {0}")]
    Poison(String),
    #[error("provider asked us to retry: {0}")]
    Retry(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub async fn handle(deps: &Deps, event: SqsEvent) -> SqsBatchResponse {
    let lookups = BatchLookups::new();
    let results = futures::future::join_all(
        event
            .records
            .iter()
            .map(|record| process_or_dead_letter(deps, &lookups, record)),
    )
    .await;
    let mut response = SqsBatchResponse::default();
    for (record, result) in event.records.iter().zip(results) {
        if let Err(err) = result {
            let id = record.message_id.clone().unwrap_or_default();
            tracing::warn!(message_id = %id, error = %err, "record returned to the queue");
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            response.batch_item_failures.push(failure);
        }
    }
    response
}

/// A poison message goes straight to the dead-letter queue (and its alarm)
/// instead of being received again and again; the batch's others go on.
async fn process_or_dead_letter(
    deps: &Deps,
    lookups: &BatchLookups,
    record: &SqsMessage,
) -> Result<(), RecordError> {
    match process(deps, lookups, record).await {
        Err(RecordError::Poison(reason)) => {
            tracing::error!(message_id = ?record.message_id, %reason, "poison message moved to the dead-letter queue");
            let body = record.body.as_deref().unwrap_or_default();
            deps.queue
                .dead_letter(body, &reason)
                .await
                .map_err(|e| RecordError::Retry(format!("dead-lettering failed: {e}")))
        }
        other => other,
    }
}

fn receive_count(record: &SqsMessage) -> u32 {
    record
        .attributes
        .get("ApproximateReceiveCount")
        .and_then(|c| c.parse().ok())
        .unwrap_or(1)
}

async fn process(
    deps: &Deps,
    lookups: &BatchLookups,
    record: &SqsMessage,
) -> Result<(), RecordError> {
    let body = record.body.as_deref().unwrap_or_default();
    let message: SendMessage =
        serde_json::from_str(body).map_err(|e| RecordError::Poison(e.to_string()))?;
    let store = deps.store.as_ref();
    let Some(inv) = store.get_invitation(&message.invitation_id).await? else {
        return Err(RecordError::Poison(format!(
            "invitation {} does not exist",
            message.invitation_id
        )));
    };
    if inv.attempt != message.attempt {
        tracing::info!(invitation_id = %inv.invitation_id, message_attempt = message.attempt, current = inv.attempt, "stale message dropped");
        return Ok(());
    }
    match inv.status {
        Status::Queued => {}
        Status::Sending if inv.message_sid.is_none() => {
            // Redelivered mid-send (or after a crash): whether Twilio took the
            // first try is unknown; its callback will settle it, else the
            // organizer sees the flag. Never send a second time.
            tracing::warn!(invitation_id = %inv.invitation_id, "redelivered while sending; flagged, not resent");
            let note = Annotation {
                flag: Some(FLAG_UNCONFIRMED.into()),
                ..Default::default()
            };
            store
                .annotate(&inv.invitation_id, inv.attempt, &note)
                .await?;
            return Ok(());
        }
        _ => {
            tracing::info!(invitation_id = %inv.invitation_id, status = %inv.status, "already handled; redelivery dropped");
            return Ok(());
        }
    }
    // Checked at the last moment: an opt-out may arrive after the send was queued.
    if let Some(opt_out) = store
        .get_opt_out(&inv.guest.phone)
        .await?
        .filter(|o| o.opted_out)
    {
        let error = ErrorInfo {
            code: dispatch::OPTED_OUT.into(),
            message: dispatch::OPTED_OUT_MESSAGE.into(),
        };
        if lifecycle::force(store, &inv, Status::Skipped, &now(), None, Some(error)).await? {
            tracing::info!(invitation_id = %inv.invitation_id, to = %inv.guest.phone, source = opt_out.source.as_str(), "guest opted out; skipped");
        }
        return Ok(());
    }
    if !lifecycle::force(store, &inv, Status::Sending, &now(), None, None).await? {
        tracing::info!(invitation_id = %inv.invitation_id, "claimed by another delivery");
        return Ok(());
    }
    let claimed = Invitation {
        status: Status::Sending,
        ..inv
    };
    send_claimed(deps, lookups, record, claimed).await
}

async fn send_claimed(
    deps: &Deps,
    lookups: &BatchLookups,
    record: &SqsMessage,
    inv: Invitation,
) -> Result<(), RecordError> {
    let store = deps.store.as_ref();
    let content = match render(deps, lookups, &inv).await? {
        Ok(content) => content,
        Err(error) => {
            tracing::warn!(invitation_id = %inv.invitation_id, code = %error.code, reason = %error.message, "message not rendered; failed");
            lifecycle::force(store, &inv, Status::Failed, &now(), None, Some(error)).await?;
            return Ok(());
        }
    };
    let outbound = OutboundMessage {
        to: inv.guest.phone.clone(),
        content,
        status_callback: format!(
            "{}?invitation_id={}&attempt={}",
            deps.webhook_url, inv.invitation_id, inv.attempt
        ),
    };
    deps.pacer.wait().await;
    match deps.messenger.send(&outbound).await {
        Ok(sid) => {
            tracing::info!(invitation_id = %inv.invitation_id, attempt = inv.attempt, message_sid = %sid, to = %inv.guest.phone, "sent to Twilio");
            let note = Annotation {
                message_sid: Some(sid),
                ..Default::default()
            };
            store
                .annotate(&inv.invitation_id, inv.attempt, &note)
                .await?;
            Ok(())
        }
        Err(err) if err.retryable && receive_count(record) < deps.max_receive_count => {
            // Give the claim back so the redelivery can take it, and back off.
            lifecycle::force(store, &inv, Status::Queued, &now(), None, None).await?;
            let delay = backoff_seconds(receive_count(record));
            if let Some(handle) = &record.receipt_handle
                && let Err(e) = deps.queue.delay(handle, delay).await
            {
                tracing::warn!(error = %e, "could not set backoff; the queue's visibility timeout applies");
            }
            Err(RecordError::Retry(err.to_string()))
        }
        Err(err) => {
            let code = err
                .code
                .map(|c| c.to_string())
                .unwrap_or_else(|| "send_failed".into());
            let message = err
                .code
                .map(describe)
                .map(str::to_owned)
                .unwrap_or(err.message.clone());
            tracing::warn!(invitation_id = %inv.invitation_id, %code, error = %err, "send failed permanently");
            if err.code == Some(UNSUBSCRIBED) {
                record_twilio_opt_out(store, &inv).await?;
            }
            shared::metrics::count(Status::Failed, Some(&code));
            let error = ErrorInfo { code, message };
            lifecycle::force(store, &inv, Status::Failed, &now(), None, Some(error)).await?;
            Ok(())
        }
    }
}

/// Exponential backoff by receive count: 2, 4, 8, ... seconds, at most 5 minutes.
pub fn backoff_seconds(receive_count: u32) -> u32 {
    (1u32 << receive_count.clamp(1, 8)).min(300)
}

/// Twilio's "attempt to send to unsubscribed recipient".
pub const UNSUBSCRIBED: u32 = 21610;

/// Twilio knows the guest unsubscribed: nothing more is sent to them.
async fn record_twilio_opt_out(store: &dyn Store, inv: &Invitation) -> Result<(), StoreError> {
    let record = OptOut {
        phone: inv.guest.phone.clone(),
        opted_out: true,
        source: OptOutSource::Twilio,
        keyword: None,
        by: None,
        updated_at: now(),
    };
    store.put_opt_out(&record, None).await?;
    tracing::info!(to = %inv.guest.phone, "Twilio reports the guest unsubscribed; opt-out recorded");
    Ok(())
}

/// Renders the invitation's message with the template version it recorded;
/// Ok(Err) is a permanent failure to record.
async fn render(
    deps: &Deps,
    lookups: &BatchLookups,
    inv: &Invitation,
) -> Result<Result<MessageContent, ErrorInfo>, StoreError> {
    let store = deps.store.as_ref();
    let Some(event) = lookups.event(store, &inv.owner, &inv.event_id).await? else {
        return Ok(Err(ErrorInfo {
            code: "event_missing".into(),
            message: "the event no longer exists".into(),
        }));
    };
    let found = match &inv.template {
        Some(reference) => lookups.template(store, &inv.owner, reference).await?,
        // Written before templates were versioned: the built-in default.
        None => Some(template::builtin_default(&inv.owner, &inv.updated_at)),
    };
    let Some(message_template) = found else {
        return Ok(Err(ErrorInfo {
            code: "template_missing".into(),
            message: "the invitation's template version no longer exists".into(),
        }));
    };
    let context = TemplateContext::new(&event, &inv.guest);
    Ok(
        template::render_message(&message_template, &context).map_err(|e| ErrorInfo {
            code: e.error.code().into(),
            message: e.to_string(),
        }),
    )
}
