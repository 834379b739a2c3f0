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
//!
//! This file holds the published keys and the receipts as served; `keys`
//! the org keys (creation, sealing at rest, rotation, the JWK Set); `sign`
//! signing and verifying manifests and acknowledgements.

mod keys;
mod sign;

pub use keys::{jwks, rotate, seal_key};
pub use sign::{acknowledge, jws_sha256, keys_of, sign_manifest_tx, verify, Invalid};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::Result;

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
    let manifest: serde_json::Value = verify(&receipt.signature, MANIFEST_TYPE, keys)?;
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
    let content: serde_json::Value = verify(&ack.signature, ACK_TYPE, keys)?;
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
    use super::keys::thumbprint;
    use super::*;
    use jsonwebtoken::{Algorithm, EncodingKey, Header};

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
        let read: serde_json::Value = verify(&jws, MANIFEST_TYPE, &keys).unwrap();
        assert_eq!(read, payload);
        let (head, rest) = jws.split_once('.').unwrap();
        let (body, sig) = rest.split_once('.').unwrap();
        let mut body = URL_SAFE_NO_PAD.decode(body).unwrap();
        body[3] ^= 1;
        let forged = format!("{head}.{}.{sig}", URL_SAFE_NO_PAD.encode(&body));
        assert!(matches!(
            verify::<serde_json::Value>(&forged, MANIFEST_TYPE, &keys),
            Err(Invalid::BadSignature(_))
        ));
        assert!(matches!(
            verify::<serde_json::Value>(&jws, ACK_TYPE, &keys),
            Err(Invalid::Malformed(_))
        ));
    }
}
