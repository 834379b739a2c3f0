//! The append-only audit trail (R39, R50): who did what, when, on which
//! case/evidence/share. The table refuses UPDATE and DELETE (a trigger), and
//! entries carry ids and actions only, never evidence field values (R10).
//!
//! This file records entries (each signed with a MAC where it is written);
//! `read` reads a case's trail, genuine entries only; `chain` is the HMAC
//! chain: the key, sealing entries into the chain, checkpoints and
//! verification (R39's tamper evidence).

mod chain;
mod read;

pub use chain::{checkpoint, seal, verify, AuditKey, BrokenLink, Checkpoint};
pub use read::{for_case, page_for_case, AuditItem, GENUINE, ITEM_COLUMNS};

use chain::{SealRow, SEAL_COLUMNS};

use sqlx::PgConnection;
use uuid::Uuid;

#[derive(Debug, Clone, Copy)]
pub enum Action {
    CaseCreated,
    CaseUpdated,
    EvidenceAdded,
    Share,
    ShareComplete,
    Import,
    UpdateApplied,
    OnwardShare,
    Revoke,
    /// R22, R50: new evidence granted to a collaboration by the fan-out job.
    AutoShare,
    /// R25, R50: new evidence applied to a Justice partner's imported copy.
    AutoSync,
    /// R44: sharing with one principal stopped.
    AccessRevoked,
    AccessExternal,
    /// An operator put a dead-lettered job back to work (`caseshare dead-letters requeue`).
    DeadLetterRequeued,
    /// R40: evidence content stored (`PUT /v1/evidence/{id}/content`).
    ContentUploaded,
    LinkShare,
    LinkShareComplete,
    LinkShareFailed,
    LinkDownload,
    LinkPackageDeleted,
    LinkShareRevoked,
    /// Stored evidence content re-hashed against its recorded SHA-256
    /// (`caseshare content verify`), one entry per case.
    ContentVerified,
    /// R53: an import's files copied into the copy (counts per outcome).
    ContentCopied,
    /// R52: an evidence file read (actor, item, byte range).
    ContentRead,
    /// R50: admin changes, with the admin as actor.
    SetupCompleted,
    SettingsChanged,
    PolicyCreated,
    PolicyUpdated,
    PartnerPolicyAssigned,
    PartnerPolicyRemoved,
    /// R50: bootstrap by the service principal (no user actor;
    /// `details.actor = "service"`).
    OrgCreated,
    UserCreated,
    GroupCreated,
    PartnershipCreated,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::CaseCreated => "case_created",
            Action::CaseUpdated => "case_updated",
            Action::EvidenceAdded => "evidence_added",
            Action::Share => "share",
            Action::ShareComplete => "share_complete",
            Action::Import => "import",
            Action::UpdateApplied => "update_applied",
            Action::OnwardShare => "onward_share",
            Action::Revoke => "revoke",
            Action::AutoShare => "auto_share",
            Action::AutoSync => "auto_sync",
            Action::AccessRevoked => "access_revoked",
            Action::AccessExternal => "access_external",
            Action::DeadLetterRequeued => "dead_letter_requeued",
            Action::ContentUploaded => "content_uploaded",
            Action::LinkShare => "link_share",
            Action::LinkShareComplete => "link_share_complete",
            Action::LinkShareFailed => "link_share_failed",
            Action::LinkDownload => "link_download",
            Action::LinkPackageDeleted => "link_package_deleted",
            Action::LinkShareRevoked => "link_share_revoked",
            Action::ContentVerified => "content_verified",
            Action::ContentCopied => "content_copied",
            Action::ContentRead => "content_read",
            Action::SetupCompleted => "setup_completed",
            Action::SettingsChanged => "settings_changed",
            Action::PolicyCreated => "policy_created",
            Action::PolicyUpdated => "policy_updated",
            Action::PartnerPolicyAssigned => "partner_policy_assigned",
            Action::PartnerPolicyRemoved => "partner_policy_removed",
            Action::OrgCreated => "org_created",
            Action::UserCreated => "user_created",
            Action::GroupCreated => "group_created",
            Action::PartnershipCreated => "partnership_created",
        }
    }
}

