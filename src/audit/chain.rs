//! The HMAC chain (R39): entries are sealed in order into a chain of
//! HMAC-SHA-256 links under the audit key, so a writer of the table without
//! the key cannot rewrite it consistently; a signed checkpoint catches a
//! truncated or replaced chain, and `verify` reports the first broken link.
//! Sealing is a maintenance duty of its own (`startup`), not a request's.

use serde::Serialize;

use super::GENUINE;
use uuid::Uuid;

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
    pub(super) fn entry_key(&self) -> AuditKey {
        self.derive("audit entry")
    }

    /// An entry's MAC: every column but its place in the chain.
    pub(super) fn entry_mac(&self, e: &SealRow) -> Vec<u8> {
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
pub(super) struct SealRow {
    pub(super) seq: Option<i64>,
    pub(super) id: i64,
    pub(super) at_us: i64,
    pub(super) org_id: Option<Uuid>,
    pub(super) actor_user_id: Option<Uuid>,
    pub(super) action: String,
    pub(super) case_id: Option<Uuid>,
    pub(super) evidence_id: Option<Uuid>,
    pub(super) share_id: Option<Uuid>,
    pub(super) details: String,
    pub(super) prev_hash: Option<Vec<u8>>,
    pub(super) hash: Option<Vec<u8>>,
    pub(super) mac: Option<Vec<u8>>,
}

pub(super) const SEAL_COLUMNS: &str =
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
