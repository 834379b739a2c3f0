//! Email notifications (R32–R34), once per notice and recipient.
//!
//! A notice row per (notice, recipient) is written in the transaction of its
//! cause, with a unique idempotency key and a stable Message-ID, together with
//! a `SendNotice` job (`enqueue`). The job claims the notice, sends it through
//! a pooled SMTP transport and records `sent`; a redelivery finds `sent` and
//! sends nothing (`send`, R33). SMTP 4xx and connection errors are retried by
//! the runner with backoff and jitter; 5xx fail at once; after the budget the
//! notice is `failed` (visible to operators), never silently dropped (R34).
//!
//! Who is mailed is decided in `recipients` (R32, R33); what the mail says in
//! `render`: the sharing org, case title, message and a View link; no
//! evidence field ever appears in them (R10). This file holds the notice
//! kinds and statuses and the operators' view of a share's notices.

mod enqueue;
mod recipients;
mod render;
mod send;

pub use enqueue::{enqueue_access_revoked_tx, enqueue_link_share_tx, enqueue_tx};
pub use recipients::{onward_emails_if_ended, principal_emails};
pub use send::SendNotice;

use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use uuid::Uuid;

/// A notice's kind (`notice_kind` in PostgreSQL, migration 0024). Every
/// match on it is exhaustive (`render`): a new kind without a template does
/// not compile.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, sqlx::Type, utoipa::ToSchema,
)]
#[sqlx(type_name = "notice_kind", rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
#[schema(rename_all = "snake_case")]
pub enum NoticeKind {
    Share,
    InternalShare,
    Revoke,
    /// R44: sharing with this principal stopped.
    AccessRevoked,
    /// R57: a receiving org removed this recipient it had added onward.
    RecipientRemoved,
    OnwardShare,
    LinkShare,
    LinkShareReminder,
}

impl NoticeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            NoticeKind::Share => "share",
            NoticeKind::InternalShare => "internal_share",
            NoticeKind::Revoke => "revoke",
            NoticeKind::AccessRevoked => "access_revoked",
            NoticeKind::RecipientRemoved => "recipient_removed",
            NoticeKind::OnwardShare => "onward_share",
            NoticeKind::LinkShare => "link_share",
            NoticeKind::LinkShareReminder => "link_share_reminder",
        }
    }
}

/// A notice's status (`notice_status` in PostgreSQL): `failed` only after the
/// retry budget (R34), and a `sent` notice is never sent again (R33).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, sqlx::Type, utoipa::ToSchema,
)]
#[sqlx(type_name = "notice_status", rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum NoticeStatus {
    Pending,
    Sent,
    Failed,
}

impl crate::db::PgEnum for NoticeStatus {
    const TYPE: &'static str = "notice_status";
    fn label(self) -> &'static str {
        match self {
            NoticeStatus::Pending => "pending",
            NoticeStatus::Sent => "sent",
            NoticeStatus::Failed => "failed",
        }
    }
}

#[derive(Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct NoticeView {
    pub id: Uuid,
    pub kind: NoticeKind,
    pub recipient: String,
    pub status: NoticeStatus,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub message_id: String,
    pub sent_at: Option<chrono::DateTime<chrono::Utc>>,
}

pub async fn for_share(db: &mut PgConnection, share_id: Uuid) -> sqlx::Result<Vec<NoticeView>> {
    sqlx::query_as(
        "SELECT id, kind, recipient, status, attempts, last_error, message_id, sent_at FROM notices
         WHERE share_id = $1 ORDER BY created_at, recipient",
    )
    .bind(share_id)
    .fetch_all(db)
    .await
}
