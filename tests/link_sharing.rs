//! Classic link sharing (R40): content upload with hash check, the ZIP
//! package and its manifest, downloads (ranges), failure on corrupted content,
//! expiry, and refused requests.

mod common;

use common::*;
use reqwest::StatusCode;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::io::Read;
use uuid::Uuid;

fn sha(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn content_dir(app: &TestApp) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("caseshare-test-{}", app.prefix))
}

async fn upload(app: &TestApp, token: &str, evidence: Uuid, bytes: Vec<u8>) -> (StatusCode, Value) {
    let res = app
        .client
        .put(format!("{}/v1/evidence/{evidence}/content", app.base))
        .bearer_auth(token)
        .header("content-type", "application/octet-stream")
        .body(bytes)
        .send()
        .await
        .unwrap();
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// Stop the app and remove its content store.
async fn finish(app: TestApp) {
    let dir = content_dir(&app);
    app.stop().await;
    let _ = std::fs::remove_dir_all(dir);
}

async fn link_share(app: &TestApp, token: &str, case: Uuid, body: Value) -> String {
    let (s, v) = app
        .post(&format!("/v1/cases/{case}/link-shares"), token, body)
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    assert_eq!(v["status"], "processing");
    v["id"].as_str().unwrap().to_string()
}

async fn wait_link(app: &TestApp, token: &str, id: &str) -> Value {
    eventually("link share to finish", || async {
        let (s, v) = app.get(&format!("/v1/link-shares/{id}"), token).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        (v["status"] != "processing").then_some(v)
    })
    .await
}

/// The path of a download URL (the public URL of the tests is not served).
fn download_path(view: &Value) -> String {
    let url = url::Url::parse(view["download_url"].as_str().unwrap()).unwrap();
    url.path().to_string()
}

fn body(scope: Value, retain: bool) -> Value {
    json!({
        "scope": scope,
        "recipient": { "email": "defense@firm.example" },
        "attachments": { "audit_trails": true, "transcripts": true, "table_of_contents": true },
        "retain_folder_structure": retain,
        "package": "zip",
        "duration_hours": 24,
        "message": "the files you asked for",
    })
}

struct World {
    app: TestApp,
    a: Org,
    case: Uuid,
    /// (id, bytes) of evidence in Scene/Cam (3 MiB, with a transcript).
    video: (Uuid, Vec<u8>),
    /// (id, bytes) of evidence in Scene.
    photo: (Uuid, Vec<u8>),
    /// Evidence at the root whose upload was refused (wrong declared hash).
    report: Uuid,
}

async fn world() -> World {
    let app = spawn_app().await;
    let a = app.create_org("Alpha PD", "lea").await;
    // No advanced-sharing setup: classic sharing does not need it.
    let case = app.create_case(&a.user, "Burglary on Main St").await;
    let scene = app.create_folder(&a.user, case, "Scene", None).await;
    let cam = app.create_folder(&a.user, case, "Cam", Some(scene)).await;

    // Larger than axum's default body limit (2 MiB): the upload streams.
    let video_bytes: Vec<u8> = (0..3 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let photo_bytes = b"\x89PNG not really a png".to_vec();
    let (video, _) = app
        .add_evidence(
            &a.user,
            case,
            json!({ "title": "Door cam", "folder_id": cam, "transcript": "he went that way",
                    "content": { "sha256": sha(&video_bytes) } }),
        )
        .await;
    let (photo, _) = app
        .add_evidence(
            &a.user,
            case,
            json!({ "title": "Photo 1", "folder_id": scene }),
        )
        .await;
    let (report, _) = app
        .add_evidence(
            &a.user,
            case,
            json!({ "title": "Report", "content": { "sha256": "b".repeat(64) } }),
        )
        .await;

    let (s, v) = upload(&app, &a.user, video, video_bytes.clone()).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["sha256"], sha(&video_bytes));
    assert_eq!(v["size_bytes"], video_bytes.len());
    let (s, v) = upload(&app, &a.user, photo, photo_bytes.clone()).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["sha256"], sha(&photo_bytes));
    // The photo declared nothing: its evidence now records what was stored.
    let recorded: Value = sqlx::query_scalar("SELECT data->'content' FROM evidence WHERE id = $1")
        .bind(photo)
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(recorded["sha256"], sha(&photo_bytes));
    assert_eq!(recorded["uri"], format!("store://{photo}"));

    // A hash that differs from the declared one: 422 and nothing stored.
    let (s, v) = upload(&app, &a.user, report, b"tampered".to_vec()).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["error"], "validation");
    assert!(!content_dir(&app).join(report.to_string()).exists());
    let leftovers: Vec<_> = std::fs::read_dir(content_dir(&app))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n.starts_with(".upload-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    World {
        app,
        a,
        case,
        video: (video, video_bytes),
        photo: (photo, photo_bytes),
        report,
    }
}

