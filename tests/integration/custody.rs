//! Custody receipts (R54): the sharing org signs a share's manifest, the
//! receiving org's import verifies it and signs an acknowledgement per item
//! (`match`, `mismatch`, `missing`); both JWS (EdDSA) verify with a
//! third-party Ed25519 implementation (ed25519-dalek, not the signer's) under
//! the published JWK Sets, `caseshare receipt verify` checks them offline and
//! fails after one changed byte, and a rotated key keeps its receipts
//! verifiable.

use crate::common::*;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::process::Command;
use uuid::Uuid;

/// Verify a JWS compact serialization with ed25519-dalek against a JWK Set:
/// the payload when the signature holds under the key its header names.
fn third_party_verify(jws: &str, jwks: &Value) -> Option<Value> {
    let mut parts = jws.split('.');
    let (head, body, sig) = (parts.next()?, parts.next()?, parts.next()?);
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(head).ok()?).ok()?;
    if header["alg"] != "EdDSA" {
        return None;
    }
    let jwk = jwks["keys"]
        .as_array()?
        .iter()
        .find(|k| k["kid"] == header["kid"])?;
    let x: [u8; 32] = URL_SAFE_NO_PAD
        .decode(jwk["x"].as_str()?)
        .ok()?
        .try_into()
        .ok()?;
    let key = ed25519_dalek::VerifyingKey::from_bytes(&x).ok()?;
    let sig: [u8; 64] = URL_SAFE_NO_PAD.decode(sig).ok()?.try_into().ok()?;
    key.verify_strict(
        format!("{head}.{body}").as_bytes(),
        &ed25519_dalek::Signature::from_bytes(&sig),
    )
    .ok()?;
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(body).ok()?).ok()
}

/// One byte of the JWS's payload changed (and re-encoded).
fn tampered(jws: &str) -> String {
    let mut parts: Vec<String> = jws.split('.').map(str::to_string).collect();
    let mut body = URL_SAFE_NO_PAD.decode(&parts[1]).unwrap();
    let at = body.len() / 2;
    body[at] ^= 0x01;
    parts[1] = URL_SAFE_NO_PAD.encode(body);
    parts.join(".")
}

