//! The append-only audit trail (R39): who did what, when, on which
//! case/evidence/share. The table refuses UPDATE and DELETE (a trigger), and
//! entries carry ids and actions only, never evidence field values (R10).

use serde::Serialize;
use sqlx::PgConnection;
use utoipa::ToSchema;
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

/// SQL condition over `audit_log a`: the entry was not refused by the sealer
/// (written outside the service). Every read of the trail carries it.
pub const GENUINE: &str = "NOT EXISTS (SELECT 1 FROM audit_refused r WHERE r.id = a.id)";

#[derive(Debug, Clone, Serialize, serde::Deserialize, sqlx::FromRow, ToSchema)]
pub struct AuditItem {
    pub id: i64,
    pub at: chrono::DateTime<chrono::Utc>,
    pub org_id: Option<Uuid>,
    pub actor_user_id: Option<Uuid>,
    pub action: String,
    pub case_id: Option<Uuid>,
    pub evidence_id: Option<Uuid>,
    pub share_id: Option<Uuid>,
    /// What the action concerned, by action (ids, counts, the actor when it
    /// is a job or the service; never evidence field values, R10).
    #[schema(value_type = std::collections::HashMap<String, serde_json::Value>)]
    pub details: serde_json::Value,
}

/// Entries about `case_id` recorded by `org_id` (each org sees its own trail).
/// The columns of an [`AuditItem`], for queries over `audit_log a`.
pub const ITEM_COLUMNS: &str =
    "a.id, a.at, a.org_id, a.actor_user_id, a.action, a.case_id, a.evidence_id, a.share_id, a.details";

pub async fn for_case(
    db: &mut PgConnection,
    org_id: Uuid,
    case_id: Uuid,
) -> sqlx::Result<Vec<AuditItem>> {
    sqlx::query_as(
        &format!("SELECT {ITEM_COLUMNS} FROM audit_log a WHERE a.case_id = $1 AND a.org_id = $2 AND {GENUINE} ORDER BY a.id"),
    )
    .bind(case_id)
    .bind(org_id)
    .fetch_all(db)
    .await
}

/// One page of `for_case`, after the entry `after` (keyset on the id, so a
/// page of a long trail reads one page); one row more than `limit` is read,
/// so the caller knows whether another page follows.
pub async fn page_for_case(
    db: &mut PgConnection,
    org_id: Uuid,
    case_id: Uuid,
    after: Option<i64>,
    limit: usize,
) -> sqlx::Result<Vec<AuditItem>> {
    sqlx::query_as(&format!(
        "SELECT {ITEM_COLUMNS} FROM audit_log a
         WHERE a.case_id = $1 AND a.org_id = $2 AND ($3::bigint IS NULL OR a.id > $3) AND {GENUINE}
         ORDER BY a.id LIMIT $4"
    ))
    .bind(case_id)
    .bind(org_id)
    .bind(after)
    .bind(limit as i64 + 1)
    .fetch_all(db)
    .await
}

/// The key of the audit chain (`CASESHARE_AUDIT_KEY`): HMAC-SHA-256 links
/// made and checked by the service, so a writer of the table without the
/// key cannot rewrite the chain consistently.
#[derive(Clone)]
pub struct AuditKey(std::sync::Arc<[u8]>);

impl AuditKey {
    pub fn new(key: &[u8]) -> Self {
        AuditKey(key.into())
    }

    /// A key of its own for `purpose`, derived from this one (HMAC of the
    /// purpose under this key), so that no other use of the key can be made
    /// to produce an audit link or checkpoint signature.
    pub fn derive(&self, purpose: &str) -> AuditKey {
        use hmac::Mac;
        let mut mac = self.mac();
        mac.update(b"caseshare derived key\0");
        mac.update(purpose.as_bytes());
        AuditKey::new(&mac.finalize().into_bytes())
    }

    /// HMAC-SHA256 of `data` under this key.
    pub fn tag(&self, data: &[u8]) -> [u8; 32] {
        use hmac::Mac;
        let mut mac = self.mac();
        mac.update(data);
        mac.finalize().into_bytes().into()
    }

    /// The key entries are signed with when written (not the chain's own).
    fn entry_key(&self) -> AuditKey {
        self.derive("audit entry")
    }

    /// An entry's MAC: every column but its place in the chain.
    fn entry_mac(&self, e: &SealRow) -> Vec<u8> {
        use hmac::Mac;
        let mut mac = self.mac();
        field(&mut mac, Some(b"caseshare audit entry"));
        for part in e.content() {
            field(&mut mac, part.as_deref());
        }
        mac.finalize().into_bytes().to_vec()
    }

    fn mac(&self) -> hmac::Hmac<sha2::Sha256> {
        use hmac::Mac;
        hmac::Hmac::<sha2::Sha256>::new_from_slice(&self.0).expect("HMAC takes keys of any length")
    }