#[derive(Default)]
pub struct Entry {
    pub org_id: Option<Uuid>,
    pub actor_user_id: Option<Uuid>,
    pub case_id: Option<Uuid>,
    pub evidence_id: Option<Uuid>,
    pub share_id: Option<Uuid>,
    pub details: Option<serde_json::Value>,
}

/// R50: from here to the end of the transaction, audit entries without a
/// user actor are the job's (`details.actor = {"job": id}`).
pub async fn act_as_job(tx: &mut PgConnection, job_id: Uuid) -> sqlx::Result<()> {
    sqlx::query("SELECT set_config('caseshare.job_id', $1, true)")
        .bind(job_id.to_string())
        .execute(tx)
        .await?;
    Ok(())
}

/// R50: an admin change (`actor` = the admin) or, with no actor, a bootstrap
/// action of the service principal, in the caller's transaction.
pub async fn admin(
    db: &mut PgConnection,
    action: Action,
    org_id: Uuid,
    actor: Option<Uuid>,
    details: serde_json::Value,
) -> sqlx::Result<()> {
    let mut details = details;
    if actor.is_none() {
        details["actor"] = serde_json::json!("service");
    }
    record(
        db,
        action,
        Entry {
            org_id: Some(org_id),
            actor_user_id: actor,
            details: Some(details),
            ..Default::default()
        },
    )
    .await
}

/// Record an entry in the caller's transaction. An entry with no user actor
/// written by a job that declared itself (`act_as_job`) names that job as its
/// actor (R50: automatic actions are audited with the job as actor).
pub async fn record(db: &mut PgConnection, action: Action, e: Entry) -> sqlx::Result<()> {
    let rows: Vec<SealRow> = sqlx::query_as(&format!(
        "INSERT INTO audit_log (org_id, actor_user_id, action, case_id, evidence_id, share_id, details)
         VALUES ($1, $2, $3, $4, $5, $6, coalesce($7, '{{}}'::jsonb)
                 || CASE WHEN $2::uuid IS NULL AND coalesce(current_setting('caseshare.job_id', true), '') <> ''
                         THEN jsonb_build_object('actor', jsonb_build_object('job', current_setting('caseshare.job_id', true)))
                         ELSE '{{}}'::jsonb END)
         RETURNING {SEAL_COLUMNS}"
    ))
    .bind(e.org_id)
    .bind(e.actor_user_id)
    .bind(action.as_str())
    .bind(e.case_id)
    .bind(e.evidence_id)
    .bind(e.share_id)
    .bind(e.details)
    .fetch_all(&mut *db)
    .await?;
    stamp(db, &rows).await
}

/// Many entries of one action in one statement (UNNEST), with `record`'s
/// job-actor rule: batched intake audits each item without a round trip each.
pub async fn record_many(
    db: &mut PgConnection,
    action: Action,
    entries: &[Entry],
) -> sqlx::Result<()> {
    if entries.is_empty() {
        return Ok(());
    }
    let col = |f: fn(&Entry) -> Option<Uuid>| entries.iter().map(f).collect::<Vec<_>>();
    let details: Vec<serde_json::Value> = entries
        .iter()
        .map(|e| e.details.clone().unwrap_or_else(|| serde_json::json!({})))
        .collect();
    let rows: Vec<SealRow> = sqlx::query_as(&format!(
        "INSERT INTO audit_log (org_id, actor_user_id, action, case_id, evidence_id, share_id, details)
         SELECT o, u, $1, c, e, s, d
                || CASE WHEN u IS NULL AND coalesce(current_setting('caseshare.job_id', true), '') <> ''
                        THEN jsonb_build_object('actor', jsonb_build_object('job', current_setting('caseshare.job_id', true)))
                        ELSE '{{}}'::jsonb END
         FROM unnest($2::uuid[], $3::uuid[], $4::uuid[], $5::uuid[], $6::uuid[], $7::jsonb[]) AS x (o, u, c, e, s, d)
         RETURNING {SEAL_COLUMNS}"
    ))
    .bind(action.as_str())
    .bind(col(|e| e.org_id))
    .bind(col(|e| e.actor_user_id))
    .bind(col(|e| e.case_id))
    .bind(col(|e| e.evidence_id))
    .bind(col(|e| e.share_id))
    .bind(&details)
    .fetch_all(&mut *db)
    .await?;
    stamp(db, &rows).await
}

