//! Org signing keys (R54, R60): one Ed25519 key per org, its private half
//! sealed at rest under a key derived from the audit key, published as a
//! JWK Set, rotated without removing what it signed.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::EncodingKey;
use sha2::{Digest, Sha256};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::audit::AuditKey;
use crate::error::{Error, Result};

use super::{Jwk, Jwks};

/// The key that seals org signing keys at rest.
pub fn seal_key(audit_key: &AuditKey) -> AuditKey {
    audit_key.derive("org signing keys")
}

/// RFC 7638 thumbprint of an Ed25519 public key.
pub(super) fn thumbprint(x: &str) -> String {
    let canonical = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#);
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

pub(super) fn cipher(seal: &AuditKey) -> chacha20poly1305::ChaCha20Poly1305 {
    use chacha20poly1305::KeyInit;
    let key = seal.tag(b"chacha20poly1305");
    chacha20poly1305::ChaCha20Poly1305::new(chacha20poly1305::Key::from_slice(&key))
}

/// A new key for `org_id`, stored sealed and active. Returns its kid.
pub(super) async fn create_key(
    tx: &mut PgConnection,
    seal: &AuditKey,
    org_id: Uuid,
) -> Result<String> {
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
pub(super) async fn active_key(
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

pub(super) fn unseal(seal: &AuditKey, kid: &str, stored: &[u8]) -> Result<Vec<u8>> {
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
