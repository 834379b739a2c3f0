//! Signing and checking (R54): the sharing org signs a share's manifest;
//! the receiving org, once its import copied the files (R53), checks it and
//! signs an acknowledgement. JWS compact serializations, `alg: EdDSA`.

use jsonwebtoken::{Algorithm, DecodingKey, Header, Validation};
use sha2::{Digest, Sha256};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::audit::AuditKey;
use crate::error::Result;

use super::keys::{active_key, jwks};
use super::{Jwks, ACK_TYPE, MANIFEST_TYPE};

/// Sign `payload` as a JWS (compact) of type `typ` with the org's key.
pub(super) async fn sign(
    tx: &mut PgConnection,
    seal: &AuditKey,
    org_id: Uuid,
    typ: &str,
    payload: &impl serde::Serialize,
) -> Result<(String, String)> {
    let (kid, key) = active_key(tx, seal, org_id).await?;
    let mut header = Header::new(Algorithm::EdDSA);
    header.typ = Some(typ.into());
    header.kid = Some(kid.clone());
    let jws = jsonwebtoken::encode(&header, payload, &key)
        .map_err(|e| anyhow::anyhow!("cannot sign a {typ}: {e}"))?;
    Ok((jws, kid))
}

/// Why a JWS did not verify.
#[derive(Debug, thiserror::Error)]
pub enum Invalid {
    #[error("not a JWS: {0}")]
    Malformed(String),
    #[error("signed with key {0:?}, which the key set does not hold")]
    UnknownKey(String),
    #[error("the signature does not verify under key {0}")]
    BadSignature(String),
    #[error("{0}")]
    Mismatch(String),
}

/// Verify a JWS of type `typ` against `keys`; its payload, read as `T`
/// (`serde_json::Value` for all of it).
pub fn verify<T: serde::de::DeserializeOwned>(
    jws: &str,
    typ: &str,
    keys: &Jwks,
) -> std::result::Result<T, Invalid> {
    let header = jsonwebtoken::decode_header(jws).map_err(|e| Invalid::Malformed(e.to_string()))?;
    if header.alg != Algorithm::EdDSA || header.typ.as_deref() != Some(typ) {
        return Err(Invalid::Malformed(format!(
            "expected alg EdDSA and typ {typ}, got {:?} and {:?}",
            header.alg, header.typ
        )));
    }
    let kid = header.kid.unwrap_or_default();
    let jwk = keys
        .find(&kid)
        .ok_or_else(|| Invalid::UnknownKey(kid.clone()))?;
    let key =
        DecodingKey::from_ed_components(&jwk.x).map_err(|e| Invalid::Malformed(e.to_string()))?;
    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_aud = false;
    jsonwebtoken::decode::<T>(jws, &key, &validation)
        .map(|data| data.claims)
        .map_err(|_| Invalid::BadSignature(kid))
}

/// SHA-256 (hex) of a JWS as sent: what an acknowledgement names.
pub fn jws_sha256(jws: &str) -> String {
    hex::encode(Sha256::digest(jws.as_bytes()))
}

/// R54: sign the manifest of partner share `share_id`, in the transaction
/// that completes it. Idempotent (one receipt per share).
pub async fn sign_manifest_tx(
    tx: &mut PgConnection,
    seal: &AuditKey,
    share_id: Uuid,
) -> Result<()> {
    // The manifest stays the text PostgreSQL made of it, signed as it is
    // (`RawValue`): a 100,000-item manifest is never a tree of values here.
    let manifest: Option<(Uuid, String)> = sqlx::query_as(
        "SELECT s.org_id, jsonb_build_object(
                    'share_id', s.id, 'case_id', s.case_id, 'sharing_org_id', s.org_id,
                    'recipient_org_id', s.target_org_id,
                    'policy_sha256', encode(sha256(convert_to(s.policy::text, 'UTF8')), 'hex'),
                    'issued_at', now(),
                    'items', coalesce((
                        SELECT jsonb_agg(jsonb_build_object(
                                   'id', e.id,
                                   'size_bytes', (e.data->'content'->>'size_bytes')::bigint,
                                   'sha256', e.data->'content'->>'sha256') ORDER BY e.id)
                          FROM grants g JOIN evidence e ON e.id = g.evidence_id
                         WHERE g.received_id = s.received_id AND s.id = ANY(g.covering)), '[]'::jsonb))::text
           FROM shares s
          WHERE s.id = $1 AND s.target_org_id IS NOT NULL
            AND NOT EXISTS (SELECT 1 FROM share_receipts r WHERE r.share_id = s.id)",
    )
    .bind(share_id)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((org_id, manifest)) = manifest else {
        return Ok(());
    };
    let manifest =
        serde_json::value::RawValue::from_string(manifest).map_err(anyhow::Error::from)?;
    let (jws, kid) = sign(tx, seal, org_id, MANIFEST_TYPE, &manifest).await?;
    sqlx::query(
        "INSERT INTO share_receipts (share_id, manifest_jws, manifest_kid) VALUES ($1, $2, $3)",
    )
    .bind(share_id)
    .bind(&jws)
    .bind(&kid)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// The public keys of `org_ids` as one set (for verifying their receipts).
