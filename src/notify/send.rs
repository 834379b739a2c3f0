//! Delivery (R33, R34): the `SendNotice` job sends one notice through a
//! pooled SMTP transport and records `sent` right after the server accepted.
//! The notice is claimed with a lease, in a task that an abandoned job cannot
//! cancel, so a redelivery racing the first attempt backs off and one arriving
//! later finds `sent` and sends nothing. Only a process killed between the
//! accept and that record can cause a second copy (SMTP offers no
//! exactly-once); it then carries the same Message-ID. Errors map to the
//! runner's retry (4xx, connection) or immediate failure (5xx); a notice given
//! up on is `failed`, and an operator's requeue makes it `pending` again.

use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use uuid::Uuid;

use super::render::{render, NoticeRow};
use super::NoticeStatus;
use crate::context::JobContext;
use crate::jobs::{Job, JobError, Reopened};
use crate::mail::{Email, MailError};

#[derive(Debug, Serialize, Deserialize)]
pub struct SendNotice {
    pub notice_id: Uuid,
}

impl Job for SendNotice {
    const NAME: &'static str = "send-notice";
    const PREFETCH_FACTOR: u16 = 4;
    type Context = JobContext;

    /// The send and its record run as one detached task: a worker that
    /// abandons in-flight jobs (a sibling crashed, its channel failed) cannot
    /// cut between the server's accept and `sent`, which would make the
    /// redelivery send a second copy (R33).
    async fn run(&self, _job_id: Uuid, ctx: &JobContext) -> Result<(), JobError> {
        tokio::spawn(deliver(ctx.clone(), self.notice_id))
            .await
            .map_err(|e| JobError::transient(format!("send task failed: {e}")))?
    }

    async fn on_dead(&self, ctx: &JobContext, reason: &str) {
        let r = sqlx::query(
            "UPDATE notices SET status = $3, last_error = $2 WHERE id = $1 AND status = $4",
        )
        .bind(self.notice_id)
        .bind(reason)
        .bind(NoticeStatus::Failed)
        .bind(NoticeStatus::Pending)
        .execute(&ctx.db)
        .await;
        if let Err(e) = r {
            tracing::error!(error = %e, notice_id = %self.notice_id, "cannot mark notice failed");
        }
        metrics::counter!("caseshare_emails_failed_total").increment(1);
    }

    /// A failed notice goes back to `pending` (`deliver` only sends pending
    /// notices); one already `sent` stays sent, so a requeue never mails twice.
    async fn on_requeue(&self, tx: &mut PgConnection) -> sqlx::Result<Reopened> {
        let share_id: Option<Option<Uuid>> = sqlx::query_scalar(
            "UPDATE notices SET status = $2 WHERE id = $1 AND status = $3
             RETURNING share_id",
        )
        .bind(self.notice_id)
        .bind(NoticeStatus::Pending)
        .bind(NoticeStatus::Failed)
        .fetch_optional(&mut *tx)
        .await?;
        Ok(match share_id {
            Some(share_id) => Reopened {
                subject: Some(format!("notice {}: failed -> pending", self.notice_id)),
                filed_under: crate::audit::Entry {
                    share_id,
                    ..Default::default()
                },
            },
            None => Reopened::default(),
        })
    }
}

/// What claiming a notice found.
enum Claim {
    Claimed(NoticeRow),
    /// Sent (or given up) before: never a second copy (R33).
    Done,
    /// Another worker holds the lease for this much longer.
    Held(std::time::Duration),
}