    /// HMAC(key, prev || fields), the fields encoded by position.
    fn link(&self, prev: Option<&[u8]>, seq: i64, e: &SealRow) -> Vec<u8> {
        use hmac::Mac;
        let mut mac = self.mac();
        field(&mut mac, prev);
        field(&mut mac, Some(&seq.to_be_bytes()));
        for part in e.content() {
            field(&mut mac, part.as_deref());
        }
        mac.finalize().into_bytes().to_vec()
    }

    /// The signature of a checkpoint (seq, hash).
    fn sign(&self, seq: i64, hash: &[u8]) -> Vec<u8> {
        use hmac::Mac;
        let mut mac = self.mac();
        field(&mut mac, Some(b"caseshare audit checkpoint"));
        field(&mut mac, Some(&seq.to_be_bytes()));
        field(&mut mac, Some(hash));
        mac.finalize().into_bytes().to_vec()
    }
}

/// One field: 0 for NULL, or 1, its length (8 bytes) and its bytes.
fn field(mac: &mut hmac::Hmac<sha2::Sha256>, value: Option<&[u8]>) {
    use hmac::Mac;
    match value {
        None => mac.update(&[0]),
        Some(v) => {
            mac.update(&[1]);
            mac.update(&(v.len() as u64).to_be_bytes());
            mac.update(v);
        }
    }
}

/// An entry as the chain covers it: every column, `at` in microseconds
/// since the epoch and `details` in PostgreSQL's canonical jsonb text.
#[derive(sqlx::FromRow)]
struct SealRow {
    seq: Option<i64>,
    id: i64,
    at_us: i64,
    org_id: Option<Uuid>,
    actor_user_id: Option<Uuid>,
    action: String,
    case_id: Option<Uuid>,
    evidence_id: Option<Uuid>,
    share_id: Option<Uuid>,
    details: String,
    prev_hash: Option<Vec<u8>>,
    hash: Option<Vec<u8>>,
    mac: Option<Vec<u8>>,
}

const SEAL_COLUMNS: &str =
    "seq, id, (extract(epoch FROM at) * 1000000)::bigint AS at_us, org_id, actor_user_id,
    action, case_id, evidence_id, share_id, details::text AS details, prev_hash, hash, mac";

impl SealRow {
    /// Every column of the entry itself, by position, NULL explicit.
    fn content(&self) -> [Option<Vec<u8>>; 9] {
        let uuid = |u: Option<Uuid>| u.map(|u| u.as_bytes().to_vec());
        [
            Some(self.id.to_be_bytes().to_vec()),
            Some(self.at_us.to_be_bytes().to_vec()),
            uuid(self.org_id),
            uuid(self.actor_user_id),
            Some(self.action.as_bytes().to_vec()),
            uuid(self.case_id),
            uuid(self.evidence_id),
            uuid(self.share_id),
            Some(self.details.as_bytes().to_vec()),
        ]
    }
}

/// Seal unsealed entries into the chain, in id order, continuing from the
/// last sealed one. One sealer at a time (an advisory lock); returns how
/// many entries were sealed. Chain order is `seq`, assigned here, so an entry
/// that commits late is still sealed, just further along the chain. An entry
/// whose MAC (set where it was written, `record`) does not hold was written
/// behind the service's back: it is refused, listed in `audit_refused` with
/// the reason and left out of the chain and of every trail.
pub async fn seal(db: &sqlx::PgPool, key: &AuditKey) -> sqlx::Result<u64> {
    let mut tx = db.begin().await?;
    let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock(7243601)")
        .fetch_one(&mut *tx)
        .await?;
    if !locked {
        return Ok(0);
    }
    let rows: Vec<SealRow> = sqlx::query_as(&format!(
        "SELECT {SEAL_COLUMNS} FROM audit_log a
         WHERE seq IS NULL AND {GENUINE} ORDER BY id LIMIT 5000"
    ))
    .fetch_all(&mut *tx)
    .await?;
    if rows.is_empty() {
        return Ok(0);
    }
    let legacy: Vec<i64> =
        sqlx::query_scalar("SELECT id FROM audit_legacy_unsealed WHERE id = ANY($1)")
            .bind(rows.iter().map(|r| r.id).collect::<Vec<_>>())
            .fetch_all(&mut *tx)
            .await?;
    let head: Option<(i64, Vec<u8>)> = sqlx::query_as(
        "SELECT seq, hash FROM audit_log WHERE hash IS NOT NULL ORDER BY seq DESC LIMIT 1",
    )
    .fetch_optional(&mut *tx)
    .await?;
    let (mut seq, mut prev) = head.map_or((0, None), |(s, h)| (s, Some(h)));
    let entry_key = key.entry_key();
    let (mut ids, mut seqs, mut prevs, mut hashes) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut refused, mut reasons) = (Vec::new(), Vec::new());
    for row in &rows {
        let signed = match &row.mac {
            Some(mac) => *mac == entry_key.entry_mac(row),
            None => legacy.contains(&row.id),
        };
        if !signed {
            let reason = if row.mac.is_some() {
                "its MAC does not match its content: written or changed outside the service"
            } else {
                "it has no MAC: written outside the service"
            };
            tracing::error!(entry_id = row.id, reason, "audit entry refused");
            metrics::counter!("caseshare_audit_entries_refused_total").increment(1);
            refused.push(row.id);
            reasons.push(reason);
            continue;
        }
        seq += 1;
        let hash = key.link(prev.as_deref(), seq, row);
        ids.push(row.id);
        seqs.push(seq);
        prevs.push(prev.clone());
        hashes.push(hash.clone());
        prev = Some(hash);
    }
    sqlx::query(
        "UPDATE audit_log a SET seq = u.s, prev_hash = u.p, hash = u.h
         FROM unnest($1::bigint[], $2::bigint[], $3::bytea[], $4::bytea[]) AS u (id, s, p, h)
         WHERE a.id = u.id",
    )
    .bind(&ids)
    .bind(&seqs)
    .bind(&prevs)
    .bind(&hashes)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO audit_refused (id, reason) SELECT * FROM unnest($1::bigint[], $2::text[])
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(&refused)
    .bind(&reasons)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(ids.len() as u64)
}

