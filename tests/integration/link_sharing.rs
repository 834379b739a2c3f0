//! Classic link sharing (R40): content upload with hash check, the ZIP and
//! ISO 9660 packages and their manifests, downloads (ranges), failure on
//! corrupted content, expiry, and refused requests.
//!
//! The packages are also opened with the standard tools when they are
//! installed (`unzip`, `isovfy`/`isoinfo` from genisoimage, `7z` from
//! p7zip-full; `.ci/run` installs them and sets `CASESHARE_REQUIRE_TOOLS=1`, so
//! in CI a missing tool fails the test instead of skipping that check).

use crate::common::*;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::io::Read;
use uuid::Uuid;

/// The files in the scratch space's temporary directory.
fn temp_files(app: &TestApp) -> Vec<std::ffi::OsString> {
    std::fs::read_dir(content_dir(app).join(".tmp"))
        .map(|d| d.map(|e| e.unwrap().file_name()).collect())
        .unwrap_or_default()
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

/// The package of a finished link share, downloaded by its token (200).
async fn package_bytes(app: &TestApp, done: &Value) -> Vec<u8> {
    let res = app
        .send(
            app.client
                .get(format!("{}{}", app.base, download_path(done))),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{done}");
    res.body
}

/// Every file of a package of the whole world case with folders kept and
/// every attachment, sorted.
fn full_case_tree(w: &World) -> Vec<String> {
    let (video, photo) = (w.video.0, w.photo.0);
    let mut tree = vec![
        format!("evidence/Scene/Cam/Door cam-{video}"),
        format!("evidence/Scene/Photo 1-{photo}"),
        format!("transcripts/{video}.txt"),
        "audit.json".to_string(),
        "toc.txt".to_string(),
        "manifest.json".to_string(),
    ];
    tree.sort();
    tree
}

/// The path of a download URL (the public URL of the tests is not served).
/// The path of a link share's landing page (what emails link to).
fn page_path(view: &Value) -> String {
    let url = url::Url::parse(view["page_url"].as_str().unwrap()).unwrap();
    url.path().to_string()
}

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
    world_with(Options::default()).await
}

async fn world_with(options: Options) -> World {
    let app = spawn_with(options).await;
    let a = app.create_org("Alpha PD", "lea").await;
    // No advanced-sharing setup: classic sharing does not need it.
    let case = app.create_case(&a.user, "Burglary on Main St").await;
    // Larger than axum's default body limit (2 MiB): the upload streams.
    let video_bytes: Vec<u8> = (0..3 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let photo_bytes = b"\x89PNG not really a png".to_vec();
    let tree = Tree::build(
        &app,
        &a.user,
        case,
        &[("Scene", None), ("Cam", Some("Scene"))],
        &[
            (
                json!({ "title": "Door cam", "transcript": "he went that way",
                        "content": { "sha256": sha(&video_bytes) } }),
                Some("Cam"),
            ),
            (evidence_titled("Photo 1"), Some("Scene")),
            (
                json!({ "title": "Report", "content": { "sha256": "b".repeat(64) } }),
                None,
            ),
        ],
    )
    .await;
    let (video, photo, report) = (
        tree.item("Door cam"),
        tree.item("Photo 1"),
        tree.item("Report"),
    );

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
    assert!(
        temp_files(&app).is_empty(),
        "the refused upload was removed"
    );

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
        .send(app.client.get(format!("{}{path}", app.base)))
        .await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(res.headers["content-type"], "application/zip");
    let bytes = res.body;
    assert_eq!(done["size_bytes"], bytes.len());
    // A HEAD learns the size and is not a download: not audited as one.
    let downloads = "SELECT count(*) FROM audit_log WHERE action = 'link_download'";
    let before = app.count(downloads).await;
    let head = app
        .send(app.client.head(format!("{}{path}", app.base)))
        .await;
    assert_eq!(head.status, StatusCode::OK);
    assert_eq!(
        head.headers["content-length"],
        bytes.len().to_string().as_str()
    );
    assert_eq!(app.count(downloads).await, before);
    // Evidence and packages are the service's alone: 0700 directories, 0600 files.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fn walk(dir: &std::path::Path, out: &mut Vec<(std::path::PathBuf, u32)>) {
            for entry in std::fs::read_dir(dir).unwrap().flatten() {
                let meta = entry.metadata().unwrap();
                out.push((entry.path(), meta.permissions().mode() & 0o777));
                if meta.is_dir() {
                    walk(&entry.path(), out);
                }
            }
        }
        let mut found = Vec::new();
        walk(&content_dir(app), &mut found);
        assert!(!found.is_empty());
        for (path, mode) in found {
            assert_eq!(mode & 0o077, 0, "{} is {mode:o}", path.display());
        }
    }

    if let Some(unzip) = tool("unzip") {
        let file = temp_file(&bytes, "zip");
        let out = run(&unzip, &["-t", file.to_str().unwrap()]);
        assert!(out.contains("No errors detected"), "{out}");
        let _ = std::fs::remove_file(file);
    }
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes.clone())).unwrap();
    let mut names: Vec<String> = zip.file_names().map(str::to_string).collect();
    names.sort();
    let (video, photo) = (w.video.0, w.photo.0);
    let expected = full_case_tree(&w);
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
    let sink = sink(app);
    let mail = eventually("link email", || async { sink.mails().into_iter().next() }).await;
    assert_eq!(mail.to, vec!["defense@firm.example".to_string()]);
    let text = readable(&mail);
    assert!(
        text.contains(&page_path(&done)),
        "the link (its landing page) is in the email"
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
        .send(
            app.client
                .get(format!("{}{path}", app.base))
                .header("range", "bytes=10-19"),
        )
        .await;
    assert_eq!(res.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        res.headers["content-range"],
        format!("bytes 10-19/{}", bytes.len()).as_str()
    );
    assert_eq!(res.body, bytes[10..20].to_vec());

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
        .send(app.client.get(format!("{}{path}", app.base)))
        .await;
    assert_eq!(res.status, StatusCode::GONE);
    let (_, v) = res.json();
    assert_eq!(v["error"], "expired", "{v}");

    // The sweep deletes the expired package from the store; the record stays.
    let settings = app.app.as_ref().unwrap().settings.clone();
    let link: Uuid = id.parse().unwrap();
    let store = app.app.as_ref().unwrap().store.clone();
    let key: String = sqlx::query_scalar("SELECT package_key FROM link_shares WHERE id = $1")
        .bind(link)
        .fetch_one(&app.db)
        .await
        .unwrap();
    let package = settings.content_dir.join("packages").join(&key);
    assert!(package.exists());
    assert_eq!(
        caseshare::linkshare::sweep_expired(&app.db, &store)
            .await
            .unwrap(),
        1
    );
    assert!(!package.exists(), "expired package deleted");
    assert_eq!(
        caseshare::linkshare::sweep_expired(&app.db, &store)
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
    let bytes = package_bytes(app, &done).await;
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
    // The ISO image is laid out before the content is read: a file of another
    // size than when laid out fails it the same way.
    let mut iso = body(json!({ "kind": "case" }), true);
    iso["package"] = json!("iso");
    let iso = link_share(app, &w.a.user, w.case, iso).await;
    let done = wait_link(app, &w.a.user, &iso).await;
    assert_eq!(done["status"], "failed", "{done}");
    assert!(
        done["failure"].as_str().unwrap().contains("Photo 1"),
        "{done}"
    );
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
    assert_eq!(audited, 2, "both link shares failed on it");
    // No partial package is left behind.
    assert!(temp_files(app).is_empty(), "{:?}", temp_files(app));
    let packages: Vec<_> = std::fs::read_dir(content_dir(app).join("packages"))
        .map(|d| d.map(|e| e.unwrap().file_name()).collect())
        .unwrap_or_default();
    assert!(packages.is_empty(), "{packages:?}");

    // What a crash would leave in the scratch space is swept once stale.
    let store = app.app.as_ref().unwrap().store.clone();
    let stale = store.temp_path("upload-crashed").await.unwrap();
    std::fs::write(&stale, b"half an upload").unwrap();
    let hour = std::time::Duration::from_secs(3600);
    assert_eq!(store.sweep_temp(hour).await.unwrap(), 0, "too recent");
    assert_eq!(
        store.sweep_temp(std::time::Duration::ZERO).await.unwrap(),
        1
    );
    assert!(!stale.exists());
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

    let link_shares = format!("/v1/cases/{case}/link-shares");
    assert_all_refused(
        &app,
        [
            Call::post(
                format!("/v1/cases/{}/link-shares", Uuid::new_v4()),
                &a.user,
                ok.clone(),
            )
            .status(StatusCode::NOT_FOUND),
            Call::post(&link_shares, &b.user, ok.clone()).status(StatusCode::NOT_FOUND),
        ],
    )
    .await;
    let bad_fields = [
        ("duration_hours", json!(0)),
        ("duration_hours", json!(-5)),
        ("package", json!("tar")),
        ("recipient", json!({ "email": "not-an-address" })),
        ("recipient", json!({ "user_id": b.user_id })),
        (
            "scope",
            json!({ "kind": "evidence", "evidence_ids": [Uuid::new_v4()] }),
        ),
    ];
    assert_all_refused(
        &app,
        bad_fields.map(|(key, value)| {
            let mut bad = ok.clone();
            bad[key] = value.clone();
            Call::post(&link_shares, &a.user, bad)
                .refused(StatusCode::UNPROCESSABLE_ENTITY, "validation")
                .note(format!("{key}={value}"))
        }),
    )
    .await;

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

fn tool(name: &str) -> Option<std::path::PathBuf> {
    crate::common::tool(name, "apt-get install genisoimage p7zip-full unzip")
}

fn run(tool: &std::path::Path, args: &[&str]) -> String {
    let out = std::process::Command::new(tool)
        .args(args)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{tool:?} {args:?}: {text}");
    text
}

fn temp_file(bytes: &[u8], extension: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("caseshare-{}.{extension}", Uuid::new_v4()));
    std::fs::write(&path, bytes).unwrap();
    path
}

/// A small ISO 9660 reader for the test: walks the Joliet tree (the
/// supplementary volume descriptor with the UCS-2 escape) and returns every
/// file's path and bytes, checking the structure on the way.
fn read_joliet(image: &[u8]) -> Vec<(String, Vec<u8>)> {
    const SECTOR: usize = 2048;
    let le32 = |b: &[u8]| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize;
    let be32 = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize;
    assert_eq!(image.len() % SECTOR, 0, "whole sectors");
    let primary = &image[16 * SECTOR..17 * SECTOR];
    assert_eq!(&primary[..7], b"\x01CD001\x01", "primary volume descriptor");
    assert_eq!(le32(&primary[80..]) * SECTOR, image.len(), "volume size");
    assert_eq!(be32(&primary[84..]) * SECTOR, image.len(), "both-endian");
    let joliet = &image[17 * SECTOR..18 * SECTOR];
    assert_eq!(&joliet[..7], b"\x02CD001\x01", "supplementary descriptor");
    assert_eq!(&joliet[88..91], b"%/E", "Joliet UCS-2 level 3");
    assert_eq!(image[18 * SECTOR], 255, "terminator");

    fn walk(image: &[u8], lba: usize, size: usize, prefix: &str, out: &mut Vec<(String, Vec<u8>)>) {
        let extent = &image[lba * 2048..lba * 2048 + size];
        let mut at = 0;
        let mut records = 0;
        while at < extent.len() {
            let len = extent[at] as usize;
            if len == 0 {
                at = (at / 2048 + 1) * 2048; // the rest of this sector is padding
                continue;
            }
            assert!(at % 2048 + len <= 2048, "a record crosses a sector");
            let r = &extent[at..at + len];
            at += len;
            records += 1;
            let id = &r[33..33 + r[32] as usize];
            if id == [0] || id == [1] {
                continue;
            }
            let units: Vec<u16> = id
                .chunks(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
            let name = String::from_utf16(&units).unwrap();
            let child_lba = u32::from_le_bytes([r[2], r[3], r[4], r[5]]) as usize;
            let child_len = u32::from_le_bytes([r[10], r[11], r[12], r[13]]) as usize;
            let path = format!("{prefix}{name}");
            if r[25] & 2 != 0 {
                walk(image, child_lba, child_len, &format!("{path}/"), out);
            } else {
                let data = image[child_lba * 2048..child_lba * 2048 + child_len].to_vec();
                out.push((path, data));
            }
        }
        assert!(records >= 2, "every directory has . and ..");
    }
    let root = &joliet[156..190];
    let lba = u32::from_le_bytes([root[2], root[3], root[4], root[5]]) as usize;
    let size = u32::from_le_bytes([root[10], root[11], root[12], root[13]]) as usize;
    let mut files = Vec::new();
    walk(image, lba, size, "", &mut files);
    files.sort();
    files
}

#[tokio::test]
async fn r40_iso_package_opens_with_standard_tools_and_matches_its_manifest() {
    let w = world().await;
    let app = &w.app;
    let mut request = body(json!({ "kind": "case" }), true);
    request["package"] = json!("iso");
    let id = link_share(app, &w.a.user, w.case, request).await;
    let done = wait_link(app, &w.a.user, &id).await;
    assert_eq!(done["status"], "complete", "{done}");
    assert_eq!(done["package"], "iso");
    let res = app
        .send(
            app.client
                .get(format!("{}{}", app.base, download_path(&done))),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(res.headers["content-type"], "application/x-iso9660-image");
    assert!(res.headers["content-disposition"]
        .to_str()
        .unwrap()
        .ends_with(".iso\""));
    let image = res.body;
    assert_eq!(done["size_bytes"], image.len());

    let files = read_joliet(&image);
    let names: Vec<&str> = files.iter().map(|(p, _)| p.as_str()).collect();
    let (video, photo) = (w.video.0, w.photo.0);
    let expected = full_case_tree(&w);
    assert_eq!(names, expected);
    let file = |name: &str| &files.iter().find(|(p, _)| p == name).unwrap().1;
    assert_eq!(
        sha(file(&format!("evidence/Scene/Cam/Door cam-{video}"))),
        sha(&w.video.1)
    );
    assert_eq!(
        sha(file(&format!("evidence/Scene/Photo 1-{photo}"))),
        sha(&w.photo.1)
    );

    let manifest_bytes = file("manifest.json");
    assert_eq!(done["manifest_sha256"], sha(manifest_bytes));
    let manifest: Value = serde_json::from_slice(manifest_bytes).unwrap();
    assert_eq!(manifest["package"], "iso");
    let listed = manifest["files"].as_array().unwrap();
    assert_eq!(
        listed.len(),
        expected.len() - 1,
        "every file but the manifest"
    );
    for f in listed {
        let data = file(f["path"].as_str().unwrap());
        assert_eq!(f["sha256"], sha(data), "{f}");
        assert_eq!(f["size_bytes"], data.len(), "{f}");
    }

    // The standard tools agree.
    let path = temp_file(&image, "iso");
    let iso = path.to_str().unwrap();
    if let Some(isovfy) = tool("isovfy") {
        let out = run(&isovfy, &[iso]);
        assert!(out.contains("No errors found"), "{out}");
    }
    if let Some(isoinfo) = tool("isoinfo") {
        let listing = run(&isoinfo, &["-i", iso, "-J", "-f"]);
        for name in &expected {
            assert!(
                listing.lines().any(|l| l == format!("/{name}")),
                "{name} in {listing}"
            );
        }
        // Level 1 names in the primary tree, for readers without Joliet.
        let primary = run(&isoinfo, &["-i", iso, "-f"]);
        assert!(primary.lines().any(|l| l == "/MANIFEST.JSO;1"), "{primary}");
        let out = std::process::Command::new(&isoinfo)
            .args([
                "-i",
                iso,
                "-J",
                "-x",
                &format!("/evidence/Scene/Cam/Door cam-{video}"),
            ])
            .output()
            .unwrap();
        assert_eq!(
            sha(&out.stdout),
            sha(&w.video.1),
            "isoinfo extracts the video"
        );
    }
    if let Some(sevenzip) = tool("7z") {
        let out = run(&sevenzip, &["t", iso]);
        assert!(out.contains("Everything is Ok"), "{out}");
        let dir = std::env::temp_dir().join(format!("caseshare-x-{}", Uuid::new_v4()));
        run(&sevenzip, &["x", iso, &format!("-o{}", dir.display())]);
        for f in listed {
            let data = std::fs::read(dir.join(f["path"].as_str().unwrap())).unwrap();
            assert_eq!(f["sha256"], sha(&data), "7z extracted {f}");
        }
        let _ = std::fs::remove_dir_all(dir);
    }
    let _ = std::fs::remove_file(path);
    finish(w.app).await;
}

fn is_reminder(mail: &Mail) -> bool {
    subject(mail).starts_with("Reminder")
}

// R40: "a reminder is emailed a configurable time before expiry" (default 24 h).
#[tokio::test]
async fn r40_expiry_reminder_is_emailed_once_before_the_link_expires() {
    let w = world().await;
    let app = &w.app;
    let settings = app.app.as_ref().unwrap().settings.clone();
    assert_eq!(settings.link_reminder_hours, 24);
    let mut long = body(
        json!({ "kind": "evidence", "evidence_ids": [w.photo.0] }),
        false,
    );
    long["duration_hours"] = json!(72);
    let long = link_share(app, &w.a.user, w.case, long).await;
    // A link valid for less than the reminder window gets no reminder.
    let mut short = body(
        json!({ "kind": "evidence", "evidence_ids": [w.photo.0] }),
        false,
    );
    short["duration_hours"] = json!(12);
    let short = link_share(app, &w.a.user, w.case, short).await;
    for id in [&long, &short] {
        assert_eq!(wait_link(app, &w.a.user, id).await["status"], "complete");
    }
    app.drain().await;
    let sink = sink(app);
    assert_eq!(sink.mails().len(), 2, "one link email per link share");
    let remind = || caseshare::linkshare::queue_reminders(&app.db, &settings);
    assert_eq!(remind().await.unwrap(), 0, "72 h left: too early");

    // Time passes (moved behind the service's back): 2 hours left on both.
    sqlx::query(
        "UPDATE link_shares SET expires_at = now() + interval '2 hours' WHERE id = ANY($1)",
    )
    .bind(vec![
        long.parse::<Uuid>().unwrap(),
        short.parse::<Uuid>().unwrap(),
    ])
    .execute(&app.db)
    .await
    .unwrap();
    assert_eq!(remind().await.unwrap(), 1, "only the long-lived link");
    assert_eq!(remind().await.unwrap(), 0, "once");
    let reminder = eventually("the reminder email", || async {
        sink.mails().into_iter().find(is_reminder)
    })
    .await;
    assert_eq!(reminder.to, vec!["defense@firm.example".to_string()]);
    let (_, view) = app.get(&format!("/v1/link-shares/{long}"), &w.a.user).await;
    let text = readable(&reminder);
    assert!(
        text.contains(&page_path(&view)),
        "the link is in the reminder"
    );
    let expires: chrono::DateTime<chrono::Utc> =
        view["expires_at"].as_str().unwrap().parse().unwrap();
    assert!(
        text.contains(&expires.format("%Y-%m-%d %H:%M UTC").to_string()),
        "the expiry is in the reminder"
    );
    app.drain().await;
    assert_eq!(sink.mails().len(), 3, "two link emails and one reminder");
    assert_eq!(sink.mails().iter().filter(|m| is_reminder(m)).count(), 1);
    finish(w.app).await;
}

// R40 + R15 + R36: link shares report status events; a build that dies
// (here: the package directory cannot be created) fails the link share, and
// the operator's requeue reopens and completes it.
#[tokio::test]
async fn r40_link_share_status_events_and_dead_letter_requeue() {
    let w = world_with(Options {
        max_attempts: 1,
        ..Default::default()
    })
    .await;
    let app = &w.app;
    let listener = StatusListener::bind(app, w.a.id, &["link_share.#"]).await;
    let packages = content_dir(app).join("packages");
    std::fs::write(&packages, b"not a directory").unwrap();
    let (s, v) = app
        .post(
            &format!("/v1/cases/{}/link-shares", w.case),
            &w.a.user,
            body(json!({ "kind": "case" }), true),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    let job: Uuid = v["job_id"].as_str().unwrap().parse().unwrap();
    let done = wait_link(app, &w.a.user, &id).await;
    assert_eq!(done["status"], "failed", "{done}");
    assert_eq!(app.wait_job(job).await, "dead");
    let events = listener
        .wait_for(&["link_share.processing", "link_share.failed"])
        .await;
    for (key, v) in &events {
        assert_eq!(v["link_share_id"], id.as_str(), "{key}: {v}");
        assert_eq!(v["case_id"], w.case.to_string(), "{key}: {v}");
        assert!(!v.to_string().contains("Door cam"), "ids only: {v}");
    }

    // The operator fixes the store and requeues the dead job.
    std::fs::remove_file(&packages).unwrap();
    let mut ops = caseshare::config::Settings::defaults().unwrap();
    ops.database_url = app.database_url.clone();
    ops.amqp_url = app.amqp_url.clone();
    ops.amqp_prefix = app.prefix.clone();
    let requeued =
        caseshare::operations::requeue(&ops, caseshare::operations::RequeueTarget::Job(job))
            .await
            .expect("requeue");
    assert_eq!(
        requeued[0].subject_reset.as_deref(),
        Some(format!("link share {id}: failed -> processing").as_str())
    );
    let done = wait_link(app, &w.a.user, &id).await;
    assert_eq!(done["status"], "complete", "{done}");
    assert!(done.get("failure").is_none(), "{done}");
    listener
        .wait_for(&[
            "link_share.processing",
            "link_share.failed",
            "link_share.processing",
            "link_share.complete",
        ])
        .await;
    app.drain().await;
    assert_eq!(sink(app).mails().len(), 1, "the link is emailed once");
    listener.close().await;
    finish(w.app).await;
}

// R40: "an S3-compatible backend for production" — the same flows against a
// real S3 server (s3s-fs on loopback, SigV4): uploads land in the bucket as
// multipart uploads completed only when the hash checks out, packages are
// built from the bucket, put into it, served from it (ranges too) and swept.
#[tokio::test]
async fn r40_s3_content_store_keeps_evidence_and_packages_in_the_bucket() {
    let app = spawn_with(Options {
        s3: true,
        ..Default::default()
    })
    .await;
    let s3 = app.s3.as_ref().unwrap();
    let a = app.create_org("Alpha PD", "lea").await;
    let case = app.create_case(&a.user, "Burglary on Main St").await;
    // 9 MiB: two parts of a multipart upload.
    let video: Vec<u8> = (0..9 * 1024 * 1024u32).map(|i| (i % 253) as u8).collect();
    let (video_id, _) = app
        .add_evidence(
            &a.user,
            case,
            json!({ "title": "Door cam", "content": { "sha256": sha(&video) } }),
        )
        .await;
    let (photo_id, _) = app
        .add_evidence(&a.user, case, json!({ "title": "Photo 1" }))
        .await;
    let (s, v) = upload(&app, &a.user, video_id, video.clone()).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let stored = std::fs::read(s3.object_path(&format!("evidence/{video_id}"))).unwrap();
    assert_eq!(sha(&stored), sha(&video), "the object in the bucket");
    let (s, v) = upload(&app, &a.user, photo_id, b"photo".to_vec()).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(
        !content_dir(&app).join(video_id.to_string()).exists(),
        "nothing in the local store"
    );

    // A refused upload (hash differs) leaves no object: the upload was aborted.
    let (report, _) = app
        .add_evidence(
            &a.user,
            case,
            json!({ "title": "Report", "content": { "sha256": "c".repeat(64) } }),
        )
        .await;
    let (s, v) = upload(&app, &a.user, report, b"tampered".to_vec()).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(!s3.object_path(&format!("evidence/{report}")).exists());

    let mut request = body(json!({ "kind": "case" }), false);
    request["attachments"] = json!({});
    let id = link_share(&app, &a.user, case, request.clone()).await;
    let done = wait_link(&app, &a.user, &id).await;
    assert_eq!(done["status"], "complete", "{done}");
    let link: Uuid = id.parse().unwrap();
    let key: String = sqlx::query_scalar("SELECT package_key FROM link_shares WHERE id = $1")
        .bind(link)
        .fetch_one(&app.db)
        .await
        .unwrap();
    let object = s3.object_path(&format!("packages/{key}"));
    assert!(object.exists(), "the package is in the bucket");
    let path = download_path(&done);
    let bytes = package_bytes(&app, &done).await;
    assert_eq!(done["size_bytes"], bytes.len());
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes.clone())).unwrap();
    let mut data = Vec::new();
    zip.by_name(&format!("evidence/Door cam-{video_id}"))
        .unwrap()
        .read_to_end(&mut data)
        .unwrap();
    assert_eq!(sha(&data), sha(&video));
    let res = app
        .send(
            app.client
                .get(format!("{}{path}", app.base))
                .header("range", "bytes=100-1123"),
        )
        .await;
    assert_eq!(res.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        sha(&res.body),
        sha(&bytes[100..1124]),
        "the range comes from the bucket"
    );

    // An ISO image from the bucket too (sizes as recorded at upload).
    let mut iso = request.clone();
    iso["package"] = json!("iso");
    let iso = link_share(&app, &a.user, case, iso).await;
    let iso = wait_link(&app, &a.user, &iso).await;
    assert_eq!(iso["status"], "complete", "{iso}");
    let image = package_bytes(&app, &iso).await;
    let files = read_joliet(&image);
    let video_file = files
        .iter()
        .find(|(p, _)| p == &format!("evidence/Door cam-{video_id}"))
        .expect("the video is in the image");
    assert_eq!(sha(&video_file.1), sha(&video));

    // Corrupted in the bucket: the next package fails and names the file.
    std::fs::write(s3.object_path(&format!("evidence/{photo_id}")), b"bit rot").unwrap();
    let failed = link_share(&app, &a.user, case, request).await;
    let failed = wait_link(&app, &a.user, &failed).await;
    assert_eq!(failed["status"], "failed", "{failed}");
    assert!(
        failed["failure"].as_str().unwrap().contains("Photo 1"),
        "{failed}"
    );

    // Expired: the sweep deletes the package from the bucket.
    sqlx::query("UPDATE link_shares SET expires_at = now() - interval '1 minute' WHERE id = $1")
        .bind(link)
        .execute(&app.db)
        .await
        .unwrap();
    let store = app.app.as_ref().unwrap().store.clone();
    assert_eq!(
        caseshare::linkshare::sweep_expired(&app.db, &store)
            .await
            .unwrap(),
        1
    );
    assert!(!object.exists(), "swept from the bucket");

    // The bucket is down: an upload is refused with 503 `unavailable` and
    // nothing is recorded; the evidence keeps what it had.
    s3.stop().await;
    let before: Value = sqlx::query_scalar("SELECT data->'content' FROM evidence WHERE id = $1")
        .bind(photo_id)
        .fetch_one(&app.db)
        .await
        .unwrap();
    let (s, v) = upload(&app, &a.user, photo_id, b"photo v2".to_vec()).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{v}");
    assert_eq!(v["error"], "unavailable", "{v}");
    let after: Value = sqlx::query_scalar("SELECT data->'content' FROM evidence WHERE id = $1")
        .bind(photo_id)
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(before, after);
    finish(app).await;
}

// R10 + R40: "the policy's excluded fields never appear in attachments". The
// policy for the recipient governs: the default for an email address, the
// partner's (override or default) for a partner user, none inside the org.
#[tokio::test]
async fn r10_r40_attachments_the_recipients_policy_excludes_are_refused() {
    let w = world().await;
    let app = &w.app;
    let court = app.create_org("County Court", "justice").await;
    app.partner(w.a.id, court.id).await;
    // The default excludes transcripts and the audit trail (policy(false)).
    app.setup(&w.a, policy(false), false).await;
    let (s, p) = app.post("/v1/policies", &w.a.admin, policy(true)).await;
    assert_eq!(s, StatusCode::CREATED, "{p}");
    let (s, v) = app
        .put(
            &format!("/v1/partners/{}/policy", court.id),
            &w.a.admin,
            json!({ "policy_id": p["id"] }),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let count = || app.count("SELECT count(*) FROM link_shares");
    let before = count().await;

    // To an email address: the default policy refuses both attachments.
    let link_shares = format!("/v1/cases/{}/link-shares", w.case);
    assert_all_refused(
        app,
        [
            ("transcripts", "transcripts"),
            ("audit_trails", "audit trail"),
        ]
        .map(|(attachment, word)| {
            let mut request = body(json!({ "kind": "case" }), false);
            request["attachments"] = json!({ attachment: true });
            Call::post(&link_shares, &w.a.user, request)
                .refused(StatusCode::UNPROCESSABLE_ENTITY, "validation")
                .message(word)
        }),
    )
    .await;
    assert_eq!(count().await, before, "refused requests change nothing");

    // Without them it goes through, and the package has no transcript.
    let mut request = body(json!({ "kind": "case" }), false);
    request["attachments"] = json!({ "table_of_contents": true });
    let id = link_share(app, &w.a.user, w.case, request).await;
    let done = wait_link(app, &w.a.user, &id).await;
    let package = download(app, &done).await;
    assert!(
        !package.iter().any(|n| n.starts_with("transcripts/")),
        "{package:?}"
    );

    // To a user of the partner whose own policy includes transcripts: allowed.
    let (court_user, _) = app.create_user(court.id, "Clerk", "user").await;
    let mut request = body(json!({ "kind": "case" }), false);
    request["recipient"] = json!({ "user_id": court_user });
    let id = link_share(app, &w.a.user, w.case, request).await;
    let done = wait_link(app, &w.a.user, &id).await;
    let package = download(app, &done).await;
    assert!(
        package.contains(&format!("transcripts/{}.txt", w.video.0)),
        "{package:?}"
    );
    // Inside the org no policy applies.
    let mut request = body(json!({ "kind": "case" }), false);
    request["recipient"] = json!({ "user_id": w.a.admin_id });
    link_share(app, &w.a.user, w.case, request).await;
    finish(w.app).await;
}

/// Download a finished link share's ZIP and list its file names.
async fn download(app: &TestApp, done: &Value) -> Vec<String> {
    assert_eq!(done["status"], "complete", "{done}");
    let bytes = package_bytes(app, done).await;
    let zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
    zip.file_names().map(str::to_string).collect()
}

// Chain of custody (R39, R40): `caseshare content verify` re-hashes what the
// store holds against the recorded SHA-256, names what is corrupted or
// missing, and leaves a `content_verified` entry in the case's audit trail.
#[tokio::test]
async fn r40_content_verify_names_corrupted_and_missing_content() {
    let w = world().await;
    let app = &w.app;
    let store = app.app.as_ref().unwrap().store.clone();
    let verify = || caseshare::linkshare::verify_content(&app.db, &store, Some(w.case));
    let report = verify().await.unwrap();
    assert_eq!(report.checked, 2, "{}", report.render());
    assert!(report.problems.is_empty(), "{}", report.render());
    assert_eq!(report.bytes as usize, w.video.1.len() + w.photo.1.len());

    // The operator's command, as a process: exit status 0 when intact.
    let cli = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_caseshare"))
            .args(["content", "verify", "--case", &w.case.to_string()])
            .env_remove("CASESHARE_CONFIG")
            .env("CASESHARE_DATABASE_URL", &app.database_url)
            .env("CASESHARE_CONTENT_DIR", content_dir(app))
            .env("RUST_LOG", "error")
            .output()
            .unwrap()
    };
    let out = cli();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{text}");
    assert!(text.starts_with("2 stored item(s)"), "{text}");

    std::fs::write(content_dir(app).join(w.photo.0.to_string()), b"bit rot").unwrap();
    std::fs::remove_file(content_dir(app).join(w.video.0.to_string())).unwrap();
    let out = cli();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        !out.status.success(),
        "a failed verification fails the command: {text}"
    );
    assert!(text.contains(&w.photo.0.to_string()), "{text}");
    let report = verify().await.unwrap();
    let mut problems: Vec<(Uuid, &str)> = report
        .problems
        .iter()
        .map(|p| (p.evidence_id, p.reason.as_str()))
        .collect();
    problems.sort();
    let mut expected = vec![w.photo.0, w.video.0];
    expected.sort();
    assert_eq!(
        problems.iter().map(|p| p.0).collect::<Vec<_>>(),
        expected,
        "{}",
        report.render()
    );
    let reason = |id: Uuid| problems.iter().find(|p| p.0 == id).unwrap().1;
    assert!(
        reason(w.photo.0).contains("SHA-256"),
        "{}",
        reason(w.photo.0)
    );
    assert_eq!(reason(w.video.0), "missing from the store");
    let trail: Vec<Value> = sqlx::query_scalar(
        "SELECT details FROM audit_log WHERE action = 'content_verified' AND case_id = $1 ORDER BY id",
    )
    .bind(w.case)
    .fetch_all(&app.db)
    .await
    .unwrap();
    // The API check, the command twice, the API check again.
    assert_eq!(trail.len(), 4, "{trail:?}");
    assert_eq!(trail[0]["failed"], json!([]));
    assert_eq!(trail[3]["failed"].as_array().unwrap().len(), 2, "{trail:?}");
    finish(w.app).await;
}

// R40, R29-like: a link share can be listed and withdrawn before it expires
// (a link sent to the wrong address): downloads are refused at once, the
// package leaves the store at the next sweep, and it is audited.
#[tokio::test]
async fn r40_a_link_share_is_listed_and_can_be_revoked_before_it_expires() {
    let w = world().await;
    let app = &w.app;
    let other = app.create_org("Other PD", "lea").await;
    let listener = StatusListener::bind(app, w.a.id, &["link_share.revoked"]).await;
    let id = link_share(
        app,
        &w.a.user,
        w.case,
        body(json!({ "kind": "case" }), false),
    )
    .await;
    let done = wait_link(app, &w.a.user, &id).await;
    assert_eq!(done["status"], "complete", "{done}");
    let path = download_path(&done);

    let (s, list) = app
        .get(&format!("/v1/cases/{}/link-shares", w.case), &w.a.user)
        .await;
    assert_eq!(s, StatusCode::OK, "{list}");
    assert_eq!(list["items"][0]["id"], id.as_str(), "{list}");
    assert_all_refused(
        app,
        [
            Call::get(format!("/v1/cases/{}/link-shares", w.case), &other.user)
                .status(StatusCode::NOT_FOUND)
                .note("another org sees nothing"),
            Call::post(
                format!("/v1/link-shares/{id}/revoke"),
                &other.user,
                json!({}),
            )
            .status(StatusCode::NOT_FOUND)
            .note("nor can it revoke"),
        ],
    )
    .await;

    let (s, v) = app
        .post(
            &format!("/v1/link-shares/{id}/revoke"),
            &w.a.user,
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["status"], "revoked", "{v}");
    assert!(v.get("download_url").is_none(), "{v}");
    let res = app
        .send(app.client.get(format!("{}{path}", app.base)))
        .await;
    assert_eq!(res.status, StatusCode::GONE);
    let (s, again) = app
        .post(
            &format!("/v1/link-shares/{id}/revoke"),
            &w.a.user,
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        again["revoked_at"], v["revoked_at"],
        "revoking twice changes nothing"
    );

    let link: Uuid = id.parse().unwrap();
    let key: String = sqlx::query_scalar("SELECT package_key FROM link_shares WHERE id = $1")
        .bind(link)
        .fetch_one(&app.db)
        .await
        .unwrap();
    let package = content_dir(app).join("packages").join(key);
    assert!(package.exists());
    let store = app.app.as_ref().unwrap().store.clone();
    assert_eq!(
        caseshare::linkshare::sweep_expired(&app.db, &store)
            .await
            .unwrap(),
        1
    );
    assert!(!package.exists(), "the revoked package left the store");
    let revoked: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_log WHERE action = 'link_share_revoked' AND details->>'link_share_id' = $1",
    )
    .bind(&id)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(revoked, 1);
    let events = listener.wait_for(&["link_share.revoked"]).await;
    assert_eq!(events[0].1["link_share_id"], id.as_str());
    listener.close().await;
    finish(w.app).await;
}

