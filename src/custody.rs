//! Custody receipts (R54). Each org signs with its own Ed25519 key: the
//! private half is kept sealed (ChaCha20-Poly1305 under a key derived from
//! the configured audit key, the key id as associated data), the public
//! halves are published as a JWK Set (`GET /v1/orgs/{id}/keys`), and a
//! rotation retires a key without removing it, so what it signed stays
//! verifiable.
//!
//! When a partner share completes, the sharing org signs its manifest: the
//! case, the share, the SHA-256 of the policy snapshot, the recipient org,
//! the time and every shared item's id, size and SHA-256. When the
//! receiver's import has copied the files (R53), the receiving org verifies
//! that manifest and signs an acknowledgement: per item `match`, `mismatch`
//! or `missing`, the time and the accepting principal. Both are JWS compact
//! serializations with `alg: EdDSA` (RFC 7515, RFC 8037), made and checked by
//! `jsonwebtoken`; any JOSE library verifies them with the published key.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::PgConnection;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::audit::AuditKey;
use crate::error::{Error, Result};

/// The `typ` of a manifest and of an acknowledgement.
pub const MANIFEST_TYPE: &str = "caseshare-manifest+jwt";
pub const ACK_TYPE: &str = "caseshare-ack+jwt";

/// A public key as a JWK (RFC 7517, RFC 8037), with when it was made and,
/// once rotated out, retired.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Jwk {
    /// Always `OKP`.
    pub kty: String,
    /// Always `Ed25519`.
    pub crv: String,
    /// The public key, base64url without padding.
    pub x: String,
    /// The key id: its RFC 7638 thumbprint.
    pub kid: String,
    /// Always `EdDSA`.
    pub alg: String,
    /// Always `sig`.
    #[serde(rename = "use")]
    pub use_: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retired_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// A JWK Set.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Jwks {
    pub keys: Vec<Jwk>,
}

impl Jwks {
    fn find(&self, kid: &str) -> Option<&Jwk> {
        self.keys.iter().find(|k| k.kid == kid)
    }
}

/// The key that seals org signing keys at rest.
pub fn seal_key(audit_key: &AuditKey) -> AuditKey {
    audit_key.derive("org signing keys")
}

/// RFC 7638 thumbprint of an Ed25519 public key.
fn thumbprint(x: &str) -> String {
    let canonical = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#);
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

fn cipher(seal: &AuditKey) -> chacha20poly1305::ChaCha20Poly1305 {
    use chacha20poly1305::KeyInit;
    let key = seal.tag(b"chacha20poly1305");
    chacha20poly1305::ChaCha20Poly1305::new(chacha20poly1305::Key::from_slice(&key))
}

/// A new key for `org_id`, stored sealed and active. Returns its kid.
async fn create_key(tx: &mut PgConnection, seal: &AuditKey, org_id: Uuid) -> Result<String> {
    use chacha20poly1305::aead::{Aead, AeadCore, OsRng, Payload};
    use ring::signature::KeyPair;
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = ring::signature::Ed25519KeyPair::generate_pkcs8(&rng)
        .map_err(|_| anyhow::anyhow!("cannot generate an Ed25519 key"))?;
    let pair = ring::signature::Ed25519KeyPair::from_pkcs8(pkcs8.as_ref())
        .map_err(|_| anyhow::anyhow!("cannot read the generated Ed25519 key"))?;
    let x = URL_SAFE_NO_PAD.encode(pair.public_key().as_ref());
    let kid = thumbprint(&x);
    let nonce = chacha20poly1305::ChaCha20Poly1305::generate_nonce(&mut OsRng);
    let sealed = cipher(seal)
        .encrypt(
            &nonce,
            Payload {
                msg: pkcs8.as_ref(),
                aad: kid.as_bytes(),
            },
        )
        .map_err(|_| anyhow::anyhow!("cannot seal a signing key"))?;
    let mut stored = nonce.to_vec();
    stored.extend_from_slice(&sealed);
    sqlx::query(
        "INSERT INTO org_signing_keys (kid, org_id, public_x, sealed_private) VALUES ($1, $2, $3, $4)",
    )
    .bind(&kid)
    .bind(org_id)
    .bind(&x)
    .bind(&stored)
    .execute(&mut *tx)
    .await?;
    Ok(kid)
}

/// The org's active signing key (made on first use), unsealed.
async fn active_key(
    tx: &mut PgConnection,
    seal: &AuditKey,
    org_id: Uuid,
) -> Result<(String, EncodingKey)> {
    // One active key per org: concurrent first uses wait on the org's row.
    sqlx::query("SELECT 1 FROM orgs WHERE id = $1 FOR NO KEY UPDATE")
        .bind(org_id)
        .execute(&mut *tx)
        .await?;
    let found: Option<(String, Vec<u8>)> = sqlx::query_as(
        "SELECT kid, sealed_private FROM org_signing_keys WHERE org_id = $1 AND retired_at IS NULL",
    )
    .bind(org_id)
    .fetch_optional(&mut *tx)
    .await?;
    let (kid, stored) = match found {
        Some(found) => found,
        None => {
            create_key(tx, seal, org_id).await?;
            sqlx::query_as(
                "SELECT kid, sealed_private FROM org_signing_keys WHERE org_id = $1 AND retired_at IS NULL",
            )
            .bind(org_id)
            .fetch_one(&mut *tx)
            .await?
        }
    };
    let pkcs8 = unseal(seal, &kid, &stored)?;
    Ok((kid, EncodingKey::from_ed_der(&pkcs8)))
}

fn unseal(seal: &AuditKey, kid: &str, stored: &[u8]) -> Result<Vec<u8>> {
    use chacha20poly1305::aead::{Aead, Payload};
    if stored.len() < 12 {
        return Err(anyhow::anyhow!("signing key {kid} is damaged").into());
    }
    let (nonce, sealed) = stored.split_at(12);
    cipher(seal)
        .decrypt(
            chacha20poly1305::Nonce::from_slice(nonce),
            Payload {
                msg: sealed,
                aad: kid.as_bytes(),
            },
        )
        .map_err(|_| {
            anyhow::anyhow!(
                "signing key {kid} cannot be unsealed: the audit key differs from the one it was sealed under"
            )
            .into()
        })
}

/// Retire the org's active key and make a new one (R54: what the old key
/// signed stays verifiable through the published set). Returns the new kid.
pub async fn rotate(db: &sqlx::PgPool, seal: &AuditKey, org_id: Uuid) -> Result<String> {
    let mut tx = db.begin().await?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM orgs WHERE id = $1 FOR NO KEY UPDATE)")
            .bind(org_id)
            .fetch_one(&mut *tx)
            .await?;
    if !exists {
        return Err(Error::NotFound("org"));
    }
    sqlx::query(
        "UPDATE org_signing_keys SET retired_at = now() WHERE org_id = $1 AND retired_at IS NULL",
    )
    .bind(org_id)
    .execute(&mut *tx)
    .await?;
    let kid = create_key(&mut tx, seal, org_id).await?;
    tx.commit().await?;
    Ok(kid)
}

