//! Jobs: one small serializable struct per kind, one idempotent handler each.
//! This layer knows no domain: a job is anything implementing [`Job`], and the
//! kinds a process runs are the ones registered in a [`Registry`] at the top
//! of the application (`crate::job_registry`).
//!
//! A job is written to PostgreSQL (`jobs` + an `outbox` row, `outbox.rs`)
//! inside the transaction of the request that caused it, so a job exists
//! exactly when its cause committed (R35). The outbox relay (`relay.rs`)
//! publishes it with publisher confirms; the runner (`runner.rs`) consumes it
//! with manual acks, retries transient failures with backoff and jitter and
//! dead-letters the rest (R36). Handlers key their effects (unique
//! constraints, `ON CONFLICT DO NOTHING`), so a redelivery or a second worker
//! changes nothing.

mod events;
pub mod faults;
pub mod outbox;
pub mod registry;
pub mod relay;
pub mod rescue;
pub mod retry;
mod rows;
pub mod runner;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgPool};
use std::future::Future;
use uuid::Uuid;

pub use registry::{EventError, Registry, Spans, Upstream, SPAN_TARGET};
pub use rows::{complete_unrun_tx, requeue_tx, take_queued};

/// A job row's status (`job_status` in PostgreSQL).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, sqlx::Type, utoipa::ToSchema,
)]
#[sqlx(type_name = "job_status", rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    Queued,
    Running,
    Retrying,
    Complete,
    Dead,
}

impl crate::db::PgEnum for JobStatus {
    const TYPE: &'static str = "job_status";
    fn label(self) -> &'static str {
        self.as_str()
    }
}

impl JobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Running => "running",
            JobStatus::Retrying => "retrying",
            JobStatus::Complete => "complete",
            JobStatus::Dead => "dead",
        }
    }
}

impl std::fmt::Display for JobStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a handler's failure means for the runner.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// Worth retrying later (database or broker hiccup, SMTP 4xx...).
    #[error("{reason}")]
    Transient {
        reason: String,
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// Retrying cannot help (bad payload, a referenced row is gone, SMTP 5xx).
    #[error("{reason}")]
    Permanent {
        reason: String,
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
}

impl JobError {
    pub fn transient(reason: impl Into<String>) -> Self {
        JobError::Transient {
            reason: reason.into(),
            source: None,
        }
    }

    pub fn permanent(reason: impl Into<String>) -> Self {
        JobError::Permanent {
            reason: reason.into(),
            source: None,
        }
    }

    /// The reason with its whole source chain, as recorded on the job row.
    pub fn chain(&self) -> String {
        let mut out = self.to_string();
        let mut source = std::error::Error::source(self);
        while let Some(s) = source {
            out.push_str(": ");
            out.push_str(&s.to_string());
            source = s.source();
        }
        out
    }
}

/// The domain's error as a job's outcome: the database's errors as
/// [`From<sqlx::Error>`] decides, an internal error transient, any other
/// (a refusal, a missing row) permanent.
impl From<crate::error::Error> for JobError {
    fn from(e: crate::error::Error) -> Self {
        use crate::error::Error;
        match e {
            Error::Database(e) => e.into(),
            Error::Internal(e) => JobError::transient(e.to_string()),
            other => JobError::permanent(other.to_string()),
        }
    }
}

impl From<sqlx::Error> for JobError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::RowNotFound => JobError::Permanent {
                reason: "referenced row not found".into(),
                source: Some(Box::new(e)),
            },
            other => JobError::Transient {
                reason: "database".into(),
                source: Some(Box::new(other)),
            },
        }
    }
}

/// Record `id` as the subject `field` of the running job's span (a field
/// its [`registry::Spans`] declares), e.g. the case a job turned out to be
/// about, so it can be followed through the logs.
pub fn record_subject(field: &'static str, id: Uuid) {
    tracing::Span::current().record(field, tracing::field::display(id));
}

/// What a dead-letter requeue reopened besides the job row (for the operator
/// and the audit entry).
#[derive(Default)]
pub struct Reopened {
    /// e.g. `notice <id>: failed -> pending`.
    pub subject: Option<String>,
    /// What the requeue's audit entry is filed under besides the job's org
    /// (the handler names its subject's column, e.g. `share_id`); its
    /// `org_id`, actor and details are the requeue's own.
    pub filed_under: crate::audit::Entry,
}