// R40 (hardening): a download token is stored nowhere, only its SHA-256; the
// service recomputes the same URL for the sharer's view and the email.
#[tokio::test]
async fn r40_download_tokens_are_not_stored_only_their_hash() {
    let w = world().await;
    let app = &w.app;
    let id = link_share(
        app,
        &w.a.user,
        w.case,
        body(json!({ "kind": "case" }), false),
    )
    .await;
    let done = wait_link(app, &w.a.user, &id).await;
    assert_eq!(done["status"], "complete", "{done}");
    let url = done["download_url"].as_str().unwrap().to_string();
    let token = url.rsplit('/').next().unwrap().to_string();
    assert_eq!(token.len(), 64);
    app.drain().await;
    let mails = mails_to(app, "defense@firm.example");
    assert_eq!(mails.len(), 1);
    let page = done["page_url"].as_str().unwrap().to_string();
    assert!(page.ends_with(&format!("/links/{token}")), "{page}");
    assert!(
        readable(&mails[0]).contains(&page),
        "the email carries the landing page of the same token"
    );

    let by_hash: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM link_shares WHERE token_hash = sha256(convert_to($1, 'UTF8'))",
    )
    .bind(&token)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(by_hash, 1);
    // Neither the link share nor its jobs, outbox messages, notices or
    // audit entries hold the token.
    let holding: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (
            SELECT row_to_json(t)::text AS r FROM link_shares t
            UNION ALL SELECT row_to_json(t)::text FROM jobs t
            UNION ALL SELECT row_to_json(t)::text FROM outbox t
            UNION ALL SELECT row_to_json(t)::text FROM notices t
            UNION ALL SELECT row_to_json(t)::text FROM audit_log t) rows
          WHERE r LIKE '%' || $1 || '%'",
    )
    .bind(&token)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(holding, 0, "the token is stored nowhere");

    // The token is the credential: one character off is not found.
    let last = token.chars().last().unwrap();
    let forged = format!("{}{}", &token[..63], if last == '0' { '1' } else { '0' });
    let (s, _) = app
        .call(
            reqwest::Method::GET,
            &format!("/v1/downloads/{forged}"),
            None,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(
        package_bytes(app, &done).await.len() as i64,
        done["size_bytes"].as_i64().unwrap()
    );
    finish(w.app).await;
}

