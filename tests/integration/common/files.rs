//! Evidence files in tests: uploads, their hashes, where the local store
//! keeps them, and the titles a principal sees.

use super::*;

/// The titles `token` sees in `case`'s evidence list, sorted.
pub async fn evidence_titles(app: &TestApp, token: &str, case: Uuid) -> Vec<String> {
    let (s, v) = app.get(&format!("/v1/cases/{case}/evidence"), token).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let mut t: Vec<String> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["title"].as_str().unwrap().to_string())
        .collect();
    t.sort();
    t
}

/// SHA-256 (hex) of `bytes`.
pub fn sha(bytes: &[u8]) -> String {
    hex::encode(<sha2::Sha256 as sha2::Digest>::digest(bytes))
}

/// The local content store of a test app.
pub fn content_dir(app: &TestApp) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("caseshare-test-{}", app.prefix))
}

/// `PUT /v1/evidence/{evidence}/content` with `bytes` as `media`: the status
/// and the JSON body.
pub async fn upload_as(
    app: &TestApp,
    token: &str,
    evidence: Uuid,
    bytes: Vec<u8>,
    media: &str,
) -> (StatusCode, Value) {
    let res = app
        .send(
            app.client
                .put(format!("{}/v1/evidence/{evidence}/content", app.base))
                .bearer_auth(token)
                .header("content-type", media)
                .body(bytes),
        )
        .await;
    let status = res.status;
    (
        status,
        serde_json::from_slice(&res.body).unwrap_or(Value::Null),
    )
}

/// [`upload_as`] an `application/octet-stream`.
pub async fn upload(
    app: &TestApp,
    token: &str,
    evidence: Uuid,
    bytes: Vec<u8>,
) -> (StatusCode, Value) {
    upload_as(app, token, evidence, bytes, "application/octet-stream").await
}

/// [`upload_as`], which must be stored (200).
pub async fn put_file(app: &TestApp, token: &str, evidence: Uuid, bytes: Vec<u8>, media: &str) {
    let (s, v) = upload_as(app, token, evidence, bytes, media).await;
    assert_eq!(s, StatusCode::OK, "{v}");
}