/// Claim the notice for `lease` (the mailer's [`crate::mail::Mailer::send_lease`]: as
/// short as sending allows, so a claim left by a killed worker ends soon).
async fn claim(
    db: &sqlx::PgPool,
    notice_id: Uuid,
    lease: std::time::Duration,
) -> Result<Claim, JobError> {
    let claimed: Option<NoticeRow> = sqlx::query_as(
        "UPDATE notices SET attempts = attempts + 1, claimed_until = now() + make_interval(secs => $2)
         WHERE id = $1 AND status = $3 AND (claimed_until IS NULL OR claimed_until < now())
         RETURNING kind, recipient, message_id, share_id, link_share_id",
    )
    .bind(notice_id)
    .bind(lease.as_secs_f64())
    .bind(NoticeStatus::Pending)
    .fetch_optional(db)
    .await?;
    if let Some(notice) = claimed {
        return Ok(Claim::Claimed(notice));
    }
    let state: Option<(NoticeStatus, f64)> = sqlx::query_as(
        "SELECT status, greatest(EXTRACT(EPOCH FROM claimed_until - now()), 0)::float8
           FROM notices WHERE id = $1",
    )
    .bind(notice_id)
    .fetch_optional(db)
    .await?;
    match state {
        None => Err(JobError::permanent(format!(
            "notice {notice_id} does not exist"
        ))),
        Some((NoticeStatus::Sent | NoticeStatus::Failed, _)) => Ok(Claim::Done),
        Some((_, left)) => Ok(Claim::Held(std::time::Duration::from_secs_f64(left))),
    }
}

/// Send one notice unless it was sent before. The notice is claimed with a
/// lease (`claimed_until`), so a redelivery racing the first attempt does
/// not send a second copy, and no database connection is held while the
/// SMTP server answers. A delivery that finds the notice claimed waits for
/// the lease, within this attempt: a live holder finishes (the notice is
/// `sent`, nothing more to do), a killed one's lease ends and the notice is
/// taken over at once, without spending the job's attempts on backoff.
/// Only a process killed between the server's accept and the `sent` record
/// can cause a second copy, with the same Message-ID.
async fn deliver(ctx: JobContext, notice_id: Uuid) -> Result<(), JobError> {
    let lease = ctx.mailer.send_lease();
    let give_up = tokio::time::Instant::now() + lease + std::time::Duration::from_secs(5);
    let notice = loop {
        match claim(&ctx.db, notice_id, lease).await? {
            Claim::Claimed(notice) => break notice,
            Claim::Done => return Ok(()),
            Claim::Held(left) => {
                let now = tokio::time::Instant::now();
                if now >= give_up {
                    return Err(JobError::transient(
                        "notice is being sent by another worker",
                    ));
                }
                // Just past the lease's end (or a short look, to see a live
                // holder's `sent` sooner).
                let nap = (left + std::time::Duration::from_millis(50))
                    .min(std::time::Duration::from_secs(1))
                    .min(give_up - now);
                tokio::time::sleep(nap).await;
            }
        }
    };
    let outcome = send(&ctx, &notice).await;
    let release = match &outcome {
        Ok(()) => sqlx::query(
            "UPDATE notices SET status = $2, sent_at = now(), last_error = NULL, claimed_until = NULL WHERE id = $1",
        )
        .bind(notice_id)
        .bind(NoticeStatus::Sent)
        .execute(&ctx.db)
        .await
        .map(|_| ()),
        Err(e) => sqlx::query("UPDATE notices SET last_error = $2, claimed_until = NULL WHERE id = $1")
            .bind(notice_id)
            .bind(e.to_string())
            .execute(&ctx.db)
            .await
            .map(|_| ()),
    };
    match (outcome, release) {
        (Ok(()), Ok(())) => {
            metrics::counter!("caseshare_emails_sent_total", "kind" => notice.kind.as_str())
                .increment(1);
            Ok(())
        }
        // Sent, but not recorded: the lease keeps redeliveries away while the
        // database recovers; the retry then records nothing new but `sent`.
        (Ok(()), Err(db)) => Err(JobError::transient(format!(
            "sent, but cannot record it: {db}"
        ))),
        (Err(e), _) => Err(e),
    }
}

/// Render and hand one notice to the SMTP server.
async fn send(ctx: &JobContext, notice: &NoticeRow) -> Result<(), JobError> {
    let rendered = render(&mut *ctx.db.acquire().await?, ctx, notice).await?;
    let email = Email {
        to: notice.recipient.clone(),
        subject: rendered.subject,
        message_id: notice.message_id.clone(),
        text: rendered.text,
        html: rendered.html,
    };
    ctx.mailer.send(email).await.map_err(|e| match e {
        MailError::Permanent(r) => JobError::permanent(r),
        MailError::Transient(r) => JobError::transient(r),
    })
}