#[tokio::test]
async fn r40_link_share_packages_the_case_with_a_manifest_and_expires() {
    let w = world().await;
    let app = &w.app;
    let id = link_share(
        app,
        &w.a.user,
        w.case,
        body(json!({ "kind": "case" }), true),
    )
    .await;
    let done = wait_link(app, &w.a.user, &id).await;
    assert_eq!(done["status"], "complete", "{done}");
    assert!(done["expires_at"].is_string(), "{done}");
    let path = download_path(&done);
    assert!(path.starts_with("/v1/downloads/"), "{path}");

    // Download without credentials: the token is the credential.
    let res = app
        .client
        .get(format!("{}{path}", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "application/zip");
    let bytes = res.bytes().await.unwrap().to_vec();
    assert_eq!(done["size_bytes"], bytes.len());

    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes.clone())).unwrap();
    let mut names: Vec<String> = zip.file_names().map(str::to_string).collect();
    names.sort();
    let (video, photo) = (w.video.0, w.photo.0);
    let mut expected = vec![
        format!("evidence/Scene/Cam/Door cam-{video}"),
        format!("evidence/Scene/Photo 1-{photo}"),
        format!("transcripts/{video}.txt"),
        "audit.json".to_string(),
        "toc.txt".to_string(),
        "manifest.json".to_string(),
    ];
    expected.sort();
    assert_eq!(names, expected);

    let read = |zip: &mut zip::ZipArchive<std::io::Cursor<Vec<u8>>>, name: &str| {
        let mut buf = Vec::new();
        zip.by_name(name).unwrap().read_to_end(&mut buf).unwrap();
        buf
    };
    assert_eq!(
        read(&mut zip, &format!("evidence/Scene/Cam/Door cam-{video}")),
        w.video.1
    );
    assert_eq!(
        read(&mut zip, &format!("evidence/Scene/Photo 1-{photo}")),
        w.photo.1
    );
    assert_eq!(
        read(&mut zip, &format!("transcripts/{video}.txt")),
        b"he went that way"
    );
    let toc = String::from_utf8(read(&mut zip, "toc.txt")).unwrap();
    assert!(
        toc.contains("Burglary on Main St") && toc.contains("Report"),
        "{toc}"
    );
    let audit: Value = serde_json::from_slice(&read(&mut zip, "audit.json")).unwrap();
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["action"].as_str().unwrap())
        .collect();
    assert!(
        actions.contains(&"content_uploaded") && actions.contains(&"link_share"),
        "{actions:?}"
    );

    // The manifest lists every other file with its real SHA-256 and size.
    let manifest_bytes = read(&mut zip, "manifest.json");
    assert_eq!(done["manifest_sha256"], sha(&manifest_bytes));

    // The recipient is emailed the link, once, with its expiry and the manifest's hash.
    let sink = app.smtp.as_ref().unwrap();
    let mail = eventually("link email", || async { sink.mails().into_iter().next() }).await;
    assert_eq!(mail.to, vec!["defense@firm.example".to_string()]);
    let text = mail.data.replace("=\r\n", "").replace("=3D", "=");
    assert!(
        text.contains(&download_path(&done)),
        "the link is in the email"
    );
    assert!(
        text.contains(done["manifest_sha256"].as_str().unwrap()),
        "the manifest hash is in the email"
    );
    assert!(text.contains("expires on"), "the expiry is in the email");
    assert!(
        !text.contains("he went that way"),
        "no evidence content in the email"
    );
    app.drain().await;
    assert_eq!(sink.mails().len(), 1, "sent once");
    let manifest: Value = serde_json::from_slice(&manifest_bytes).unwrap();
    let files = manifest["files"].as_array().unwrap();
    let mut listed: Vec<String> = files
        .iter()
        .map(|f| f["path"].as_str().unwrap().to_string())
        .collect();
    listed.push("manifest.json".into());
    listed.sort();
    assert_eq!(listed, expected);
    for f in files {
        let data = read(&mut zip, f["path"].as_str().unwrap());
        assert_eq!(f["sha256"], sha(&data), "{f}");
        assert_eq!(f["size_bytes"], data.len(), "{f}");
    }
    // Evidence without stored content is listed with no content.
    let report = manifest["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["evidence_id"] == w.report.to_string())
        .expect("report listed");
    assert!(report["content"].is_null(), "{report}");

    // A single byte range.
    let res = app
        .client
        .get(format!("{}{path}", app.base))
        .header("range", "bytes=10-19")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        res.headers()["content-range"],
        format!("bytes 10-19/{}", bytes.len()).as_str()
    );
    assert_eq!(res.bytes().await.unwrap().to_vec(), bytes[10..20].to_vec());

    // Downloads are audited.
    let downloads: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_log WHERE action = 'link_download' AND details->>'link_share_id' = $1",
    )
    .bind(&id)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(downloads, 2);

    // New evidence is never added to an existing link share: the job ran once.
    app.add_evidence(&w.a.user, w.case, json!({ "title": "Later" }))
        .await;
    app.drain().await;
    let (_, again) = app.get(&format!("/v1/link-shares/{id}"), &w.a.user).await;
    assert_eq!(again["manifest_sha256"], done["manifest_sha256"]);

    // After expiry: 410 `expired`.
    sqlx::query("UPDATE link_shares SET expires_at = now() - interval '1 hour' WHERE id = $1")
        .bind(id.parse::<Uuid>().unwrap())
        .execute(&app.db)
        .await
        .unwrap();
    let res = app
        .client
        .get(format!("{}{path}", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::GONE);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["error"], "expired", "{v}");

    // The sweep deletes the expired package from the store; the record stays.
    let settings = app.app.as_ref().unwrap().settings.clone();
    let link: Uuid = id.parse().unwrap();
    let package = caseshare::linkshare::package_path(&settings, link);
    assert!(package.exists());
    assert_eq!(
        caseshare::linkshare::sweep_expired(&app.db, &settings)
            .await
            .unwrap(),
        1
    );
    assert!(!package.exists(), "expired package deleted");
    assert_eq!(
        caseshare::linkshare::sweep_expired(&app.db, &settings)
            .await
            .unwrap(),
        0,
        "once"
    );
    let (_, after) = app.get(&format!("/v1/link-shares/{id}"), &w.a.user).await;
    assert_eq!(after["manifest_sha256"], done["manifest_sha256"]);

    // Unknown tokens are not found.
    let (s, _) = app
        .call(
            reqwest::Method::GET,
            &format!("/v1/downloads/{}", "0".repeat(64)),
            None,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    finish(w.app).await;
}