/// The key entries are signed with where they are written, installed once
/// per process from the audit key (`install_key`). Every writer of the trail
/// goes through `record`/`record_many`, deep in domain code that has a
/// transaction but no settings, hence a process-wide value.
static ENTRY_KEY: std::sync::RwLock<Option<AuditKey>> = std::sync::RwLock::new(None);

/// Sign the entries this process writes with (a key derived from) `key`.
pub fn install_key(key: &AuditKey) {
    *ENTRY_KEY.write().unwrap_or_else(|e| e.into_inner()) = Some(key.entry_key());
}

fn entry_key() -> sqlx::Result<AuditKey> {
    ENTRY_KEY
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
        .ok_or_else(|| {
            sqlx::Error::Configuration("the audit key is not installed (audit::install_key)".into())
        })
}

/// SQL select-list items that reserve one entry ahead of its insert:
/// `audit_id` from the trail's sequence and `audit_at_us`, the database's
/// clock in microseconds (see [`Reserved`]).
pub const RESERVE_COLUMNS: &str = "nextval(pg_get_serial_sequence('audit_log', 'id')) AS audit_id,
     (extract(epoch FROM clock_timestamp()) * 1000000)::bigint AS audit_at_us";

/// The `aud` CTE of a one-statement command: insert one reserved entry
/// (see [`Reserved`]) for each row of `source`, already MACed. The values
/// are SQL expressions for `id, at, org_id, actor_user_id, action, case_id,
/// evidence_id, mac`, in that order.
pub fn insert_reserved_cte(source: &str, values: [&str; 8]) -> String {
    let [id, at, org, actor, action, case, evidence, mac] = values;
    format!(
        "aud AS (INSERT INTO audit_log (id, at, org_id, actor_user_id, action, case_id, evidence_id, mac)
                 SELECT {id}, {at}, {org}, {actor}, {action}, {case}, {evidence}, {mac} FROM {source})"
    )
}

/// An entry's id and time taken ahead of its insert, for a command that
/// writes its whole effect in one statement: the MAC is computed here,
/// before the statement, so the entry is inserted whole with its MAC (no
/// stamping UPDATE, no transaction held open for it). Ids still come from
/// the one sequence, so the trail's order is the order they were taken in,
/// as for `record`.
pub struct Reserved {
    pub id: i64,
    at_us: i64,
}

impl Reserved {
    /// From the [`RESERVE_COLUMNS`] of a row.
    pub fn new(id: i64, at_us: i64) -> Self {
        Reserved { id, at_us }
    }

    /// The entry's `at`.
    pub fn at(&self) -> chrono::DateTime<chrono::Utc> {
        chrono::DateTime::from_timestamp_micros(self.at_us).unwrap_or_default()
    }

    /// The MAC of `e` as this entry. Entries with details cannot be
    /// reserved: the MAC covers PostgreSQL's canonical text of them, which
    /// only the database writes; an entry made here has `{}`.
    pub fn mac(&self, action: Action, e: &Entry) -> sqlx::Result<Vec<u8>> {
        debug_assert!(e.details.is_none(), "a reserved entry has no details");
        let row = SealRow {
            seq: None,
            id: self.id,
            at_us: self.at_us,
            org_id: e.org_id,
            actor_user_id: e.actor_user_id,
            action: action.as_str().to_string(),
            case_id: e.case_id,
            evidence_id: e.evidence_id,
            share_id: e.share_id,
            details: "{}".into(),
            prev_hash: None,
            hash: None,
            mac: None,
        };
        Ok(entry_key()?.entry_mac(&row))
    }
}

/// Set the MAC of entries just inserted, in the inserting transaction.
async fn stamp(db: &mut PgConnection, rows: &[SealRow]) -> sqlx::Result<()> {
    let key = entry_key()?;
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    let macs: Vec<Vec<u8>> = rows.iter().map(|r| key.entry_mac(r)).collect();
    sqlx::query(
        "UPDATE audit_log a SET mac = u.m FROM unnest($1::bigint[], $2::bytea[]) AS u (id, m) WHERE a.id = u.id",
    )
    .bind(&ids)
    .bind(&macs)
    .execute(db)
    .await?;
    Ok(())
}