/// The org's public keys, newest first; 404 for an org that does not exist.
pub async fn jwks(db: &mut PgConnection, org_id: Uuid) -> Result<Jwks> {
    #[derive(sqlx::FromRow)]
    struct Row {
        kid: Option<String>,
        public_x: Option<String>,
        created_at: Option<chrono::DateTime<chrono::Utc>>,
        retired_at: Option<chrono::DateTime<chrono::Utc>>,
    }
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT k.kid, k.public_x, k.created_at, k.retired_at
           FROM orgs o LEFT JOIN org_signing_keys k ON k.org_id = o.id
          WHERE o.id = $1 ORDER BY k.created_at DESC",
    )
    .bind(org_id)
    .fetch_all(db)
    .await?;
    if rows.is_empty() {
        return Err(Error::NotFound("org"));
    }
    Ok(Jwks {
        keys: rows
            .into_iter()
            .filter_map(|r| {
                Some(Jwk {
                    kty: "OKP".into(),
                    crv: "Ed25519".into(),
                    x: r.public_x?,
                    kid: r.kid?,
                    alg: "EdDSA".into(),
                    use_: "sig".into(),
                    created_at: r.created_at?,
                    retired_at: r.retired_at,
                })
            })
            .collect(),
    })
}

/// Sign `payload` as a JWS (compact) of type `typ` with the org's key.
async fn sign(
    tx: &mut PgConnection,
    seal: &AuditKey,
    org_id: Uuid,
    typ: &str,
    payload: &serde_json::Value,
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

/// Verify a JWS of type `typ` against `keys`; its payload.
pub fn verify(
    jws: &str,
    typ: &str,
    keys: &Jwks,
) -> std::result::Result<serde_json::Value, Invalid> {
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
    jsonwebtoken::decode::<serde_json::Value>(jws, &key, &validation)
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
    let manifest: Option<(Uuid, serde_json::Value)> = sqlx::query_as(
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
                         WHERE g.received_id = s.received_id AND s.id = ANY(g.covering)), '[]'::jsonb))
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
            AND NOT EXISTS (SELECT 1 FROM evidence e WHERE e.case_id = $1 AND e.content_state = 'pending')
          ORDER BY s.created_at
            FOR UPDATE OF r",
    )
    .bind(case_id)
    .fetch_all(&mut *tx)
    .await?;
    // One collaboration: one sharer, whose key set is read once.
    let Some(&(_, _, sharer, _, _)) = pending.first() else {
        return Ok(());
    };
    let keys = jwks(&mut tx, sharer).await?;
    for (share_id, manifest_jws, _, receiver, accepted_by) in pending {
        let manifest = verify(&manifest_jws, MANIFEST_TYPE, &keys);
        let manifest_ok = manifest.is_ok();
        let items: Vec<serde_json::Value> = match &manifest {
            Ok(m) => m["items"].as_array().cloned().unwrap_or_default(),
            Err(e) => {
                tracing::error!(share_id = %share_id, error = %e, "a manifest does not verify");
                vec![]
            }
        };
        let ids: Vec<Uuid> = items
            .iter()
            .filter_map(|i| i["id"].as_str()?.parse().ok())
            .collect();
        let shas: Vec<Option<String>> = items
            .iter()
            .filter(|i| {
                i["id"]
                    .as_str()
                    .and_then(|s| s.parse::<Uuid>().ok())
                    .is_some()
            })
            .map(|i| i["sha256"].as_str().map(str::to_string))
            .collect();
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
        let results: Vec<serde_json::Value> = ids
            .iter()
            .zip(&shas)
            .map(|(id, want)| {
                let result = match (held.get(id), want) {
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
                serde_json::json!({ "id": id, "result": result })
            })
            .collect();
        let ack = serde_json::json!({
            "share_id": share_id,
            "manifest_sha256": jws_sha256(&manifest_jws),
            "manifest_ok": manifest_ok,
            "receiving_org_id": receiver,
            "accepted_by": accepted_by.map_or_else(|| "auto-import".to_string(), |u| format!("user:{u}")),
            "at": chrono::Utc::now(),
            "items": results,
        });
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

/// A receipt as served (`GET /v1/shares/{id}/receipt`) and as written to a
/// file for `caseshare receipt verify`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Receipt {
    pub share_id: Uuid,
    /// The manifest the sharing org signed (the JWS's payload).
    pub manifest: serde_json::Value,
    /// The manifest as signed: a JWS compact serialization (EdDSA).
    pub signature: String,
    /// The sharing org's key that signed it.
    pub key_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acknowledgement: Option<Acknowledgement>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Acknowledgement {
    /// What the receiving org signed: the manifest's SHA-256, whether its
    /// signature verified, and per item `match`, `mismatch` or `missing`.
    pub content: serde_json::Value,
    /// The acknowledgement as signed: a JWS compact serialization (EdDSA).
    pub signature: String,
    /// The receiving org's key that signed it.
    pub key_id: String,
}

/// The receipt of `share_id` (its manifest signed, acknowledged or not yet);
/// `None` when none was made (an internal share, or one not complete).
pub async fn receipt(db: &mut PgConnection, share_id: Uuid) -> Result<Option<Receipt>> {
    let row: Option<(String, String, Option<String>, Option<String>)> = sqlx::query_as(
        "SELECT manifest_jws, manifest_kid, ack_jws, ack_kid FROM share_receipts WHERE share_id = $1",
    )
    .bind(share_id)
    .fetch_optional(db)
    .await?;
    let Some((manifest_jws, manifest_kid, ack_jws, ack_kid)) = row else {
        return Ok(None);
    };
    Ok(Some(Receipt {
        share_id,
        manifest: payload(&manifest_jws)?,
        signature: manifest_jws,
        key_id: manifest_kid,
        acknowledgement: match (ack_jws, ack_kid) {
            (Some(jws), Some(kid)) => Some(Acknowledgement {
                content: payload(&jws)?,
                signature: jws,
                key_id: kid,
            }),
            _ => None,
        },
    }))
}

/// The receiving org's acknowledgement of `share_id`'s manifest, if made:
/// what the import details summarize, without reading the manifest (which
/// lists every shared item).
pub async fn acknowledgement(
    db: &mut PgConnection,
    share_id: Uuid,
) -> Result<Option<Acknowledgement>> {
    let row: Option<(String, String)> = sqlx::query_as(
        "SELECT ack_jws, ack_kid FROM share_receipts
          WHERE share_id = $1 AND ack_jws IS NOT NULL AND ack_kid IS NOT NULL",
    )
    .bind(share_id)
    .fetch_optional(db)
    .await?;
    row.map(|(jws, kid)| {
        Ok(Acknowledgement {
            content: payload(&jws)?,
            signature: jws,
            key_id: kid,
        })
    })
    .transpose()
}

/// The receipt of `share_id` for `user` (R54): the sharer's users who see
/// the share, and the receiver's who see its collaboration; 404 for anyone
/// else, and for a share without a receipt (yet).
pub async fn receipt_for(
    db: &mut PgConnection,
    user: &crate::principal::UserPrincipal,
    share_id: Uuid,
) -> Result<Receipt> {
    let not_found = || Error::NotFound("receipt");
    let share = crate::sharing::load(db, share_id)
        .await
        .map_err(|_| not_found())?;
    let allowed = if share.org_id == user.org_id {
        crate::sharing::load_owned(db, user, share_id).await.is_ok()
    } else if share.target_org_id == Some(user.org_id) {
        match share.received_id {
            Some(received_id) => crate::access::sees_received_id(db, user, received_id).await?,
            None => false,
        }
    } else {
        false
    };
    if !allowed {
        return Err(not_found());
    }
    receipt(db, share_id).await?.ok_or_else(not_found)
}

/// The payload of a JWS we signed (not verified: for display).
fn payload(jws: &str) -> Result<serde_json::Value> {
    let part = jws.split('.').nth(1).unwrap_or_default();
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|e| anyhow::anyhow!("a stored receipt is not a JWS: {e}"))?;
    Ok(serde_json::from_slice(&bytes).map_err(anyhow::Error::from)?)
}

/// `caseshare receipt verify`: both signatures under `keys`, the served
/// payloads equal to what was signed, and the acknowledgement naming this
/// manifest. The first failure, or what was checked.
pub fn verify_receipt(receipt: &Receipt, keys: &Jwks) -> std::result::Result<String, Invalid> {
    let manifest = verify(&receipt.signature, MANIFEST_TYPE, keys)?;
    if manifest != receipt.manifest {
        return Err(Invalid::Mismatch(
            "the manifest differs from the one signed".into(),
        ));
    }
    if manifest["share_id"] != serde_json::json!(receipt.share_id) {
        return Err(Invalid::Mismatch("the manifest is of another share".into()));
    }
    let items = manifest["items"].as_array().map_or(0, Vec::len);
    let Some(ack) = &receipt.acknowledgement else {
        return Ok(format!(
            "manifest of share {} verified (key {}, {items} items); not acknowledged yet",
            receipt.share_id, receipt.key_id
        ));
    };
    let content = verify(&ack.signature, ACK_TYPE, keys)?;
    if content != ack.content {
        return Err(Invalid::Mismatch(
            "the acknowledgement differs from the one signed".into(),
        ));
    }
    if content["manifest_sha256"] != serde_json::json!(jws_sha256(&receipt.signature)) {
        return Err(Invalid::Mismatch(
            "the acknowledgement names another manifest".into(),
        ));
    }
    let count = |r: &str| {
        content["items"]
            .as_array()
            .map_or(0, |a| a.iter().filter(|i| i["result"] == r).count())
    };
    Ok(format!(
        "manifest of share {} verified (key {}, {items} items); acknowledged (key {}): {} match, {} mismatch, {} missing",
        receipt.share_id,
        receipt.key_id,
        ack.key_id,
        count("match"),
        count("mismatch"),
        count("missing")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    // R54: a JWS made here verifies, and fails once a byte of it changes.
    #[test]
    fn r54_a_signed_manifest_verifies_and_a_changed_byte_does_not() {
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = ring::signature::Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
        let pair = ring::signature::Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
        use ring::signature::KeyPair;
        let x = URL_SAFE_NO_PAD.encode(pair.public_key().as_ref());
        let kid = thumbprint(&x);
        let mut header = Header::new(Algorithm::EdDSA);
        header.typ = Some(MANIFEST_TYPE.into());
        header.kid = Some(kid.clone());
        let payload = serde_json::json!({ "share_id": Uuid::nil(), "items": [] });
        let jws =
            jsonwebtoken::encode(&header, &payload, &EncodingKey::from_ed_der(pkcs8.as_ref()))
                .unwrap();
        let keys = Jwks {
            keys: vec![Jwk {
                kty: "OKP".into(),
                crv: "Ed25519".into(),
                x,
                kid,
                alg: "EdDSA".into(),
                use_: "sig".into(),
                created_at: chrono::Utc::now(),
                retired_at: None,
            }],
        };
        assert_eq!(verify(&jws, MANIFEST_TYPE, &keys).unwrap(), payload);
        let (head, rest) = jws.split_once('.').unwrap();
        let (body, sig) = rest.split_once('.').unwrap();
        let mut body = URL_SAFE_NO_PAD.decode(body).unwrap();
        body[3] ^= 1;
        let forged = format!("{head}.{}.{sig}", URL_SAFE_NO_PAD.encode(&body));
        assert!(matches!(
            verify(&forged, MANIFEST_TYPE, &keys),
            Err(Invalid::BadSignature(_))
        ));
        assert!(matches!(
            verify(&jws, ACK_TYPE, &keys),
            Err(Invalid::Malformed(_))
        ));
    }
}
