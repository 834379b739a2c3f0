//! Recording notices (R32, R33): one notice row per recipient and its
//! `SendNotice` job, written set-based in the transaction of the cause, so a
//! notice exists exactly when its share, revocation, onward share or link
//! share committed. The idempotency key (kind, subject, recipient) makes a
//! rerun add nothing; the Message-ID is fixed here, so even a second copy after
//! a crash is recognizably the same mail.

use sqlx::PgConnection;
use uuid::Uuid;

use super::{NoticeKind, SendNotice};

/// Record one notice per recipient and its send job, in the caller's
/// transaction, set-based (a share may name many recipients). A key that
/// exists already (a rerun) adds nothing.
pub async fn enqueue_tx(
    tx: &mut PgConnection,
    kind: NoticeKind,
    share_id: Option<Uuid>,
    received_id: Option<Uuid>,
    recipients: &[String],
) -> sqlx::Result<()> {
    enqueue_for(tx, kind, [share_id, received_id, None], recipients).await
}

/// R44: tell a principal that sharing a case with it stopped. The notice
/// names the share it had access through (for the case and the sharer); its
/// key is the stop's own id, so a rerun adds nothing and a later stop mails again.
pub async fn enqueue_access_revoked_tx(
    tx: &mut PgConnection,
    kind: NoticeKind,
    share_id: Uuid,
    stop_id: Uuid,
    recipients: &[String],
) -> sqlx::Result<()> {
    enqueue_keyed(tx, kind, [Some(share_id), None, None], stop_id, recipients).await
}

/// R40: email the download link of a built link share to its recipient
/// (`LinkShare`), or remind them of its expiry (`LinkShareReminder`).
pub async fn enqueue_link_share_tx(
    tx: &mut PgConnection,
    kind: NoticeKind,
    link_share_id: Uuid,
    recipient: &str,
) -> sqlx::Result<()> {
    enqueue_for(
        tx,
        kind,
        [None, None, Some(link_share_id)],
        &[recipient.to_string()],
    )
    .await
}

/// `subjects`: the share, the collaboration and the link share a notice is about.
async fn enqueue_for(
    tx: &mut PgConnection,
    kind: NoticeKind,
    subjects: [Option<Uuid>; 3],
    recipients: &[String],
) -> sqlx::Result<()> {
    let [share_id, received_id, link_share_id] = subjects;
    let subject = share_id
        .or(received_id)
        .or(link_share_id)
        .unwrap_or_default();
    enqueue_keyed(tx, kind, subjects, subject, recipients).await
}

/// `key_subject`: what makes the idempotency key unique with kind and recipient.
async fn enqueue_keyed(
    tx: &mut PgConnection,
    kind: NoticeKind,
    subjects: [Option<Uuid>; 3],
    subject: Uuid,
    recipients: &[String],
) -> sqlx::Result<()> {
    if recipients.is_empty() {
        return Ok(());
    }
    let [share_id, received_id, link_share_id] = subjects;
    let ids: Vec<Uuid> = recipients.iter().map(|_| Uuid::now_v7()).collect();
    let keys: Vec<String> = recipients
        .iter()
        .map(|r| format!("{}:{}:{}", kind.as_str(), subject, r.to_lowercase()))
        .collect();
    let message_ids: Vec<String> = ids.iter().map(|id| format!("<{id}@caseshare>")).collect();
    let inserted: Vec<Uuid> = sqlx::query_scalar(
        "INSERT INTO notices (id, kind, share_id, received_id, link_share_id, recipient, idempotency_key, message_id)
         SELECT i, $1, $2, $3, $8, r, k, m FROM unnest($4::uuid[], $5::text[], $6::text[], $7::text[]) AS u(i, r, k, m)
         ON CONFLICT (idempotency_key) DO NOTHING RETURNING id",
    )
    .bind(kind)
    .bind(share_id)
    .bind(received_id)
    .bind(&ids)
    .bind(recipients)
    .bind(&keys)
    .bind(&message_ids)
    .bind(link_share_id)
    .fetch_all(&mut *tx)
    .await?;
    let jobs: Vec<SendNotice> = inserted
        .into_iter()
        .map(|notice_id| SendNotice { notice_id })
        .collect();
    crate::jobs::enqueue_many_tx(tx, &jobs, None).await?;
    Ok(())
}
