//! Jobs: one small serializable struct per kind, one idempotent handler each.
//!
//! A job is written to PostgreSQL (`jobs` + an `outbox` row) inside the
//! transaction of the request that caused it, so a job exists exactly when its
//! cause committed (R35). The outbox relay (`relay.rs`) publishes it with
//! publisher confirms; the runner (`runner.rs`) consumes it with manual acks,
//! retries transient failures with backoff and jitter and dead-letters the rest
//! (R36). Handlers key their effects (unique constraints, `ON CONFLICT DO
//! NOTHING`), so a redelivery or a second worker changes nothing.

pub mod relay;
pub mod retry;
pub mod runner;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgPool};
use std::future::Future;
use std::sync::Arc;
use uuid::Uuid;

use crate::amqp::Topology;
use crate::config::Settings;

/// The wire name of each job kind is a contract (queue names, rows): never rename.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum JobKind {
    EvidenceAdded,
    ShareCase,
    ImportCase,
    RevokeShare,
    SendNotice,
    BuildLinkShare,
}

impl JobKind {
    pub const ALL: &'static [JobKind] = &[
        JobKind::EvidenceAdded,
        JobKind::ShareCase,
        JobKind::ImportCase,
        JobKind::RevokeShare,
        JobKind::SendNotice,
        JobKind::BuildLinkShare,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::EvidenceAdded => "evidence-added",
            JobKind::ShareCase => "share-case",
            JobKind::ImportCase => "import-case",
            JobKind::RevokeShare => "revoke-share",
            JobKind::SendNotice => "send-notice",
            JobKind::BuildLinkShare => "build-link-share",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|k| k.as_str() == s)
    }

    /// Run the handler of this kind on a stored payload.
    pub async fn dispatch(
        self,
        job_id: Uuid,
        payload: serde_json::Value,
        ctx: &JobContext,
    ) -> Result<(), JobError> {
        match self {
            JobKind::EvidenceAdded => {
                run_as::<crate::sharing::fanout::EvidenceAdded>(job_id, payload, ctx).await
            }
            JobKind::ShareCase => run_as::<crate::sharing::ShareCase>(job_id, payload, ctx).await,
            JobKind::ImportCase => {
                run_as::<crate::receiving::ImportCase>(job_id, payload, ctx).await
            }
            JobKind::RevokeShare => {
                run_as::<crate::revocation::RevokeShare>(job_id, payload, ctx).await
            }
            JobKind::SendNotice => run_as::<crate::notify::SendNotice>(job_id, payload, ctx).await,
            JobKind::BuildLinkShare => {
                run_as::<crate::linkshare::BuildLinkShare>(job_id, payload, ctx).await
            }
        }
    }

    /// Tell the job it was dead-lettered (e.g. mark its share `failed`).
    pub async fn dead(self, payload: serde_json::Value, ctx: &JobContext, reason: &str) {
        match self {
            JobKind::EvidenceAdded => {
                dead_as::<crate::sharing::fanout::EvidenceAdded>(payload, ctx, reason).await
            }
            JobKind::ShareCase => dead_as::<crate::sharing::ShareCase>(payload, ctx, reason).await,
            JobKind::ImportCase => {
                dead_as::<crate::receiving::ImportCase>(payload, ctx, reason).await
            }
            JobKind::RevokeShare => {
                dead_as::<crate::revocation::RevokeShare>(payload, ctx, reason).await
            }
            JobKind::SendNotice => dead_as::<crate::notify::SendNotice>(payload, ctx, reason).await,
            JobKind::BuildLinkShare => {
                dead_as::<crate::linkshare::BuildLinkShare>(payload, ctx, reason).await
            }
        }
    }
}

async fn dead_as<J: Job>(payload: serde_json::Value, ctx: &JobContext, reason: &str) {
    if let Ok(job) = serde_json::from_value::<J>(payload) {
        job.on_dead(ctx, reason).await;
    }
}

async fn run_as<J: Job>(
    job_id: Uuid,
    payload: serde_json::Value,
    ctx: &JobContext,
) -> Result<(), JobError> {
    let job: J = serde_json::from_value(payload)
        .map_err(|e| JobError::Permanent(format!("malformed {} payload: {e}", J::KIND.as_str())))?;
    job.run(job_id, ctx).await
}

/// What a handler's failure means for the runner.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// Worth retrying later (database or broker hiccup, SMTP 4xx...).
    #[error("{0}")]
    Transient(String),
    /// Retrying cannot help (bad payload, a referenced row is gone, SMTP 5xx).
    #[error("{0}")]
    Permanent(String),
}

impl From<sqlx::Error> for JobError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::RowNotFound => JobError::Permanent("referenced row not found".into()),
            other => JobError::Transient(format!("database: {other}")),
        }
    }
}