/// The first place where the chain is broken, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokenLink {
    pub seq: i64,
    pub id: i64,
    pub reason: String,
}

/// The head of the chain, signed with the key, for operators to keep
/// elsewhere (`caseshare audit checkpoint`): a later `verify` against it
/// detects entries removed from the end, or the whole chain replaced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Checkpoint {
    pub seq: i64,
    /// Hex of the entry's HMAC link.
    pub hash: String,
    /// Hex of HMAC(key, "caseshare audit checkpoint", seq, hash).
    pub signature: String,
}

/// The signed head of the sealed chain (none while nothing is sealed).
pub async fn checkpoint(db: &sqlx::PgPool, key: &AuditKey) -> sqlx::Result<Option<Checkpoint>> {
    let head: Option<(i64, Vec<u8>)> = sqlx::query_as(
        "SELECT seq, hash FROM audit_log WHERE hash IS NOT NULL ORDER BY seq DESC LIMIT 1",
    )
    .fetch_optional(db)
    .await?;
    Ok(head.map(|(seq, hash)| Checkpoint {
        seq,
        hash: hex::encode(&hash),
        signature: hex::encode(key.sign(seq, &hash)),
    }))
}

/// Walk the sealed chain and report the first broken link: an entry whose
/// content no longer matches its HMAC link, whose `prev_hash` is not the
/// link of the entry before it, or a gap in `seq` (an edit, a deletion, a
/// reordering or an insertion behind the service's back). With a
/// `checkpoint` (checked against the key first), the chain must still hold
/// that entry with that link: removing entries from the end, or truncating
/// the table and starting over, is caught. Returns the entries checked.
pub async fn verify(
    db: &sqlx::PgPool,
    key: &AuditKey,
    checkpoint: Option<&Checkpoint>,
) -> sqlx::Result<Result<i64, BrokenLink>> {
    let rows: Vec<SealRow> = sqlx::query_as(&format!(
        "SELECT {SEAL_COLUMNS} FROM audit_log WHERE seq IS NOT NULL ORDER BY seq"
    ))
    .fetch_all(db)
    .await?;
    let broken = |seq: i64, id: i64, reason: &str| {
        Ok(Err(BrokenLink {
            seq,
            id,
            reason: reason.into(),
        }))
    };
    let mut previous: Option<Vec<u8>> = None;
    for (i, row) in rows.iter().enumerate() {
        let expected_seq = i as i64 + 1;
        let seq = row.seq.unwrap_or_default();
        if seq != expected_seq {
            return broken(
                seq,
                row.id,
                "sequence gap: an entry before this one is missing",
            );
        }
        if row.prev_hash != previous {
            return broken(seq, row.id, "previous hash does not match the entry before");
        }
        if row.hash.as_deref() != Some(key.link(previous.as_deref(), seq, row).as_slice()) {
            return broken(
                seq,
                row.id,
                "entry content does not match its hash (or the key is not the chain's)",
            );
        }
        previous = row.hash.clone();
    }
    if let Some(cp) = checkpoint {
        let signed = hex::decode(&cp.hash)
            .ok()
            .filter(|h| hex::encode(key.sign(cp.seq, h)) == cp.signature);
        let Some(hash) = signed else {
            return broken(
                cp.seq,
                0,
                "the checkpoint's signature does not match the key",
            );
        };
        match rows.get((cp.seq - 1).max(0) as usize) {
            Some(row)
                if row.seq == Some(cp.seq) && row.hash.as_deref() == Some(hash.as_slice()) => {}
            Some(row) => return broken(cp.seq, row.id, "the entry at the checkpoint was replaced"),
            None => {
                return broken(
                    cp.seq,
                    0,
                    "entries up to the checkpoint are missing: the end of the trail was removed",
                )
            }
        }
    }
    // Entries the sealer refused were written behind the service's back.
    let refused: Option<(i64, String)> =
        sqlx::query_as("SELECT id, reason FROM audit_refused ORDER BY id LIMIT 1")
            .fetch_optional(db)
            .await?;
    if let Some((id, reason)) = refused {
        return broken(0, id, &format!("entry refused by the sealer: {reason}"));
    }
    Ok(Ok(rows.len() as i64))
}
