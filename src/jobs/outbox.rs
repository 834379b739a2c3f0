//! The outbox: the only place that writes `jobs` and `outbox` rows for
//! publishing (R35). Everything here runs in the caller's transaction, so a
//! job or a status event exists exactly when its cause committed; the relay
//! (`relay.rs`) publishes the rows with publisher confirms after the commit.

use sqlx::PgConnection;
use uuid::Uuid;

use super::relay;

/// The message on a job queue: the job's id (and kind, for people reading
/// the queue); the payload stays in PostgreSQL.
fn job_message(id: Uuid, kind: &str) -> serde_json::Value {
    serde_json::json!({ "job_id": id, "kind": kind })
}

/// One job: its row and its outbox row, one statement; this process's relay
/// is woken (no NOTIFY: see `relay`).
pub async fn enqueue(
    tx: &mut PgConnection,
    kind: &str,
    id: Uuid,
    payload: &serde_json::Value,
    requester: super::Requester,
) -> sqlx::Result<()> {
    sqlx::query(
        "WITH job AS (INSERT INTO jobs (id, kind, payload, org_id, subject_id, coalesce_key)
                      VALUES ($1, $2, $3, $4, $6, $7)),
              out AS (INSERT INTO outbox (exchange, routing_key, payload, job_id) VALUES ('jobs', $2, $5, $1))
         SELECT 1",
    )
    .bind(id)
    .bind(kind)
    .bind(payload)
    .bind(requester.org_id)
    .bind(job_message(id, kind))
    .bind(requester.subject_id)
    .bind(requester.coalesce_key)
    .execute(&mut *tx)
    .await?;
    relay::wake();
    Ok(())
}

/// Two CTEs (`job`, `out`) that enqueue one job for each row of the CTE
/// `source`, for a command that writes its whole effect in one statement:
/// `id`, `kind`, `payload`, `org`, `subject`, `coalesce_key` and `message`
/// are SQL expressions (placeholders), `message` bound to [`job_message`].
/// The caller wakes the relay after its statement.
#[allow(clippy::too_many_arguments)]
pub fn enqueue_ctes(
    source: &str,
    id: &str,
    kind: &str,
    payload: &str,
    org: &str,
    subject: &str,
    coalesce_key: &str,
    message: &str,
) -> String {
    format!(
        "job AS (INSERT INTO jobs (id, kind, payload, org_id, subject_id, coalesce_key)
                 SELECT {id}, {kind}, {payload}, {org}, {subject}, {coalesce_key} FROM {source}),
         out AS (INSERT INTO outbox (exchange, routing_key, payload, job_id)
                 SELECT 'jobs', {kind}, {message}, {id} FROM {source})"
    )
}

/// The message of job `id` of `kind` on its queue (for [`enqueue_ctes`]).
pub fn message(id: Uuid, kind: &str) -> serde_json::Value {
    job_message(id, kind)
}

/// Many jobs of one kind: two statements (UNNEST), whatever their number.
pub async fn enqueue_many(
    tx: &mut PgConnection,
    kind: &str,
    payloads: &[serde_json::Value],
    org_id: Option<Uuid>,
) -> sqlx::Result<Vec<Uuid>> {
    if payloads.is_empty() {
        return Ok(vec![]);
    }
    let ids: Vec<Uuid> = payloads.iter().map(|_| Uuid::now_v7()).collect();
    let messages: Vec<serde_json::Value> = ids.iter().map(|id| job_message(*id, kind)).collect();
    sqlx::query("INSERT INTO jobs (id, kind, payload, org_id) SELECT i, $1, p, $2 FROM unnest($3::uuid[], $4::jsonb[]) AS u(i, p)")
        .bind(kind)
        .bind(org_id)
        .bind(&ids)
        .bind(payloads)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO outbox (exchange, routing_key, payload, job_id)
         SELECT 'jobs', $1, m, i FROM unnest($2::uuid[], $3::jsonb[]) AS u(i, m)",
    )
    .bind(kind)
    .bind(&ids)
    .bind(&messages)
    .execute(&mut *tx)
    .await?;
    relay::wake();
    Ok(ids)
}

/// Publish an existing job again under its own id (a dead-letter requeue).
/// The relays find the rows by their poll (a requeue runs in the CLI).
pub async fn republish(tx: &mut PgConnection, id: Uuid, kind: &str) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO outbox (exchange, routing_key, payload, job_id) VALUES ('jobs', $1, $2, $3)",
    )
    .bind(kind)
    .bind(job_message(id, kind))
    .bind(id)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// A status a status event reports (R15, R59): a share's, a link share's,
/// an import's. The event's routing key is derived from it, never written by
/// hand: `status.<org_id>.<TYPE>.<label>` (e.g. `share.complete`).
pub trait StatusEvent: Copy + serde::Serialize {
    /// What the event is about: the payload's `type` and the key's first word.
    const TYPE: &'static str;
    /// The status, as the key's last word (its serialized form).
    fn label(self) -> &'static str;
}

/// Record the status event of `status` (R15) once for each org it concerns
/// (R59), in the caller's transaction: `payload` (ids only, never evidence
/// fields, R10) gets the event's `type` and `status`. The relay publishes
/// it to `<prefix>.status` with the routing key
/// `status.<org_id>.<TYPE>.<label>`, so a reader can be confined to its own
/// org's events by a topic permission on its bindings.
pub async fn status_event_tx<S: StatusEvent>(
    tx: &mut PgConnection,
    orgs: &[Uuid],
    status: S,
    mut payload: serde_json::Value,
) -> sqlx::Result<()> {
    payload["type"] = serde_json::json!(S::TYPE);
    payload["status"] = serde_json::json!(status);
    let event = format!("{}.{}", S::TYPE, status.label());
    insert_status_event(tx, orgs, &event, payload).await
}

async fn insert_status_event(
    tx: &mut PgConnection,
    orgs: &[Uuid],
    event: &str,
    payload: serde_json::Value,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO outbox (exchange, routing_key, payload)
         SELECT 'status', 'status.' || o || '.' || $2, $3
         FROM (SELECT DISTINCT o FROM unnest($1::uuid[]) o) orgs",
    )
    .bind(orgs)
    .bind(event)
    .bind(payload)
    .execute(&mut *tx)
    .await?;
    relay::wake();
    Ok(())
}