#[tokio::test]
async fn r40_flat_package_of_selected_evidence() {
    let w = world().await;
    let app = &w.app;
    let scope = json!({ "kind": "evidence", "evidence_ids": [w.video.0] });
    let mut b = body(scope, false);
    b["attachments"] = json!({});
    let id = link_share(app, &w.a.user, w.case, b).await;
    let done = wait_link(app, &w.a.user, &id).await;
    assert_eq!(done["status"], "complete", "{done}");
    let bytes = app
        .client
        .get(format!("{}{}", app.base, download_path(&done)))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap()
        .to_vec();
    let zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
    let mut names: Vec<&str> = zip.file_names().collect();
    names.sort();
    assert_eq!(
        names,
        vec![
            format!("evidence/Door cam-{}", w.video.0).as_str(),
            "manifest.json"
        ]
    );
    finish(w.app).await;
}

#[tokio::test]
async fn r40_corrupted_stored_content_fails_the_link_share() {
    let w = world().await;
    let app = &w.app;
    std::fs::write(content_dir(app).join(w.photo.0.to_string()), b"bit rot").unwrap();
    let id = link_share(
        app,
        &w.a.user,
        w.case,
        body(json!({ "kind": "case" }), true),
    )
    .await;
    let done = wait_link(app, &w.a.user, &id).await;
    assert_eq!(done["status"], "failed", "{done}");
    let failure = done["failure"].as_str().unwrap();
    assert!(
        failure.contains("Photo 1") && failure.contains(&w.photo.0.to_string()),
        "{failure}"
    );
    assert!(done.get("download_url").is_none(), "{done}");
    let audited: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_log WHERE action = 'link_share_failed' AND evidence_id = $1",
    )
    .bind(w.photo.0)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(audited, 1);
    // No partial package is left behind.
    let packages: Vec<_> = std::fs::read_dir(content_dir(app).join("packages"))
        .map(|d| d.map(|e| e.unwrap().file_name()).collect())
        .unwrap_or_default();
    assert!(packages.is_empty(), "{packages:?}");
    finish(w.app).await;
}

