//! Large sends, admitted behind their answer. Send-bulk checks the
//! request and answers at once; the accepted guests are kept in chunks
//! ([`AdmissionChunk`]) and the job is written as admitting. The admissions
//! queue's consumer admits one chunk at a time through the same pipeline
//! as a small send ([`send::admit_guests`]): each guest's invitation has
//! the same id however often its chunk is tried, an invitation written by
//! an earlier try is taken as written, and what the chunk added is counted
//! on its job once, with the chunk marked done. Reconciliation enqueues
//! again a chunk left undone ([`requeue_stalled`]).

use super::AppError;
use super::send::{self, Admit, NewJob, Plan, SendStore};
use crate::domain::admission::{AdmissionChunk, Tally};
use crate::domain::{Guest, Job, JobId, Status, now};
use crate::ports::{AdmissionQueue, AdmissionStore, ChunkMessage, SendQueue};

/// What admission reads and writes: the send pipeline's store and the chunks.
pub trait AdmitStore: SendStore + AdmissionStore {}
impl<T: SendStore + AdmissionStore + ?Sized> AdmitStore for T {}

/// Accepts a large send: its guests kept in chunks, its job written as
/// admitting, one message per chunk on the admissions queue. A repeat of
/// a request whose job was written enqueues its chunks again (a done one
/// changes nothing) and answers the same job.
pub async fn accept(
    store: &dyn AdmitStore,
    queue: &dyn AdmissionQueue,
    plan: &Plan,
    guests: Vec<Guest>,
    job: NewJob,
    resend: bool,
) -> Result<Job, AppError> {
    let (owner, event_id) = (plan.event.owner.as_str(), &plan.event.event_id);
    let job_id = match job {
        NewJob::Fresh => JobId::generate(),
        NewJob::Resumable(job_id) => {
            if let Some(job) = store.get_job(&job_id).await? {
                enqueue_chunks(queue, &job).await;
                return Ok(job);
            }
            job_id
        }
    };
    let now = now();
    let job = Job::admitting(job_id, event_id.clone(), owner, guests.len(), &now);
    let chunks = AdmissionChunk::split(
        &job.job_id,
        owner,
        event_id,
        &plan.template.reference(),
        resend,
        guests,
        &now,
    );
    store.put_admission(&job, &chunks).await?;
    enqueue_chunks(queue, &job).await;
    Ok(job)
}

/// One message per chunk of the job. One the queue does not take is
/// enqueued again by reconciliation, so a failure here loses nothing.
async fn enqueue_chunks(queue: &dyn AdmissionQueue, job: &Job) {
    let chunks = job.admission.as_ref().map_or(0, |a| a.chunks);
    let messages: Vec<ChunkMessage> = (0..chunks)
        .map(|chunk| ChunkMessage {
            job_id: job.job_id.clone(),
            chunk,
        })
        .collect();
    if let Err(err) = queue.admit_later(&messages).await {
        let left = err.not_enqueued(messages.len());
        tracing::warn!(job_id = %job.job_id, error = %err, not_enqueued = left, "enqueueing chunks failed; reconciliation will enqueue them");
    }
}

/// What admitting one chunk did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChunkOutcome {
    /// Its guests are written, counted on the job, and the queued ones enqueued.
    Admitted(Tally),
    /// An earlier delivery admitted it: nothing was done.
    AlreadyDone,
    /// No such chunk (its job was never written): nothing to do.
    Missing,
}

/// Admits one chunk: each guest invited as the request asked (queued,
/// skipped, or left out when an earlier invitation holds them), the tally
/// added to the job with the chunk marked done, then the queued ones
/// enqueued. A failure part-way leaves the chunk undone: its next try
/// takes what was written as written.
pub async fn admit_chunk(
    store: &dyn AdmitStore,
    queue: &dyn SendQueue,
    message: &ChunkMessage,
) -> Result<ChunkOutcome, AppError> {
    let Some(chunk) = store.get_chunk(&message.job_id, message.chunk).await? else {
        return Ok(ChunkOutcome::Missing);
    };
    if chunk.done {
        return Ok(ChunkOutcome::AlreadyDone);
    }
    let template = super::templates::version(store, &chunk.owner, &chunk.template)
        .await?
        .ok_or_else(|| {
            AppError::Internal(format!(
                "template {} version {} of job {} is gone",
                chunk.template.template_id, chunk.template.version, chunk.job_id
            ))
        })?;
    let now = now();
    let admitted = send::admit_guests(
        store,
        Admit {
            owner: &chunk.owner,
            event_id: &chunk.event_id,
            template: &template,
            job_id: &chunk.job_id,
            resend: chunk.resend,
            may_exist: true,
        },
        chunk.guests.clone(),
        &now,
    )
    .await?;
    let tally = Tally::of(&admitted.invitations, admitted.left_out.len());
    let counted = store.chunk_admitted(&chunk, &tally).await?;
    // Enqueued whoever counted the chunk: not counted here may mean this
    // very write landed and its answer was lost, and a second message for
    // an invitation is turned away by the sender's claim.
    let queued: Vec<_> = admitted
        .invitations
        .into_iter()
        .filter(|i| i.status == Status::Queued)
        .collect();
    send::enqueue(queue, &queued).await;
    Ok(match counted {
        true => ChunkOutcome::Admitted(tally),
        false => ChunkOutcome::AlreadyDone,
    })
}

/// How long an instance rests after admitting `guests` in `took`, so it
/// admits at most `per_second` a second: its share of the event's
/// partitions (`edge::deployment::ADMISSIONS_QUEUE`).
pub fn rest_after(
    guests: usize,
    per_second: u32,
    took: std::time::Duration,
) -> std::time::Duration {
    std::time::Duration::from_secs_f64(guests as f64 / f64::from(per_second.max(1)))
        .saturating_sub(took)
}

/// Chunks looked at per reconciliation run.
pub const STALLED_BATCH: usize = 200;

/// Enqueues again the chunks still undone that were written before
/// `before` (their message was lost, or went to the dead-letter queue):
/// how many.
pub async fn requeue_stalled(
    store: &dyn AdmissionStore,
    queue: &dyn AdmissionQueue,
    before: &str,
) -> Result<usize, AppError> {
    let stalled = store.stalled_chunks(before, STALLED_BATCH).await?;
    if stalled.is_empty() {
        return Ok(0);
    }
    queue.admit_later(&stalled).await?;
    tracing::warn!(
        chunks = stalled.len(),
        "chunks of large sends left undone; enqueued again"
    );
    Ok(stalled.len())
}

#[cfg(test)]
mod tests;
