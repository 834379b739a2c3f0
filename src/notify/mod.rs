//! Email notifications (R32–R34), once per notice and recipient.
//!
//! A notice row per (notice, recipient) is written in the transaction of its
//! cause, with a unique idempotency key and a stable Message-ID, together with
//! a `SendNotice` job. The job sends through a pooled SMTP transport and
//! records `sent` right after the server accepted, holding the notice row
//! locked in between, in a task that an abandoned job cannot cancel; a
//! redelivery finds `sent` and sends nothing. Only a process killed between
//! the accept and that commit can cause a second copy (SMTP offers no
//! exactly-once); it then carries the same Message-ID. SMTP 4xx and
//! connection errors are retried by the runner with backoff and jitter; 5xx
//! fail at once; after the budget the notice is `failed` (visible to
//! operators), never silently dropped.
//!
//! Emails carry the sharing org, case title, message and a View link; no
//! evidence field ever appears in them (R10).

use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::context::JobContext;
use crate::jobs::{Job, JobError, Reopened};
use crate::mail::{Email, MailError};
use crate::sharing::{Recipient, ShareRow};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticeKind {
    Share,
    InternalShare,
    Revoke,
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

impl NoticeStatus {
    pub const ALL: [NoticeStatus; 3] = [
        NoticeStatus::Pending,
        NoticeStatus::Sent,
        NoticeStatus::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            NoticeStatus::Pending => "pending",
            NoticeStatus::Sent => "sent",
            NoticeStatus::Failed => "failed",
        }
    }
}