/// Put the case a job is about on its span (the runner's `job` span), so
/// one case can be followed through the logs.
pub fn record_case(case_id: Uuid) {
    tracing::Span::current().record("case_id", tracing::field::display(case_id));
}

/// What every handler gets: pooled connections and settings, nothing per job.
#[derive(Clone)]
pub struct JobContext {
    pub db: PgPool,
    pub settings: Arc<Settings>,
    pub topology: Topology,
    pub mailer: crate::notify::Mailer,
    pub store: crate::store::ContentStore,
}

pub trait Job: Serialize + DeserializeOwned + Send + Sync + 'static {
    const KIND: JobKind;

    /// Do the work. Must be idempotent: running it twice has the effect of once.
    fn run(
        &self,
        job_id: Uuid,
        ctx: &JobContext,
    ) -> impl Future<Output = Result<(), JobError>> + Send;

    /// Called once when the job is dead-lettered, so its subject can show it.
    fn on_dead(&self, _ctx: &JobContext, _reason: &str) -> impl Future<Output = ()> + Send {
        async {}
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
            let id = Uuid::new_v4();
            self.enqueue_with_id_tx(tx, id, org_id).await?;
            Ok(id)
        }
    }

    /// Like `enqueue_for_tx` with an id chosen by the caller (so the cause can
    /// reference its job in the same insert). One round trip: the job row, its
    /// outbox row and the relay's wake-up in one statement.
    fn enqueue_with_id_tx(
        &self,
        tx: &mut PgConnection,
        id: Uuid,
        org_id: Option<Uuid>,
    ) -> impl Future<Output = sqlx::Result<()>> + Send {
        async move {
            let payload =
                serde_json::to_value(self).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
            let message = serde_json::json!({ "job_id": id, "kind": Self::KIND.as_str() });
            sqlx::query(
                "WITH job AS (INSERT INTO jobs (id, kind, payload, org_id) VALUES ($1, $2, $3, $4)),
                      out AS (INSERT INTO outbox (exchange, routing_key, payload, job_id) VALUES ('jobs', $2, $5, $1))
                 SELECT pg_notify($6, '')",
            )
            .bind(id)
            .bind(Self::KIND.as_str())
            .bind(&payload)
            .bind(org_id)
            .bind(&message)
            .bind(relay::CHANNEL)
            .execute(&mut *tx)
            .await?;
            Ok(())
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
    if jobs.is_empty() {
        return Ok(vec![]);
    }
    let ids: Vec<Uuid> = jobs.iter().map(|_| Uuid::new_v4()).collect();
    let payloads = jobs
        .iter()
        .map(serde_json::to_value)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    let messages: Vec<serde_json::Value> = ids
        .iter()
        .map(|id| serde_json::json!({ "job_id": id, "kind": J::KIND.as_str() }))
        .collect();
    sqlx::query("INSERT INTO jobs (id, kind, payload, org_id) SELECT i, $1, p, $2 FROM unnest($3::uuid[], $4::jsonb[]) AS u(i, p)")
        .bind(J::KIND.as_str())
        .bind(org_id)
        .bind(&ids)
        .bind(&payloads)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO outbox (exchange, routing_key, payload, job_id)
         SELECT 'jobs', $1, m, i FROM unnest($2::uuid[], $3::jsonb[]) AS u(i, m)",
    )
    .bind(J::KIND.as_str())
    .bind(&ids)
    .bind(&messages)
    .execute(&mut *tx)
    .await?;
    relay::notify_tx(tx).await?;
    Ok(ids)
}

/// The message body on a job queue: ids only, the payload stays in PostgreSQL.
#[derive(Debug, Serialize, Deserialize)]
pub struct JobMessage {
    pub job_id: Uuid,
}

/// Record a status event (R15) in the caller's transaction; the relay publishes
/// it to `<prefix>.status` with `routing_key` such as `share.complete`. Events
/// carry ids and status only, never evidence fields (R10).
pub async fn status_event_tx(
    tx: &mut PgConnection,
    routing_key: &str,
    payload: serde_json::Value,
) -> sqlx::Result<()> {
    sqlx::query("INSERT INTO outbox (exchange, routing_key, payload) VALUES ('status', $1, $2)")
        .bind(routing_key)
        .bind(payload)
        .execute(&mut *tx)
        .await?;
    relay::notify_tx(tx).await
}

#[derive(Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct JobView {
    pub id: Uuid,
    #[serde(skip)]
    pub org_id: Option<Uuid>,
    pub kind: String,
    pub status: String,
    pub attempts: i32,
    pub deliveries: i32,
    pub last_error: Option<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub finished_at: Option<chrono::DateTime<chrono::Utc>>,
}

pub async fn find(db: &PgPool, id: Uuid) -> sqlx::Result<Option<JobView>> {
    sqlx::query_as(
        "SELECT id, org_id, kind, status::text AS status, attempts, deliveries, last_error, created_at, finished_at
         FROM jobs WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(db)
    .await
}