/// GET a landing page: status, headers and HTML.
async fn landing(app: &TestApp, path: &str) -> (StatusCode, reqwest::header::HeaderMap, String) {
    let res = app
        .client
        .get(format!("{}{path}", app.base))
        .send()
        .await
        .unwrap();
    let (status, headers) = (res.status(), res.headers().clone());
    (status, headers, res.text().await.unwrap())
}

// R40, #22: the emailed link opens a page for people: the sending agency,
// the case, every file with its size and the total, the expiry, the
// manifest's SHA-256 and a download button; a withdrawn, an expired and an
// unknown link get pages saying so. No script, a strict CSP, noindex.
#[tokio::test]
async fn r40_a_link_opens_a_landing_page_for_people() {
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
    let page = done["page_url"].as_str().unwrap();
    let path = &page[page.find("/links/").unwrap()..];
    let token = path.rsplit('/').next().unwrap();
    let (status, headers, html) = landing(app, path).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(csp.starts_with("default-src 'none'"), "{csp}");
    assert!(!csp.contains("script-src"), "{csp}");
    assert_eq!(headers["x-robots-tag"], "noindex, nofollow");
    assert_eq!(headers["referrer-policy"], "no-referrer");
    assert!(!html.contains("<script"), "no script");
    assert!(html.contains(r#"<html lang="en">"#));
    assert!(html.contains("Alpha PD sent you a case package"), "{html}");
    assert!(
        html.contains(&format!("href=\"/v1/downloads/{token}\"")),
        "{html}"
    );
    assert!(html.contains(done["manifest_sha256"].as_str().unwrap()));
    // Every file of the manifest, with its size.
    let bytes = package_bytes(app, &done).await;
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
    let manifest: Value = serde_json::from_reader(zip.by_name("manifest.json").unwrap()).unwrap();
    let files = manifest["files"].as_array().unwrap();
    assert!(!files.is_empty());
    for f in files {
        let path = f["path"].as_str().unwrap();
        let escaped = path
            .replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;");
        assert!(
            html.contains(&format!("<td>{escaped}</td>")),
            "{path} listed: {html}"
        );
    }
    assert!(html.contains(&format!("{} file", files.len())), "{html}");
    // The stylesheet is the only thing the page loads.
    let (s, h, css) = landing(app, "/links/assets/style.css").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(h["content-type"], "text/css; charset=utf-8");
    assert!(css.contains(".download"));

    // Unknown: 404, a page, not JSON.
    let (s, _, html) = landing(app, &format!("/links/{}", "0".repeat(64))).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(html.contains("No package at this link"), "{html}");

    // Expired: 410, says until when.
    sqlx::query(
        "UPDATE link_shares SET expires_at = now() - interval '1 hour' WHERE id = $1::uuid",
    )
    .bind(&id)
    .execute(&app.db)
    .await
    .unwrap();
    let (s, _, html) = landing(app, path).await;
    assert_eq!(s, StatusCode::GONE);
    assert!(html.contains("This link has expired"), "{html}");
    assert!(!html.contains("/v1/downloads/"), "no download button");

    // Withdrawn: 410.
    sqlx::query(
        "UPDATE link_shares SET expires_at = now() + interval '1 hour' WHERE id = $1::uuid",
    )
    .bind(&id)
    .execute(&app.db)
    .await
    .unwrap();
    let (s, _) = app
        .post(
            &format!("/v1/link-shares/{id}/revoke"),
            &w.a.user,
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _, html) = landing(app, path).await;
    assert_eq!(s, StatusCode::GONE);
    assert!(html.contains("This link was withdrawn"), "{html}");
    finish(w.app).await;
}