/// One kind of job. Its `NAME` is a wire contract (queue names, rows): never
/// rename it.
pub trait Job: Serialize + DeserializeOwned + Send + Sync + 'static {
    const NAME: &'static str;

    /// Deliveries in flight per worker, as a multiple of the configured
    /// concurrency (jobs that wait on the network want more).
    const PREFETCH_FACTOR: u16 = 1;

    /// What the handler gets: pooled connections and settings, nothing per job.
    type Context: Send + Sync + 'static;

    /// Do the work. Must be idempotent: running it twice has the effect of once.
    fn run(
        &self,
        job_id: Uuid,
        ctx: &Self::Context,
    ) -> impl Future<Output = Result<(), JobError>> + Send;

    /// Called once when the job is dead-lettered, so its subject can show it.
    fn on_dead(&self, _ctx: &Self::Context, _reason: &str) -> impl Future<Output = ()> + Send {
        async {}
    }

    /// Called in the operator's transaction when a dead job is requeued:
    /// undo what `on_dead` marked, so the handler acts on the redelivery.
    fn on_requeue(
        &self,
        _tx: &mut PgConnection,
    ) -> impl Future<Output = sqlx::Result<Reopened>> + Send {
        async { Ok(Reopened::default()) }
    }

    /// Record this job in the caller's transaction (the outbox).
    fn enqueue_tx(&self, tx: &mut PgConnection) -> impl Future<Output = sqlx::Result<Uuid>> + Send {
        self.enqueue_for_tx(tx, None)
    }

    /// Like `enqueue_tx`, naming the org whose users may read the job's status.
    fn enqueue_for_tx(
        &self,
        tx: &mut PgConnection,
        org_id: Option<Uuid>,
    ) -> impl Future<Output = sqlx::Result<Uuid>> + Send {
        async move {
            let id = Uuid::now_v7();
            self.enqueue_with_id_tx(tx, id, org_id).await?;
            Ok(id)
        }
    }

    /// Like `enqueue_for_tx` for a job about one subject (the row its
    /// status is read through: the users of `org_id` who see that subject
    /// may read it, R41, as the application's job visibility decides).
    fn enqueue_about_tx(
        &self,
        tx: &mut PgConnection,
        org_id: Uuid,
        subject_id: Uuid,
    ) -> impl Future<Output = sqlx::Result<Uuid>> + Send {
        async move {
            let id = Uuid::now_v7();
            self.enqueue_with_id_tx(tx, id, Requester::subject(org_id, subject_id))
                .await?;
            Ok(id)
        }
    }

    /// Like `enqueue_for_tx` with an id chosen by the caller (so the cause can
    /// reference its job in the same insert).
    fn enqueue_with_id_tx(
        &self,
        tx: &mut PgConnection,
        id: Uuid,
        requester: impl Into<Requester> + Send,
    ) -> impl Future<Output = sqlx::Result<()>> + Send {
        async move {
            let payload =
                serde_json::to_value(self).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
            outbox::enqueue(tx, Self::NAME, id, &payload, requester.into()).await
        }
    }
}

/// Who may read a job's status, and how the queue files it: the users of
/// `org_id` (none: the service only); when the job has a subject (what it
/// is about, for the domain a case), only those who see it (R41); and its
/// coalesce key, when jobs of its kind may be done together
/// ([`take_queued`]).
#[derive(Debug, Clone, Default)]
pub struct Requester {
    pub org_id: Option<Uuid>,
    pub subject_id: Option<Uuid>,
    pub coalesce_key: Option<Uuid>,
}

impl Requester {
    /// A job about `subject_id` (a case), read by the users of `org_id`
    /// who see it.
    pub fn subject(org_id: Uuid, subject_id: Uuid) -> Self {
        Requester {
            org_id: Some(org_id),
            subject_id: Some(subject_id),
            coalesce_key: None,
        }
    }

    /// The same, and coalesced with the queued jobs of its kind and `key`.
    pub fn coalescing(self, key: Uuid) -> Self {
        Requester {
            coalesce_key: Some(key),
            ..self
        }
    }
}

impl From<Option<Uuid>> for Requester {
    fn from(org_id: Option<Uuid>) -> Self {
        Requester {
            org_id,
            ..Default::default()
        }
    }
}

/// Record many jobs of one kind in the caller's transaction: two statements
/// (UNNEST), whatever their number.
pub async fn enqueue_many_tx<J: Job>(
    tx: &mut PgConnection,
    jobs: &[J],
    org_id: Option<Uuid>,
) -> sqlx::Result<Vec<Uuid>> {
    let payloads = jobs
        .iter()
        .map(serde_json::to_value)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    outbox::enqueue_many(tx, J::NAME, &payloads, org_id).await
}

/// The message body on a job queue: ids only, the payload stays in PostgreSQL.
#[derive(Debug, Serialize, Deserialize)]
pub struct JobMessage {
    pub job_id: Uuid,
}

/// The kinds of job (the OpenAPI document's closed set for `JobView.kind`;
/// each is a [`Job::NAME`]).
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "kebab-case")]
#[allow(dead_code)]
pub enum JobKind {
    BuildLinkShare,
    CopyContent,
    EvidenceAdded,
    ImportCase,
    RevokeShare,
    SendNotice,
    ShareCase,
    StopSharing,
}

#[derive(Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct JobView {
    pub id: Uuid,
    #[serde(skip)]
    pub org_id: Option<Uuid>,
    /// What the job is about (a case): R41's visibility.
    #[serde(skip)]
    pub subject_id: Option<Uuid>,
    #[schema(value_type = JobKind)]
    pub kind: String,
    pub status: JobStatus,
    pub attempts: i32,
    pub deliveries: i32,
    pub last_error: Option<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub finished_at: Option<chrono::DateTime<chrono::Utc>>,
}

pub async fn find(db: &PgPool, id: Uuid) -> sqlx::Result<Option<JobView>> {
    sqlx::query_as(
        "SELECT id, org_id, subject_id, kind, status, attempts, deliveries, last_error, created_at, finished_at
         FROM jobs WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(db)
    .await
}