/// Everyone a share or its revocation notifies (R32, R33): the named users,
/// the members of named groups, the named addresses, or, when nobody is named,
/// the partner org's notification address.
pub async fn share_recipients(
    db: &mut PgConnection,
    share: &ShareRow,
) -> sqlx::Result<Vec<String>> {
    let mut users = Vec::new();
    let mut groups = Vec::new();
    let mut emails = Vec::new();
    for r in share.target.0.recipients() {
        match r {
            Recipient::User { user_id } => users.push(*user_id),
            Recipient::Group { group_id } => groups.push(*group_id),
            Recipient::Email { email } => emails.push(email.clone()),
        }
    }
    let mut out: Vec<String> = sqlx::query_scalar(
        "SELECT email FROM users WHERE id = ANY($1)
         UNION SELECT u.email FROM group_members m JOIN users u ON u.id = m.user_id WHERE m.group_id = ANY($2)",
    )
    .bind(&users)
    .bind(&groups)
    .fetch_all(&mut *db)
    .await?;
    out.extend(emails);
    if out.is_empty() {
        if let Some(org) = share.target_org_id {
            let addr: Option<String> =
                sqlx::query_scalar("SELECT notification_email FROM orgs WHERE id = $1")
                    .bind(org)
                    .fetch_one(&mut *db)
                    .await?;
            out.extend(addr);
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

pub async fn principal_emails(
    db: &mut PgConnection,
    user: Option<Uuid>,
    group: Option<Uuid>,
) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar(
        "SELECT email FROM users WHERE id = $1
         UNION SELECT u.email FROM group_members m JOIN users u ON u.id = m.user_id WHERE m.group_id = $2",
    )
    .bind(user)
    .bind(group)
    .fetch_all(db)
    .await
}

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
    if recipients.is_empty() {
        return Ok(());
    }
    let [share_id, received_id, link_share_id] = subjects;
    let subject = share_id
        .or(received_id)
        .or(link_share_id)
        .unwrap_or_default();
    let ids: Vec<Uuid> = recipients.iter().map(|_| Uuid::new_v4()).collect();
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
    .bind(kind.as_str())
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

#[derive(Debug, Serialize, Deserialize)]
pub struct SendNotice {
    pub notice_id: Uuid,
}

#[derive(sqlx::FromRow)]
struct NoticeRow {
    kind: String,
    recipient: String,
    message_id: String,
    share_id: Option<Uuid>,
    link_share_id: Option<Uuid>,
}

struct Rendered {
    subject: String,
    text: String,
    html: String,
}

fn escape_html(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn fill(template: &str, vars: &[(&str, String)]) -> String {
    let mut out = template.to_string();
    for (k, v) in vars {
        out = out.replace(&format!("{{{{{k}}}}}"), v);
    }
    out
}

const TEMPLATES: &[(&str, &str, &str)] = &[
    (
        "share",
        include_str!("../../templates/share.txt"),
        include_str!("../../templates/share.html"),
    ),
    (
        "revoke",
        include_str!("../../templates/revoke.txt"),
        include_str!("../../templates/revoke.html"),
    ),
    (
        "link_share",
        include_str!("../../templates/link_share.txt"),
        include_str!("../../templates/link_share.html"),
    ),
    (
        "link_share_reminder",
        include_str!("../../templates/link_share_reminder.txt"),
        include_str!("../../templates/link_share_reminder.html"),
    ),
    (
        "internal_share",
        include_str!("../../templates/internal_share.txt"),
        include_str!("../../templates/internal_share.html"),
    ),
];

async fn render(
    db: &mut PgConnection,
    ctx: &JobContext,
    n: &NoticeRow,
) -> Result<Rendered, JobError> {
    if n.kind == NoticeKind::LinkShare.as_str() || n.kind == NoticeKind::LinkShareReminder.as_str()
    {
        return render_link_share(db, ctx, n).await;
    }
    // Only ids, names and the case title are read: nothing else can leak (R10).
    let (case_id, case_title, sharing_org, receiving_org, message): (
        Uuid,
        String,
        String,
        Option<String>,
        Option<String>,
    ) = sqlx::query_as(
        "SELECT c.id, c.title, so.name, ro.name, s.message
             FROM shares s JOIN cases c ON c.id = s.case_id JOIN orgs so ON so.id = s.org_id
             LEFT JOIN orgs ro ON ro.id = s.target_org_id
             WHERE s.id = $1",
    )
    .bind(n.share_id)
    .fetch_one(db)
    .await?;
    let receiving_org = receiving_org.unwrap_or_else(|| sharing_org.clone());
    let base = ctx.settings.public_url.trim_end_matches('/');
    let view_url = format!("{base}/cases/{case_id}");
    let template = match n.kind.as_str() {
        "share" => "share",
        "revoke" => "revoke",
        _ => "internal_share",
    };
    let subject = match template {
        "share" => format!("{sharing_org} shared a case with you: {case_title}"),
        "revoke" => format!("{sharing_org} revoked a shared case: {case_title}"),
        _ => format!("A case was shared with you: {case_title}"),
    };
    let vars = [
        ("sharing_org", sharing_org),
        ("receiving_org", receiving_org),
        ("case_title", case_title),
        ("view_url", view_url),
    ];
    Ok(fill_template(template, subject, &vars, message.as_deref()))
}

/// Fill a template's text and HTML parts: HTML gets escaped values, and the
/// optional message becomes `message_block` / `message_html`.
fn fill_template(
    template: &str,
    subject: String,
    vars: &[(&str, String)],
    message: Option<&str>,
) -> Rendered {
    let (_, text, html) = TEMPLATES
        .iter()
        .find(|(name, _, _)| *name == template)
        .copied()
        .unwrap_or(TEMPLATES[0]);
    let message = message.filter(|m| !m.trim().is_empty());
    let mut text_vars = vars.to_vec();
    text_vars.push((
        "message_block",
        message
            .map(|m| format!("\nMessage:\n{m}\n"))
            .unwrap_or_default(),
    ));
    let mut html_vars: Vec<(&str, String)> =
        vars.iter().map(|(k, v)| (*k, escape_html(v))).collect();
    html_vars.push((
        "message_html",
        message
            .map(|m| format!("<p>Message:<br>{}</p>", escape_html(m)))
            .unwrap_or_default(),
    ));
    Rendered {
        subject,
        text: fill(text, &text_vars),
        html: fill(html, &html_vars),
    }
}

#[derive(sqlx::FromRow)]
struct LinkNoticeRow {
    case_title: String,
    sharing_org: String,
    message: Option<String>,
    token: String,
    expires_at: Option<chrono::DateTime<chrono::Utc>>,
    manifest: Option<String>,
}

/// The link-share email: who sends, which case, the link, its expiry and the
/// manifest's hash (so the recipient can check what was downloaded).
async fn render_link_share(
    db: &mut PgConnection,
    ctx: &JobContext,
    n: &NoticeRow,
) -> Result<Rendered, JobError> {
    let LinkNoticeRow { case_title, sharing_org, message, token, expires_at, manifest } = sqlx::query_as(
        "SELECT c.title AS case_title, o.name AS sharing_org, l.message, l.token, l.expires_at,
                l.manifest_sha256 AS manifest
         FROM link_shares l JOIN cases c ON c.id = l.case_id JOIN orgs o ON o.id = l.org_id WHERE l.id = $1",
    )
    .bind(n.link_share_id)
    .fetch_one(db)
    .await?;
    let base = ctx.settings.public_url.trim_end_matches('/');
    let download_url = format!("{base}/v1/downloads/{token}");
    let expires = expires_at
        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_default();
    let manifest = manifest.unwrap_or_default();
    let reminder = n.kind == NoticeKind::LinkShareReminder.as_str();
    let subject = if reminder {
        format!("Reminder: the case package {case_title} from {sharing_org} expires on {expires}")
    } else {
        format!("{sharing_org} sent you a case package: {case_title}")
    };
    let vars = [
        ("sharing_org", sharing_org),
        ("case_title", case_title),
        ("download_url", download_url),
        ("expires_at", expires),
        ("manifest_sha256", manifest),
    ];
    Ok(fill_template(
        if reminder {
            "link_share_reminder"
        } else {
            "link_share"
        },
        subject,
        &vars,
        message.as_deref(),
    ))
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
        let r = sqlx::query("UPDATE notices SET status = 'failed', last_error = $2 WHERE id = $1 AND status = 'pending'")
            .bind(self.notice_id)
            .bind(reason)
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
            "UPDATE notices SET status = 'pending' WHERE id = $1 AND status = 'failed'
             RETURNING share_id",
        )
        .bind(self.notice_id)
        .fetch_optional(&mut *tx)
        .await?;
        Ok(match share_id {
            Some(share_id) => Reopened {
                subject: Some(format!("notice {}: failed -> pending", self.notice_id)),
                share_id,
            },
            None => Reopened::default(),
        })
    }
}

/// How long a claimed notice is reserved for the worker sending it.
const SEND_LEASE: &str = "60 seconds";

/// Send one notice unless it was sent before. The notice is claimed with a
/// lease (`claimed_until`), so a redelivery racing the first attempt backs off
/// instead of sending a second copy, and no database connection is held while
/// the SMTP server answers. Only a process killed between the server's accept
/// and the `sent` record can cause a second copy, with the same Message-ID.
async fn deliver(ctx: JobContext, notice_id: Uuid) -> Result<(), JobError> {
    let claimed: Option<NoticeRow> = sqlx::query_as(&format!(
        "UPDATE notices SET attempts = attempts + 1, claimed_until = now() + interval '{SEND_LEASE}'
         WHERE id = $1 AND status = 'pending' AND (claimed_until IS NULL OR claimed_until < now())
         RETURNING kind, recipient, message_id, share_id, link_share_id"
    ))
    .bind(notice_id)
    .fetch_optional(&ctx.db)
    .await?;
    let Some(notice) = claimed else {
        let status: Option<NoticeStatus> =
            sqlx::query_scalar("SELECT status FROM notices WHERE id = $1")
                .bind(notice_id)
                .fetch_optional(&ctx.db)
                .await?;
        return match status {
            None => Err(JobError::permanent(format!(
                "notice {notice_id} does not exist"
            ))),
            // Sent (or given up) before: never a second copy (R33).
            Some(NoticeStatus::Sent | NoticeStatus::Failed) => Ok(()),
            Some(_) => Err(JobError::transient(
                "notice is being sent by another worker",
            )),
        };
    };
    let outcome = send(&ctx, &notice).await;
    let release = match &outcome {
        Ok(()) => sqlx::query(
            "UPDATE notices SET status = 'sent', sent_at = now(), last_error = NULL, claimed_until = NULL WHERE id = $1",
        )
        .bind(notice_id)
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
            metrics::counter!("caseshare_emails_sent_total", "kind" => notice.kind.clone())
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

#[derive(Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct NoticeView {
    pub id: Uuid,
    pub kind: String,
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