#[tokio::test]
async fn r40_refuses_bad_link_share_requests() {
    let app = spawn_app().await;
    let a = app.create_org("Alpha PD", "lea").await;
    let b = app.create_org("Beta PD", "lea").await;
    let c = app.create_org("Citizen Portal", "fpp").await;
    app.partner(a.id, c.id).await;
    let case = app.create_case(&a.user, "Burglary").await;
    let ok = body(json!({ "kind": "case" }), false);

    let (s, v) = app
        .post(
            &format!("/v1/cases/{}/link-shares", Uuid::new_v4()),
            &a.user,
            ok.clone(),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
    let (s, v) = app
        .post(
            &format!("/v1/cases/{case}/link-shares"),
            &b.user,
            ok.clone(),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
    for (key, value) in [
        ("duration_hours", json!(0)),
        ("duration_hours", json!(-5)),
        ("package", json!("tar")),
        ("package", json!("iso")),
        ("recipient", json!({ "email": "not-an-address" })),
        ("recipient", json!({ "user_id": b.user_id })),
        (
            "scope",
            json!({ "kind": "evidence", "evidence_ids": [Uuid::new_v4()] }),
        ),
    ] {
        let mut bad = ok.clone();
        bad[key] = value.clone();
        let (s, v) = app
            .post(&format!("/v1/cases/{case}/link-shares"), &a.user, bad)
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{key}={value}: {v}");
        assert_eq!(v["error"], "validation", "{v}");
    }

    // A user of an fpp partner (R4's fallback) and a user of the own org are fine.
    for user in [c.user_id, a.admin_id] {
        let mut good = ok.clone();
        good["recipient"] = json!({ "user_id": user });
        let id = link_share(&app, &a.user, case, good).await;
        // Another org cannot see it.
        let (s, _) = app.get(&format!("/v1/link-shares/{id}"), &b.user).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        let done = wait_link(&app, &a.user, &id).await;
        assert_eq!(done["status"], "complete", "{done}");
    }

    // Content uploads: only the owning org, only existing evidence.
    let (ev, _) = app
        .add_evidence(&a.user, case, json!({ "title": "X" }))
        .await;
    let (s, _) = upload(&app, &b.user, ev, b"x".to_vec()).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = upload(&app, &a.user, Uuid::new_v4(), b"x".to_vec()).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    finish(app).await;
}
