//! Evidence files travel (R52, R53): reading a file by every principal
//! (owner, external receiver with and without copy/download, imported copy,
//! stranger) with GET, HEAD and Range, on the local and the S3 store; imports
//! carry the files, checked against the sender's SHA-256 (a tampered file is
//! `content_mismatch`, never passed off as good); the copy keeps its files
//! after revocation and after the sender's file is gone; every read audited.

use crate::common::*;
use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

/// A file of `n` bytes that differ along their length.
fn bytes(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 31 % 251) as u8).collect()
}

/// `GET` (or `HEAD`) the file of `evidence` as `token`, with `range`.
async fn read(
    app: &TestApp,
    method: reqwest::Method,
    token: &str,
    evidence: Uuid,
    range: Option<&str>,
) -> Response {
    let mut req = app
        .client
        .request(
            method,
            format!("{}/v1/evidence/{evidence}/content", app.base),
        )
        .bearer_auth(token);
    if let Some(r) = range {
        req = req.header("range", r);
    }
    app.send(req).await
}

fn header<'a>(res: &'a Response, name: &str) -> &'a str {
    res.headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

fn error_code(res: &Response) -> Value {
    serde_json::from_slice::<Value>(&res.body).unwrap_or(Value::Null)["error"].clone()
}

/// The imported copy of Beta (auto-import) and its copy of the item titled `title`.
async fn copy_of(app: &TestApp, token: &str, title: &str) -> (Uuid, Uuid) {
    let (_, received) = app.get("/v1/received", token).await;
    let copy: Uuid = received["items"][0]["imported_case_id"]
        .as_str()
        .expect("imported")
        .parse()
        .unwrap();
    let (s, items) = app.get(&format!("/v1/cases/{copy}/evidence"), token).await;
    assert_eq!(s, StatusCode::OK, "{items}");
    let item = items["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["title"] == title)
        .unwrap_or_else(|| panic!("no copy of {title}: {items}"));
    (copy, item["id"].as_str().unwrap().parse().unwrap())
}

/// R52, R53 on one store: the owner reads whole, by range and by HEAD; a
/// Justice partner with copy/download reads the external item, gets it
/// imported with its file and reads its copy; a stranger gets 404 for both;
/// revocation ends the external read but not the copy, and the copy
/// outlives the sender's own file (local store).
async fn files_travel(s3: bool) {
    let app = spawn_with(Options {
        s3,
        ..Default::default()
    })
    .await;
    let (a, b, case) =
        partners_with_case(&app, ("Justice", "justice"), policy(true), "Bodycam").await;
    let c = app.create_org("Gamma PD", "lea").await;
    let video = bytes(300_000);
    let (item, _) = app
        .add_evidence(
            &a.user,
            case,
            json!({ "title": "Body cam: 12/01 ünit 7", "content": { "sha256": sha(&video) } }),
        )
        .await;
    put_file(&app, &a.user, item, video.clone(), "video/mp4").await;

    // The owner: whole, HEAD, a range, a suffix range, outside the file.
    let whole = read(&app, reqwest::Method::GET, &a.user, item, None).await;
    assert_eq!(whole.status, StatusCode::OK);
    assert_eq!(whole.body, video);
    assert_eq!(header(&whole, "etag"), format!("\"{}\"", sha(&video)));
    assert_eq!(header(&whole, "content-type"), "video/mp4");
    assert_eq!(header(&whole, "accept-ranges"), "bytes");
    let disposition = header(&whole, "content-disposition");
    assert_eq!(
        disposition,
        format!("attachment; filename=\"Body cam_ 12_01 _nit 7-{item}\""),
        "a file name safe in a header and on every file system"
    );
    let head = read(&app, reqwest::Method::HEAD, &a.user, item, None).await;
    assert_eq!(head.status, StatusCode::OK);
    assert!(head.body.is_empty());
    assert_eq!(header(&head, "content-length"), "300000");
    assert_eq!(header(&head, "etag"), header(&whole, "etag"));
    let part = read(
        &app,
        reqwest::Method::GET,
        &a.user,
        item,
        Some("bytes=1000-1999"),
    )
    .await;
    assert_eq!(part.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(part.body, video[1000..2000]);
    assert_eq!(header(&part, "content-range"), "bytes 1000-1999/300000");
    let tail = read(&app, reqwest::Method::GET, &a.user, item, Some("bytes=-10")).await;
    assert_eq!(tail.body, video[video.len() - 10..]);
    let outside = read(
        &app,
        reqwest::Method::GET,
        &a.user,
        item,
        Some("bytes=300000-"),
    )
    .await;
    assert_eq!(outside.status, StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(header(&outside, "content-range"), "bytes */300000");

    // Shared with the Justice partner (auto-import on), naming its user.
    let share = share_naming_user(&app, &a, case, &b, json!({ "kind": "case" })).await;
    let external = read(
        &app,
        reqwest::Method::GET,
        &b.user,
        item,
        Some("bytes=0-99"),
    )
    .await;
    assert_eq!(
        external.status,
        StatusCode::PARTIAL_CONTENT,
        "R52: copy/download allows it"
    );
    assert_eq!(external.body, video[..100]);
    let (copy, copied) = copy_of(&app, &b.user, "Body cam: 12/01 ünit 7").await;
    let from_copy = read(&app, reqwest::Method::GET, &b.user, copied, None).await;
    assert_eq!(
        from_copy.status,
        StatusCode::OK,
        "R53: the import carried the file"
    );
    assert_eq!(from_copy.body, video);
    assert_eq!(header(&from_copy, "etag"), header(&whole, "etag"));
    assert_eq!(header(&from_copy, "content-type"), "video/mp4");
    let (_, details) = app
        .get(&format!("/v1/cases/{copy}/import-details"), &b.user)
        .await;
    assert_eq!(
        details["files"],
        json!({ "pending": 0, "match": 1, "mismatch": 0, "missing": 0 }),
        "{details}"
    );

    // R53, R40: a link share of the imported copy packages the copy's file.
    let (s, link) = app
        .post(
            &format!("/v1/cases/{copy}/link-shares"),
            &b.admin,
            json!({ "scope": { "kind": "case" }, "recipient": { "user_id": b.user_id },
                    "package": "zip", "duration_hours": 24 }),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{link}");
    let done = eventually("the link share to be built", || async {
        let (_, v) = app
            .get(
                &format!("/v1/link-shares/{}", link["id"].as_str().unwrap()),
                &b.admin,
            )
            .await;
        (v["status"] != "processing").then_some(v)
    })
    .await;
    assert_eq!(done["status"], "complete", "{done}");
    let url = url::Url::parse(done["download_url"].as_str().unwrap()).unwrap();
    let package = app
        .send(app.client.get(format!("{}{}", app.base, url.path())))
        .await;
    assert_eq!(package.status, StatusCode::OK);
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(package.body)).unwrap();
    let name = zip
        .file_names()
        .find(|n| n.starts_with("evidence/") && n.ends_with(&copied.to_string()))
        .expect("the copy's file in the package")
        .to_string();
    let mut packaged = Vec::new();
    std::io::Read::read_to_end(&mut zip.by_name(&name).unwrap(), &mut packaged).unwrap();
    assert!(packaged == video, "the packaged file is the copied bytes");
    // R54: and the custody receipt of the collaboration it came from.
    let share_id = share["id"].as_str().unwrap();
    let mut receipt = Vec::new();
    std::io::Read::read_to_end(
        &mut zip
            .by_name(&format!("receipts/{share_id}.json"))
            .expect("the receipt in the package"),
        &mut receipt,
    )
    .unwrap();
    let (_, served) = app
        .get(&format!("/v1/shares/{share_id}/receipt"), &b.user)
        .await;
    assert_eq!(serde_json::from_slice::<Value>(&receipt).unwrap(), served);

    // A stranger sees neither (404, like a missing item).
    for id in [item, copied, Uuid::new_v4()] {
        for method in [reqwest::Method::GET, reqwest::Method::HEAD] {
            let res = read(&app, method.clone(), &c.user, id, None).await;
            assert_eq!(res.status, StatusCode::NOT_FOUND, "{method} {id}");
        }
    }

    // R50, R52: each read audited with actor, item and range; the
    // receiver's read of the external item on the owner's case. HEAD reads
    // nothing and is not audited.
    let reads: Vec<(Uuid, Option<Uuid>, Option<Uuid>, Value)> = sqlx::query_as(
        "SELECT case_id, actor_user_id, evidence_id, details FROM audit_log
          WHERE action = 'content_read' ORDER BY id",
    )
    .fetch_all(&app.db)
    .await
    .unwrap();
    let reads: Vec<(Uuid, Option<Uuid>, Option<Uuid>, Value)> = reads
        .into_iter()
        .map(|(c, a, e, d)| (c, a, e, d["range"].clone()))
        .collect();
    assert_eq!(
        reads,
        vec![
            (case, Some(a.user_id), Some(item), Value::Null),
            (case, Some(a.user_id), Some(item), json!("1000-1999")),
            (case, Some(a.user_id), Some(item), json!("299990-299999")),
            (case, Some(b.user_id), Some(item), json!("0-99")),
            (copy, Some(b.user_id), Some(copied), Value::Null),
        ]
    );

    // Revocation ends the external read (404); the copy keeps its file (R30, R53).
    let (s, v) = app
        .post(
            &format!("/v1/shares/{}/revoke", share["id"].as_str().unwrap()),
            &a.user,
            json!({}),
        )
        .await;
    assert!(s.is_success(), "{v}");
    app.drain().await;
    let gone = read(&app, reqwest::Method::GET, &b.user, item, None).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    let kept = read(&app, reqwest::Method::GET, &b.user, copied, None).await;
    assert_eq!((kept.status, kept.body == video), (StatusCode::OK, true));
    if !s3 {
        // The sender's own file gone: the copy's is its own.
        std::fs::remove_file(content_dir(&app).join(item.to_string())).unwrap();
        let kept = read(&app, reqwest::Method::GET, &b.user, copied, None).await;
        assert_eq!((kept.status, kept.body == video), (StatusCode::OK, true));
        let lost = read(&app, reqwest::Method::GET, &a.user, item, None).await;
        assert_eq!(lost.status, StatusCode::NOT_FOUND);
    }
    app.stop().await;
}

// R52, R53 on the local store.
#[tokio::test]
async fn r52_r53_files_are_read_imported_and_kept_local_store() {
    files_travel(false).await;
}

// R52, R53 on the S3 store.
#[tokio::test]
async fn r52_r53_files_are_read_imported_and_kept_s3_store() {
    files_travel(true).await;
}

// R52, R7: a receiver without copy/download sees the item but not its file
// (403 policy_forbids), and an item outside the share is 404 even with it.
#[tokio::test]
async fn r52_external_reads_need_copy_download_and_a_covering_share() {
    let app = spawn_app().await;
    let mut strict = policy(true);
    set(&mut strict, "permissions.copy_download", false);
    let (a, b, case) = partners_with_case(&app, BETA_PD, strict, "Robbery").await;
    let file = bytes(1000);
    let (shared, _) = app
        .add_evidence(
            &a.user,
            case,
            json!({ "title": "Shared", "content": { "sha256": sha(&file) } }),
        )
        .await;
    let (unshared, _) = app
        .add_evidence(
            &a.user,
            case,
            json!({ "title": "Kept", "content": { "sha256": sha(&file) } }),
        )
        .await;
    put_file(&app, &a.user, shared, file.clone(), "image/jpeg").await;
    put_file(&app, &a.user, unshared, file.clone(), "image/jpeg").await;
    share_naming_user(
        &app,
        &a,
        case,
        &b,
        json!({ "kind": "evidence", "evidence_ids": [shared] }),
    )
    .await;
    // The receiver sees the item (the view lists it) but may not read the file.
    let (s, items) = app
        .get(&format!("/v1/cases/{case}/evidence"), &b.user)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(items["items"].as_array().unwrap().len(), 1, "{items}");
    for method in [reqwest::Method::GET, reqwest::Method::HEAD] {
        let res = read(&app, method.clone(), &b.user, shared, None).await;
        assert_eq!(res.status, StatusCode::FORBIDDEN, "{method}");
        if method == reqwest::Method::GET {
            assert_eq!(error_code(&res), "policy_forbids");
        }
        let res = read(&app, method.clone(), &b.user, unshared, None).await;
        assert_eq!(res.status, StatusCode::NOT_FOUND, "{method}: not shared");
    }
    // Nothing was read, nothing audited as read.
    assert_eq!(
        app.count("SELECT count(*) FROM audit_log WHERE action = 'content_read'")
            .await,
        0
    );
    // Beta's admin does not see a collaboration that names only its user? It
    // does (an admin sees its org's collaborations, R42): the same refusal.
    let res = read(&app, reqwest::Method::GET, &b.admin, shared, None).await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    app.stop().await;
}

// R53: an item whose stored bytes do not hash to the SHA-256 the sender
// recorded is imported as content_mismatch: counted in the import details,
// no file kept, a read answers 409 naming it. An item whose file arrives
// after the import gets it then.
#[tokio::test]
async fn r53_tampered_bytes_are_imported_as_content_mismatch() {
    let app = spawn_app().await;
    let (a, b, case) =
        partners_with_case(&app, ("Justice", "justice"), policy(true), "Fraud").await;
    let good = bytes(5000);
    let (tampered, _) = app
        .add_evidence(
            &a.user,
            case,
            json!({ "title": "Ledger", "content": { "sha256": sha(&good) } }),
        )
        .await;
    put_file(&app, &a.user, tampered, good.clone(), "application/pdf").await;
    // Someone with access to the store changes the file behind the service.
    let mut bad = good.clone();
    bad[4321] ^= 1;
    std::fs::write(content_dir(&app).join(tampered.to_string()), &bad).unwrap();
    let later = bytes(777);
    let (late, _) = app
        .add_evidence(
            &a.user,
            case,
            json!({ "title": "Late", "content": { "sha256": sha(&later) } }),
        )
        .await;
    share_naming_user(&app, &a, case, &b, json!({ "kind": "case" })).await;
    let (copy, copied) = copy_of(&app, &b.user, "Ledger").await;
    let state: String =
        sqlx::query_scalar("SELECT content_state::text FROM evidence WHERE id = $1")
            .bind(copied)
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(state, "content_mismatch");
    let res = read(&app, reqwest::Method::GET, &b.user, copied, None).await;
    assert_eq!(res.status, StatusCode::CONFLICT);
    assert!(
        String::from_utf8_lossy(&res.body).contains("content_mismatch"),
        "{}",
        String::from_utf8_lossy(&res.body)
    );
    let (_, details) = app
        .get(&format!("/v1/cases/{copy}/import-details"), &b.user)
        .await;
    assert_eq!(
        details["files"],
        json!({ "pending": 0, "match": 0, "mismatch": 1, "missing": 0 }),
        "{details}"
    );
    // No object was stored for the copy.
    assert!(!content_dir(&app).join(copied.to_string()).exists());

    // The late item was copied without a file; its upload brings it.
    let (_, late_copy) = copy_of(&app, &b.user, "Late").await;
    let res = read(&app, reqwest::Method::GET, &b.user, late_copy, None).await;
    assert_eq!(res.status, StatusCode::NOT_FOUND, "no file yet");
    put_file(&app, &a.user, late, later.clone(), "text/plain").await;
    app.drain().await;
    let res = read(&app, reqwest::Method::GET, &b.user, late_copy, None).await;
    assert_eq!((res.status, res.body == later), (StatusCode::OK, true));
    let (_, details) = app
        .get(&format!("/v1/cases/{copy}/import-details"), &b.user)
        .await;
    assert_eq!(
        details["files"],
        json!({ "pending": 0, "match": 1, "mismatch": 1, "missing": 0 }),
        "{details}"
    );
    app.stop().await;
}

// R55: internal shares have scopes. A user given a folder sees that
// folder's items (and its subfolders', and evidence added there later) and
// reads their files, nothing else of the case; a group given a subset sees
// that subset; a whole-case internal share, the owner and an admin see
// everything.
#[tokio::test]
async fn r55_internal_shares_give_their_scope_only() {
    let app = spawn_app().await;
    let a = app.create_org("Alpha PD", "lea").await;
    app.setup(&a, policy(true), false).await;
    let case = app.create_case(&a.user, "Scoped").await;
    let file = bytes(64);
    let with_file = |title: &str| json!({ "title": title, "content": { "sha256": sha(&file) } });
    let tree = Tree::ladder(
        &app,
        &a.user,
        case,
        ["Scene", "Cam", "Other"],
        ["Photo", "Clip", "Memo", "Root"],
        with_file,
    )
    .await;
    for id in tree.items(["Photo", "Clip", "Memo", "Root"]) {
        put_file(&app, &a.user, id, file.clone(), "image/png").await;
    }
    let scene = tree.folder("Scene");
    let [photo, clip, memo, root] = tree.items(["Photo", "Clip", "Memo", "Root"]);
    let (folder_user, folder_token) = app.create_user(a.id, "Folder Reader", "user").await;
    let (group_user, group_token) = app.create_user(a.id, "Group Reader", "user").await;
    let (whole_user, whole_token) = app.create_user(a.id, "Whole Reader", "user").await;
    let group = create_group(&app, a.id, "Subset readers", &[group_user]).await;
    let internal = |scope: Value, recipients: Value| json!({ "scope": scope, "target": { "kind": "internal", "recipients": recipients } });
    app.share_and_settle(
        &a.user,
        case,
        internal(
            json!({ "kind": "folders", "folder_ids": [scene] }),
            json!([{ "user_id": folder_user }]),
        ),
    )
    .await;
    app.share_and_settle(
        &a.user,
        case,
        internal(
            json!({ "kind": "evidence", "evidence_ids": [root, memo] }),
            json!([{ "group_id": group }]),
        ),
    )
    .await;
    app.share_and_settle(
        &a.user,
        case,
        internal(
            json!({ "kind": "case" }),
            json!([{ "user_id": whole_user }]),
        ),
    )
    .await;
    let all = vec!["Clip", "Memo", "Photo", "Root"];
    assert_eq!(
        evidence_titles(&app, &folder_token, case).await,
        vec!["Clip", "Photo"]
    );
    assert_eq!(
        evidence_titles(&app, &group_token, case).await,
        vec!["Memo", "Root"]
    );
    assert_eq!(evidence_titles(&app, &whole_token, case).await, all);
    assert_eq!(evidence_titles(&app, &a.user, case).await, all);
    assert_eq!(evidence_titles(&app, &a.admin, case).await, all);
    // Files follow the same scope (R52 with R55).
    for (token, id, want) in [
        (&folder_token, photo, StatusCode::OK),
        (&folder_token, clip, StatusCode::OK),
        (&folder_token, memo, StatusCode::NOT_FOUND),
        (&folder_token, root, StatusCode::NOT_FOUND),
        (&group_token, root, StatusCode::OK),
        (&group_token, photo, StatusCode::NOT_FOUND),
        (&whole_token, memo, StatusCode::OK),
    ] {
        let res = read(&app, reqwest::Method::GET, token, id, None).await;
        assert_eq!(res.status, want, "{id}");
    }
    // New evidence in the shared folder's subfolder is seen at once (R22).
    let mut later = with_file("Later");
    later["folder_id"] = json!(tree.folder("Cam"));
    let (later, _) = app.add_evidence(&a.user, case, later).await;
    put_file(&app, &a.user, later, file.clone(), "image/png").await;
    assert_eq!(
        evidence_titles(&app, &folder_token, case).await,
        vec!["Clip", "Later", "Photo"]
    );
    // Given the whole case as well, the folder reader sees everything.
    app.share_and_settle(
        &a.user,
        case,
        internal(
            json!({ "kind": "case" }),
            json!([{ "user_id": folder_user }]),
        ),
    )
    .await;
    assert_eq!(evidence_titles(&app, &folder_token, case).await.len(), 5);
    app.stop().await;
}