pub async fn keys_of(db: &mut PgConnection, org_ids: &[Uuid]) -> Result<Jwks> {
    let mut keys = Vec::new();
    for org in org_ids {
        keys.extend(jwks(&mut *db, *org).await?.keys);
    }
    Ok(Jwks { keys })
}

/// R54: the receiving org acknowledges every receipt of the collaboration
/// whose imported copy is `case_id` that it has not acknowledged yet, once
/// none of the copy's files is still being copied: it verifies the
/// manifest's signature and states per item whether what arrived matches.
pub async fn acknowledge(db: &sqlx::PgPool, seal: &AuditKey, case_id: Uuid) -> Result<()> {
    let mut tx = db.begin().await?;
    let pending: Vec<(Uuid, String, Uuid, Uuid, Option<Uuid>)> = sqlx::query_as(
        "SELECT s.id, r.manifest_jws, rc.sharer_org_id, rc.receiver_org_id, c.owner_id
           FROM received rc
           JOIN cases c ON c.id = rc.imported_case_id
           JOIN shares s ON s.received_id = rc.id
           JOIN share_receipts r ON r.share_id = s.id
          WHERE rc.imported_case_id = $1 AND r.ack_jws IS NULL
            AND NOT EXISTS (SELECT 1 FROM evidence e WHERE e.case_id = $1 AND e.content_state = $2)
          ORDER BY s.created_at
            FOR UPDATE OF r",
    )
    .bind(case_id)
    .bind(crate::cases::ContentState::Pending)
    .fetch_all(&mut *tx)
    .await?;
    // One collaboration: one sharer, whose key set is read once.
    let Some(&(_, _, sharer, _, _)) = pending.first() else {
        return Ok(());
    };
    let keys = jwks(&mut tx, sharer).await?;
    for (share_id, manifest_jws, _, receiver, accepted_by) in pending {
        // Only what the acknowledgement needs of each item is read.
        let manifest = verify::<Listed>(&manifest_jws, MANIFEST_TYPE, &keys);
        let manifest_ok = manifest.is_ok();
        let items = match manifest {
            Ok(m) => m.items,
            Err(e) => {
                tracing::error!(share_id = %share_id, error = %e, "a manifest does not verify");
                vec![]
            }
        };
        let ids: Vec<Uuid> = items.iter().map(|i| i.id).collect();
        // What the copy holds of the manifest's items: one statement, one
        // pass over the copy's rows (the `= ANY` list is hashed), matched
        // here. Not a join per item: planned on the statistics of a copy
        // written moments ago (autovacuum has not analyzed it yet), a join
        // or a LATERAL lookup scanned the whole case for every item, and
        // the 100,000-item import's receipt took minutes (the bench).
        #[allow(clippy::type_complexity)]
        let held: std::collections::HashMap<Uuid, (Option<String>, Option<String>)> =
            sqlx::query_as::<_, (Uuid, Option<String>, Option<String>)>(
                "SELECT source_evidence_id, content_state::text, data->'content'->>'sha256'
                   FROM evidence WHERE case_id = $1 AND source_evidence_id = ANY($2)",
            )
            .bind(case_id)
            .bind(&ids)
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .map(|(id, state, sha)| (id, (state, sha)))
            .collect();
        let results: Vec<AckItem> = items
            .into_iter()
            .map(|ListedItem { id, sha256: want }| {
                let result = match (held.get(&id), &want) {
                    (None, _) => "missing",
                    (Some(_), None) => "match",
                    (Some((Some(state), sha)), Some(want)) if state == "match" => {
                        if sha.as_deref() == Some(want.as_str()) {
                            "match"
                        } else {
                            "mismatch"
                        }
                    }
                    (Some((Some(state), _)), Some(_)) if state == "content_mismatch" => "mismatch",
                    (Some(_), Some(_)) => "missing",
                };
                AckItem { id, result }
            })
            .collect();
        drop(held);
        let ack = Ack {
            accepted_by: accepted_by
                .map_or_else(|| "auto-import".to_string(), |u| format!("user:{u}")),
            at: chrono::Utc::now(),
            items: results,
            manifest_ok,
            manifest_sha256: jws_sha256(&manifest_jws),
            receiving_org_id: receiver,
            share_id,
        };
        let (jws, kid) = sign(&mut tx, seal, receiver, ACK_TYPE, &ack).await?;
        sqlx::query(
            "UPDATE share_receipts SET ack_jws = $2, ack_kid = $3, acked_at = now() WHERE share_id = $1",
        )
        .bind(share_id)
        .bind(&jws)
        .bind(&kid)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// What an acknowledgement reads of a manifest: each item's id and SHA-256.
#[derive(serde::Deserialize)]
struct Listed {
    items: Vec<ListedItem>,
}

#[derive(serde::Deserialize)]
struct ListedItem {
    id: Uuid,
    #[serde(default)]
    sha256: Option<String>,
}

/// An acknowledgement as signed (fields in the order they are written).
#[derive(serde::Serialize)]
struct Ack {
    accepted_by: String,
    at: chrono::DateTime<chrono::Utc>,
    items: Vec<AckItem>,
    manifest_ok: bool,
    manifest_sha256: String,
    receiving_org_id: Uuid,
    share_id: Uuid,
}

#[derive(serde::Serialize)]
struct AckItem {
    id: Uuid,
    result: &'static str,
}