/// `caseshare receipt verify FILE --keys A --keys B` as an operator runs it.
async fn cli_verify(app: &TestApp, receipt: &Value, keys: &[&Value]) -> std::process::Output {
    let dir = std::env::temp_dir().join(format!("caseshare-receipt-{}", Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("receipt.json");
    std::fs::write(&file, serde_json::to_vec(receipt).unwrap()).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_caseshare"));
    cmd.env_remove("CASESHARE_CONFIG")
        .env("CASESHARE_DATABASE_URL", &app.database_url)
        .env("CASESHARE_AUDIT_KEY", TEST_AUDIT_KEY)
        .env("CASESHARE_DOWNLOAD_KEY", TEST_DOWNLOAD_KEY)
        .args(["receipt", "verify"])
        .arg(&file);
    for (i, set) in keys.iter().enumerate() {
        let path = dir.join(format!("keys-{i}.json"));
        std::fs::write(&path, serde_json::to_vec(set).unwrap()).unwrap();
        cmd.arg("--keys").arg(path);
    }
    let out = tokio::process::Command::from(cmd)
        .output()
        .await
        .expect("run caseshare");
    let _ = std::fs::remove_dir_all(&dir);
    out
}

// R54
#[tokio::test]
async fn r54_receipts_are_signed_acknowledged_and_verify_with_a_third_party_library() {
    let app = spawn_app().await;
    let (a, b, case) =
        partners_with_case(&app, ("Justice", "justice"), policy(true), "Bodycam").await;
    let c = app.create_org("Gamma PD", "lea").await;
    let good = b"the video".to_vec();
    let (intact, _) = app
        .add_evidence(
            &a.user,
            case,
            json!({ "title": "Video", "content": { "sha256": sha(&good) } }),
        )
        .await;
    put_file(
        &app,
        &a.user,
        intact,
        good.clone(),
        "application/octet-stream",
    )
    .await;
    let (broken, _) = app
        .add_evidence(
            &a.user,
            case,
            json!({ "title": "Photo", "content": { "sha256": sha(&good) } }),
        )
        .await;
    put_file(
        &app,
        &a.user,
        broken,
        good.clone(),
        "application/octet-stream",
    )
    .await;
    std::fs::write(content_dir(&app).join(broken.to_string()), b"not the video").unwrap();
    let (plain, _) = app
        .add_evidence(&a.user, case, json!({ "title": "Note" }))
        .await;
    let share = share_naming_user(&app, &a, case, &b, json!({ "kind": "case" })).await;
    let share_id = share["id"].as_str().unwrap();
    let path = format!("/v1/shares/{share_id}/receipt");

    // Served to the sharer and to the receiver alike; nobody else.
    let (s, receipt) = app.get(&path, &a.user).await;
    assert_eq!(s, StatusCode::OK, "{receipt}");
    let (s, theirs) = app.get(&path, &b.user).await;
    assert_eq!((s, &theirs), (StatusCode::OK, &receipt));
    let (s, _) = app.get(&path, &c.admin).await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // The manifest: the share, the case, both orgs, the policy's hash and
    // every item with its size and SHA-256.
    let manifest = &receipt["manifest"];
    assert_eq!(manifest["share_id"], share_id);
    assert_eq!(manifest["case_id"], case.to_string());
    assert_eq!(manifest["sharing_org_id"], a.id.to_string());
    assert_eq!(manifest["recipient_org_id"], b.id.to_string());
    assert_eq!(manifest["policy_sha256"].as_str().map(str::len), Some(64));
    let mut items: Vec<(String, String, String)> = manifest["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["id"].as_str().unwrap().to_string(),
                i["sha256"].to_string(),
                i["size_bytes"].to_string(),
            )
        })
        .collect();
    items.sort();
    let mut want: Vec<(String, String, String)> = [
        (intact, json!(sha(&good)), json!(good.len())),
        (broken, json!(sha(&good)), json!(good.len())),
        (plain, Value::Null, Value::Null),
    ]
    .into_iter()
    .map(|(id, s, n)| (id.to_string(), s.to_string(), n.to_string()))
    .collect();
    want.sort();
    assert_eq!(items, want);

    // Verified by another library under the published keys.
    let (s, alpha_keys) = app.get(&format!("/v1/orgs/{}/keys", a.id), "").await;
    assert_eq!(s, StatusCode::OK, "{alpha_keys}");
    let (_, beta_keys) = app.get(&format!("/v1/orgs/{}/keys", b.id), "").await;
    assert_eq!(alpha_keys["keys"][0]["kty"], "OKP");
    assert_eq!(alpha_keys["keys"][0]["crv"], "Ed25519");
    assert_eq!(alpha_keys["keys"][0]["kid"], receipt["key_id"]);
    let signed = receipt["signature"].as_str().unwrap();
    assert_eq!(
        third_party_verify(signed, &alpha_keys).as_ref(),
        Some(manifest)
    );
    assert_eq!(
        third_party_verify(signed, &beta_keys),
        None,
        "not Beta's key"
    );
    assert_eq!(third_party_verify(&tampered(signed), &alpha_keys), None);

    // The acknowledgement: the manifest verified, per item what arrived.
    let ack = &receipt["acknowledgement"];
    let ack_signed = ack["signature"].as_str().expect("acknowledged");
    assert_eq!(
        third_party_verify(ack_signed, &beta_keys).as_ref(),
        Some(&ack["content"])
    );
    assert_eq!(ack["content"]["manifest_ok"], true);
    assert_eq!(ack["content"]["manifest_sha256"], sha(signed.as_bytes()));
    assert_eq!(ack["content"]["accepted_by"], "auto-import");
    let result = |id: Uuid| {
        ack["content"]["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["id"] == id.to_string())
            .map(|i| i["result"].clone())
    };
    assert_eq!(result(intact), Some(json!("match")));
    assert_eq!(result(broken), Some(json!("mismatch")));
    assert_eq!(result(plain), Some(json!("match")));
    let (_, received) = app.get("/v1/received", &b.user).await;
    let copy = received["items"][0]["imported_case_id"].as_str().unwrap();
    let (_, details) = app
        .get(&format!("/v1/cases/{copy}/import-details"), &b.user)
        .await;
    assert_eq!(
        details["receipt"],
        json!({ "share_id": share_id, "manifest_ok": true,
                "items": { "match": 2, "mismatch": 1, "missing": 0 } })
    );

    // `caseshare receipt verify`: holds as served, fails on one changed byte.
    let out = cli_verify(&app, &receipt, &[&alpha_keys, &beta_keys]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("2 match, 1 mismatch, 0 missing"));
    let mut forged = receipt.clone();
    forged["signature"] = json!(tampered(signed));
    let out = cli_verify(&app, &forged, &[&alpha_keys, &beta_keys]).await;
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("does not verify"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut edited = receipt.clone();
    edited["manifest"]["items"][0]["sha256"] = json!("0".repeat(64));
    let out = cli_verify(&app, &edited, &[&alpha_keys, &beta_keys]).await;
    assert!(
        !out.status.success(),
        "a served manifest that differs from the signed one"
    );
    let out = cli_verify(&app, &receipt, &[&beta_keys]).await;
    assert!(!out.status.success(), "without the sharer's keys");

    // Rotation: a new key signs from now on; the old one stays published
    // (retired) and its receipt still verifies.
    let seal =
        caseshare::custody::seal_key(&caseshare::audit::AuditKey::new(TEST_AUDIT_KEY.as_bytes()));
    let new_kid = caseshare::custody::rotate(&app.db, &seal, a.id)
        .await
        .unwrap();
    let (_, rotated) = app.get(&format!("/v1/orgs/{}/keys", a.id), "").await;
    assert_eq!(rotated["keys"].as_array().unwrap().len(), 2);
    assert_eq!(rotated["keys"][0]["kid"], new_kid);
    assert!(rotated["keys"][0]["retired_at"].is_null());
    assert!(rotated["keys"][1]["retired_at"].is_string());
    assert_eq!(
        third_party_verify(signed, &rotated).as_ref(),
        Some(manifest)
    );
    let out = cli_verify(&app, &receipt, &[&rotated, &beta_keys]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (second_case, _) = (app.create_case(&a.user, "Second").await, ());
    let second = share_naming_user(&app, &a, second_case, &b, json!({ "kind": "case" })).await;
    let (_, second) = app
        .get(
            &format!("/v1/shares/{}/receipt", second["id"].as_str().unwrap()),
            &a.user,
        )
        .await;
    assert_eq!(second["key_id"], new_kid);
    // Unknown orgs have no keys to show.
    let (s, _) = app
        .get(&format!("/v1/orgs/{}/keys", Uuid::new_v4()), "")
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    app.stop().await;
}
