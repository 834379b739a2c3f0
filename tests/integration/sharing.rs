//! Sharing: policy filtering (R6–R12), scope (R13), internal and partner
//! targets (R14), asynchronous status (R15), access list (R16), extending a
//! collaboration (R17).

use crate::common::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use uuid::Uuid;

/// Alpha (LEA) owns a case and is partnered with Beta (LEA, no auto-import).
async fn world(default_policy: Value) -> World {
    World::spawn(BETA_PD, default_policy, "Burglary on Main St").await
}

// R12, R43, R50: the same-partner case with a Justice partner that imports
// and syncs automatically. A strict share of a folder, the policy loosened,
// one more item shared loosely, then new evidence lands in the strict
// folder: every item under the strict share stays strict in the external
// view, the imported copy and what auto-sync applies; no email and no audit
// snapshot carries a field value; the automatic actions name their job.
#[tokio::test]
async fn r12_r43_r50_strict_items_stay_strict_through_auto_sync_emails_and_audit() {
    let mut strict = policy(true);
    set(&mut strict, "evidence_terms.gps", false);
    set(&mut strict, "evidence_terms.evidence_notes", false);
    let w = World::spawn(("County DA", "justice"), strict, "Burglary").await;
    let (s, v) = w
        .app
        .put(
            "/v1/sharing/settings",
            &w.b.admin,
            json!({ "auto_sync": true }),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let folder = w.app.create_folder(&w.a.user, w.case, "Strict", None).await;
    let mut first = full_evidence("First clip");
    first["folder_id"] = json!(folder);
    w.app.add_evidence(&w.a.user, w.case, first).await;
    w.app.drain().await;
    w.app
        .share_and_settle(
            &w.a.user,
            w.case,
            to_partner_naming(
                w.b.id,
                json!({ "kind": "folders", "folder_ids": [folder] }),
                json!([{ "user_id": w.b.user_id }]),
            ),
        )
        .await;
    let (_, setup) = w.app.get("/v1/sharing/setup", &w.a.admin).await;
    w.app
        .put(
            &format!(
                "/v1/policies/{}",
                setup["default_policy_id"].as_str().unwrap()
            ),
            &w.a.admin,
            policy(true),
        )
        .await;
    let (loose, _) = w
        .app
        .add_evidence(&w.a.user, w.case, full_evidence("Loose clip"))
        .await;
    w.app.drain().await;
    w.app
        .share_and_settle(
            &w.a.user,
            w.case,
            to_partner_naming(
                w.b.id,
                json!({ "kind": "evidence", "evidence_ids": [loose] }),
                json!([{ "user_id": w.b.user_id }]),
            ),
        )
        .await;
    // New evidence in the strict folder reaches the partner through the
    // strict share, and auto-sync applies it to the imported copy.
    let mut later = full_evidence("Later clip");
    later["folder_id"] = json!(folder);
    w.app.add_evidence(&w.a.user, w.case, later).await;
    w.app.drain().await;

    let (_, received) = w.app.get("/v1/received", &w.b.user).await;
    let imported = received["items"][0]["imported_case_id"]
        .as_str()
        .expect("auto-imported")
        .to_string();
    for path in [
        format!("/v1/cases/{}/evidence", w.case),
        format!("/v1/cases/{imported}/evidence"),
    ] {
        let (_, v) = w.app.get(&path, &w.b.user).await;
        let items = v["items"].as_array().unwrap();
        let titles: Vec<&str> = items.iter().map(|i| i["title"].as_str().unwrap()).collect();
        assert_eq!(items.len(), 3, "{path}: {titles:?}");
        for item in items {
            let strict_item = item["title"] != "Loose clip";
            assert_eq!(item.get("gps").is_none(), strict_item, "{path}: {item}");
            assert_eq!(item.get("notes").is_none(), strict_item, "{path}: {item}");
        }
    }
    // No field value in any email or in the audit snapshot.
    for mail in sink(&w.app).mails() {
        let text = readable(&mail);
        assert!(
            !text.contains("47.6062") && !text.contains("evidence-note-secret"),
            "{text}"
        );
    }
    let (_, audit) = w
        .app
        .get(&format!("/v1/cases/{}/audit", w.case), &w.b.user)
        .await;
    assert!(audit["sender_snapshot"].is_object(), "{audit}");
    let text = audit.to_string();
    assert!(!text.contains("47.6062") && !text.contains("evidence-note-secret"));
    // R50: the automatic actions are audited with their job as actor.
    let by_jobs = w
        .app
        .count(
            "SELECT count(DISTINCT action) FROM audit_log
             WHERE details -> 'actor' ? 'job' AND actor_user_id IS NULL
               AND action IN ('share_complete', 'import', 'auto_share', 'auto_sync')",
        )
        .await;
    assert_eq!(by_jobs, 4);
    w.app.stop().await;
}

// R12, R43: a later, looser share to the same partner never widens what the
// earlier items show: each item keeps the snapshot of the share that granted
// it (external view and imported copy); the governing policy is the strictest.
#[tokio::test]
async fn r12_r43_a_looser_later_share_to_the_same_partner_leaves_earlier_items_strict() {
    let mut strict = policy(true);
    set(&mut strict, "evidence_terms.gps", false);
    let w = world(strict).await;
    let (first_item, _) = w
        .app
        .add_evidence(&w.a.user, w.case, full_evidence("First clip"))
        .await;
    let first = w
        .app
        .share_and_settle(
            &w.a.user,
            w.case,
            to_partner(
                w.b.id,
                json!({ "kind": "evidence", "evidence_ids": [first_item] }),
            ),
        )
        .await;

    // The admin loosens the policy, then one more item is shared.
    let (_, setup) = w.app.get("/v1/sharing/setup", &w.a.admin).await;
    let (s, _) = w
        .app
        .put(
            &format!(
                "/v1/policies/{}",
                setup["default_policy_id"].as_str().unwrap()
            ),
            &w.a.admin,
            policy(true),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (second_item, _) = w
        .app
        .add_evidence(&w.a.user, w.case, full_evidence("Second clip"))
        .await;
    let second = w
        .app
        .share_and_settle(
            &w.a.user,
            w.case,
            to_partner(
                w.b.id,
                json!({ "kind": "evidence", "evidence_ids": [second_item] }),
            ),
        )
        .await;
    assert_eq!(second["policy"]["evidence_terms"]["gps"], true);

    let gps_of = |items: &Value, title: &str| {
        let item = items["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["title"] == title)
            .unwrap_or_else(|| panic!("{title} missing in {items}"))
            .clone();
        item.get("gps").cloned()
    };
    let (_, seen) = w
        .app
        .get(&format!("/v1/cases/{}/evidence", w.case), &w.b.admin)
        .await;
    assert_eq!(
        gps_of(&seen, "First clip"),
        None,
        "the first item stays strict"
    );
    assert!(
        gps_of(&seen, "Second clip").is_some(),
        "the second item has its own snapshot"
    );
    let (_, details) = w
        .app
        .get(&format!("/v1/cases/{}/import-details", w.case), &w.b.admin)
        .await;
    assert_eq!(
        details["sharing_policy"]["evidence_terms"]["gps"], false,
        "the governing (case-level) policy is the strictest live snapshot"
    );

    // The imported copy keeps each item's snapshot too.
    let (_, received) = w.app.get("/v1/received", &w.b.admin).await;
    let received_id = received["items"][0]["id"].as_str().unwrap().to_string();
    let (s, v) = w
        .app
        .post(
            &format!("/v1/received/{received_id}/import"),
            &w.b.admin,
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    w.app
        .wait_job(v["job_id"].as_str().unwrap().parse().unwrap())
        .await;
    let (_, received) = w.app.get("/v1/received", &w.b.admin).await;
    let imported = received["items"][0]["imported_case_id"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, copy) = w
        .app
        .get(&format!("/v1/cases/{imported}/evidence"), &w.b.admin)
        .await;
    assert_eq!(gps_of(&copy, "First clip"), None, "{copy}");
    assert!(gps_of(&copy, "Second clip").is_some(), "{copy}");

    // Revoking the strict share takes back only its item; the governing
    // policy stays the strictest the collaboration ever had (R51: a
    // revocation never widens the copy).
    let (s, v) = w
        .app
        .post(
            &format!("/v1/shares/{}/revoke", first["id"].as_str().unwrap()),
            &w.a.user,
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    w.app.drain().await;
    let (_, seen) = w
        .app
        .get(&format!("/v1/cases/{}/evidence", w.case), &w.b.admin)
        .await;
    let titles: Vec<&str> = seen["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["title"].as_str().unwrap())
        .collect();
    assert_eq!(titles, ["Second clip"], "{seen}");
    let (_, details) = w
        .app
        .get(&format!("/v1/cases/{}/import-details", w.case), &w.b.admin)
        .await;
    assert_eq!(
        details["sharing_policy"]["evidence_terms"]["gps"], false,
        "{details}"
    );
    w.app.stop().await;
}

// R47: a partner's user can be named by badge ID; the badge is resolved to
// that user when the share is accepted (a forged user id is overwritten), the
// user is on the access list and is emailed; an unknown badge is refused.
#[tokio::test]
async fn r47_recipients_can_be_named_by_badge_id() {
    let w = world(policy(true)).await;
    let (s, officer) = w
        .app
        .post(
            &format!("/v1/orgs/{}/users", w.b.id),
            SERVICE_TOKEN,
            json!({ "name": "Badge Officer", "email": "officer@beta.example", "badge_id": "B-1234", "role": "user" }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{officer}");
    let officer_id = officer["id"].as_str().unwrap();
    let shares = format!("/v1/cases/{}/shares", w.case);

    let before = w.app.count("SELECT count(*) FROM shares").await;
    assert_refused(
        &w.app,
        Method::POST,
        &shares,
        &w.a.user,
        Some(json!({ "scope": { "kind": "case" },
                     "target": { "kind": "partner", "org_id": w.b.id, "recipients": [{ "badge_id": "NO-SUCH" }] } })),
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation",
    )
    .await;
    assert_eq!(w.app.count("SELECT count(*) FROM shares").await, before);

    let share = w
        .app
        .share_and_settle(
            &w.a.user,
            w.case,
            json!({ "scope": { "kind": "case" },
                    "target": { "kind": "partner", "org_id": w.b.id,
                                "recipients": [{ "badge_id": "B-1234", "user_id": w.a.user_id }] } }),
        )
        .await;
    let named = &share["target"]["recipients"][0];
    assert_eq!(named["badge_id"], "B-1234", "{share}");
    assert_eq!(
        named["user_id"], officer_id,
        "the badge's user, not the one sent"
    );
    let (_, access) = w
        .app
        .get(&format!("/v1/cases/{}/access", w.case), &w.a.user)
        .await;
    assert!(
        access["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "user" && e["id"] == officer_id),
        "{access}"
    );
    eventually("the badge's user to be emailed", || async {
        (!mails_to(&w.app, "officer@beta.example").is_empty()).then_some(())
    })
    .await;
    assert_eq!(mails_to(&w.app, "officer@beta.example").len(), 1);
    w.app.stop().await;
}

// R6, R8, R9, R10: what the policy excludes is absent; the always-included fields are there.
#[tokio::test]
async fn r6_r9_r10_external_view_contains_exactly_what_the_policy_allows() {
    let mut p = policy(true);
    for term in [
        "gps",
        "community_request_pii",
        "transcript",
        "custom_metadata",
        "clips_markers",
    ] {
        set(&mut p, &format!("evidence_terms.{term}"), false);
    }
    set(&mut p, "case_terms.case_notes", false);
    let w = world(p).await;
    let (ev, _) = w
        .app
        .add_evidence(&w.a.user, w.case, full_evidence("Front door"))
        .await;
    w.app
        .share_and_settle(
            &w.a.user,
            w.case,
            to_partner(w.b.id, json!({ "kind": "case" })),
        )
        .await;

    let (s, list) = w
        .app
        .get(&format!("/v1/cases/{}/evidence", w.case), &w.b.admin)
        .await;
    assert_eq!(s, StatusCode::OK, "{list}");
    let item = &list["items"][0];
    assert_eq!(item["id"], ev.to_string());
    // R6: always included; categories arrive as tags.
    assert_eq!(item["title"], "Front door");
    assert_eq!(item["description"], "front door camera");
    assert_eq!(item["recorded_at"], "2026-11-01T10:00:00Z");
    assert_eq!(item["exif"]["make"], "Axon");
    let tags: Vec<&str> = item["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert!(
        tags.contains(&"video") && tags.contains(&"burglary"),
        "{tags:?}"
    );
    assert!(
        tags.contains(&"evidence-tag-secret"),
        "evidence tags are allowed here"
    );
    assert!(item.get("categories").is_none());
    // R9: excluded evidence terms are absent (not null).
    for key in ["gps", "transcript", "custom_metadata", "clips", "markers"] {
        assert!(item.get(key).is_none(), "{key} leaked: {item}");
    }
    assert!(item["community_request"].get("pii").is_none());
    assert_eq!(item["community_request"]["caption"], "caption text");
    assert_eq!(item["notes"][0], "evidence-note-secret");
    assert_eq!(item["device_metadata"]["serial"], "device-secret");
    // R10: no excluded value anywhere in the serialized answer.
    let text = list.to_string();
    for secret in [
        "47.6062",
        "transcript-secret",
        "custom-secret",
        "clip-secret",
        "marker-secret",
        "Pii Name-secret",
        "pii@secret.example",
    ] {
        assert!(!text.contains(secret), "{secret} leaked");
    }
    // R8: case notes excluded, case tags included.
    let (_, case) = w
        .app
        .get(&format!("/v1/cases/{}", w.case), &w.b.admin)
        .await;
    assert!(case.get("notes").is_none(), "{case}");
    assert_eq!(case["tags"][0], "case-tag");
    assert_eq!(case["title"], "Burglary on Main St");
    // The owner still sees everything.
    let (_, own) = w
        .app
        .get(&format!("/v1/cases/{}/evidence", w.case), &w.a.user)
        .await;
    assert_eq!(own["items"][0]["transcript"], "transcript-secret words");
    w.app.stop().await;
}

// R7: without copy_download there is no download link; R11: a redacted caption stays redacted.
#[tokio::test]
async fn r7_r11_no_download_without_copy_and_redacted_caption() {
    let mut p = policy(true);
    set(&mut p, "permissions.copy_download", false);
    let w = world(p).await;
    let (ev, _) = w
        .app
        .add_evidence(&w.a.user, w.case, full_evidence("Tip video"))
        .await;
    let (other, _) = w
        .app
        .add_evidence(&w.a.user, w.case, full_evidence("Other video"))
        .await;
    let mut body = to_partner(w.b.id, json!({ "kind": "case" }));
    body["redact_caption_evidence_ids"] = json!([ev]);
    w.app.share_and_settle(&w.a.user, w.case, body).await;
    let (_, list) = w
        .app
        .get(&format!("/v1/cases/{}/evidence", w.case), &w.b.admin)
        .await;
    let find = |id: Uuid| {
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["id"] == id.to_string())
            .unwrap()
            .clone()
    };
    let redacted = find(ev);
    assert_ne!(redacted["community_request"]["caption"], "caption text");
    assert!(redacted["community_request"]["caption"]
        .as_str()
        .unwrap()
        .contains("redacted"));
    assert_eq!(find(other)["community_request"]["caption"], "caption text");
    assert!(
        redacted["content"].get("uri").is_none(),
        "no download without copy_download"
    );
    assert_eq!(redacted["content"]["sha256"], "a".repeat(64));
    w.app.stop().await;
}

// R7: the sender audit trail travels only when allowed.
#[tokio::test]
async fn r7_sender_audit_trail_snapshot_only_when_allowed() {
    let mut without = policy(true);
    set(&mut without, "permissions.sender_audit_trail", false);
    let w = world(without).await;
    let c = w.app.create_org("Gamma DA", "lea").await;
    w.app.partner(w.a.id, c.id).await;
    let (s, allowed) = w.app.post("/v1/policies", &w.a.admin, policy(true)).await;
    assert_eq!(s, StatusCode::CREATED);
    w.app
        .put(
            &format!("/v1/partners/{}/policy", c.id),
            &w.a.admin,
            json!({ "policy_id": allowed["id"] }),
        )
        .await;
    w.app
        .add_evidence(&w.a.user, w.case, json!({ "title": "x" }))
        .await;
    w.app
        .share_and_settle(
            &w.a.user,
            w.case,
            to_partner(w.b.id, json!({ "kind": "case" })),
        )
        .await;
    w.app
        .share_and_settle(
            &w.a.user,
            w.case,
            to_partner(c.id, json!({ "kind": "case" })),
        )
        .await;
    let (_, audit_b) = w
        .app
        .get(&format!("/v1/cases/{}/audit", w.case), &w.b.admin)
        .await;
    assert!(audit_b["sender_snapshot"].is_null(), "{audit_b}");
    let (_, audit_c) = w
        .app
        .get(&format!("/v1/cases/{}/audit", w.case), &c.admin)
        .await;
    let items = audit_c["sender_snapshot"]["items"]
        .as_array()
        .expect("snapshot sent");
    let actions: Vec<&str> = items
        .iter()
        .map(|i| i["action"].as_str().unwrap())
        .collect();
    assert!(
        actions.contains(&"case_created")
            && actions.contains(&"evidence_added")
            && actions.contains(&"share"),
        "{actions:?}"
    );
    w.app.stop().await;
}

// R49: the sender audit snapshot covers only what was shared: no entries about
// evidence outside the share's scope, none about other partners' shares.
#[tokio::test]
async fn r49_sender_audit_snapshot_is_limited_to_the_shared_scope() {
    let w = world(policy(true)).await;
    let c = w.app.create_org("Gamma DA", "lea").await;
    w.app.partner(w.a.id, c.id).await;
    let (inside, _) = w
        .app
        .add_evidence(&w.a.user, w.case, json!({ "title": "inside" }))
        .await;
    let (outside, _) = w
        .app
        .add_evidence(&w.a.user, w.case, json!({ "title": "outside" }))
        .await;
    let to_b = w
        .app
        .share_and_settle(
            &w.a.user,
            w.case,
            to_partner(w.b.id, json!({ "kind": "case" })),
        )
        .await;
    let to_c = w
        .app
        .share_and_settle(
            &w.a.user,
            w.case,
            to_partner(
                c.id,
                json!({ "kind": "evidence", "evidence_ids": [inside] }),
            ),
        )
        .await;
    let (_, audit_c) = w
        .app
        .get(&format!("/v1/cases/{}/audit", w.case), &c.admin)
        .await;
    let items = audit_c["sender_snapshot"]["items"]
        .as_array()
        .expect("snapshot sent")
        .clone();
    let about = |field: &str, id: &str| items.iter().any(|i| i[field] == id);
    assert!(about("evidence_id", &inside.to_string()), "{items:?}");
    assert!(!about("evidence_id", &outside.to_string()), "{items:?}");
    assert!(about("share_id", to_c["id"].as_str().unwrap()), "{items:?}");
    assert!(
        !about("share_id", to_b["id"].as_str().unwrap()),
        "{items:?}"
    );
    assert!(
        items.iter().any(|i| i["action"] == "case_created"),
        "case-level entries stay: {items:?}"
    );
    w.app.stop().await;
}

// R12: the policy is recorded with the share; later edits change only later shares.
#[tokio::test]
async fn r12_policy_snapshot_is_recorded_and_later_edits_affect_only_later_shares() {
    let w = world(policy(true)).await;
    let c = w.app.create_org("Gamma PD", "lea").await;
    w.app.partner(w.a.id, c.id).await;
    w.app
        .add_evidence(&w.a.user, w.case, full_evidence("Clip"))
        .await;
    let first = w
        .app
        .share_and_settle(
            &w.a.user,
            w.case,
            to_partner(w.b.id, json!({ "kind": "case" })),
        )
        .await;
    assert_eq!(first["policy"]["evidence_terms"]["gps"], true);
    assert_eq!(first["policy"]["source"], "default");

    let (_, setup) = w.app.get("/v1/sharing/setup", &w.a.admin).await;
    let mut edited = policy(true);
    set(&mut edited, "evidence_terms.gps", false);
    let (s, _) = w
        .app
        .put(
            &format!(
                "/v1/policies/{}",
                setup["default_policy_id"].as_str().unwrap()
            ),
            &w.a.admin,
            edited,
        )
        .await;
    assert_eq!(s, StatusCode::OK);

    let (_, again) = w
        .app
        .get(
            &format!("/v1/shares/{}", first["id"].as_str().unwrap()),
            &w.a.user,
        )
        .await;
    assert_eq!(
        again["policy"]["evidence_terms"]["gps"], true,
        "the recorded snapshot does not change"
    );
    let (_, seen_b) = w
        .app
        .get(&format!("/v1/cases/{}/evidence", w.case), &w.b.admin)
        .await;
    assert!(
        seen_b["items"][0].get("gps").is_some(),
        "the existing share keeps its policy"
    );
    let (_, details) = w
        .app
        .get(&format!("/v1/cases/{}/import-details", w.case), &w.b.admin)
        .await;
    assert_eq!(
        details["sharing_policy"]["evidence_terms"]["gps"], true,
        "the receiver sees the governing policy"
    );

    let later = w
        .app
        .share_and_settle(
            &w.a.user,
            w.case,
            to_partner(c.id, json!({ "kind": "case" })),
        )
        .await;
    assert_eq!(later["policy"]["evidence_terms"]["gps"], false);
    let (_, seen_c) = w
        .app
        .get(&format!("/v1/cases/{}/evidence", w.case), &c.user)
        .await;
    assert!(seen_c["items"][0].get("gps").is_none());
    w.app.stop().await;
}

// R13: scope is the case, folders with their subfolders, or an evidence subset.
#[tokio::test]
async fn r13_scope_folders_include_subfolders_and_subsets_are_exact() {
    let w = world(policy(true)).await;
    let c = w.app.create_org("Gamma PD", "lea").await;
    w.app.partner(w.a.id, c.id).await;
    let tree = Tree::ladder(
        &w.app,
        &w.a.user,
        w.case,
        ["Video", "Night", "Photos"],
        ["v", "n", "p", "r"],
        evidence_titled,
    )
    .await;
    let video = tree.folder("Video");
    let [in_video, in_night, in_photos, at_root] = tree.items(["v", "n", "p", "r"]);
    w.app.drain().await;

    w.app
        .share_and_settle(
            &w.a.user,
            w.case,
            to_partner(w.b.id, json!({ "kind": "folders", "folder_ids": [video] })),
        )
        .await;
    let ids = |v: &Value| -> Vec<String> {
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["id"].as_str().unwrap().to_string())
            .collect()
    };
    let (_, seen) = w
        .app
        .get(&format!("/v1/cases/{}/evidence", w.case), &w.b.admin)
        .await;
    let mut got = ids(&seen);
    got.sort();
    let mut want = vec![in_video.to_string(), in_night.to_string()];
    want.sort();
    assert_eq!(got, want);
    let (_, folders) = w
        .app
        .get(&format!("/v1/cases/{}/folders", w.case), &w.b.admin)
        .await;
    let names: Vec<&str> = folders["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        vec!["Night", "Video"],
        "only the shared folders are copied"
    );

    w.app
        .share_and_settle(
            &w.a.user,
            w.case,
            to_partner(
                c.id,
                json!({ "kind": "evidence", "evidence_ids": [in_photos, at_root] }),
            ),
        )
        .await;
    let (_, seen) = w
        .app
        .get(&format!("/v1/cases/{}/evidence", w.case), &c.admin)
        .await;
    let mut got = ids(&seen);
    got.sort();
    let mut want = vec![in_photos.to_string(), at_root.to_string()];
    want.sort();
    assert_eq!(got, want);

    // Scope ids must belong to the case.
    let shares = format!("/v1/cases/{}/shares", w.case);
    assert_all_refused(
        &w.app,
        [
            Call::post(
                &shares,
                &w.a.user,
                to_partner(
                    c.id,
                    json!({ "kind": "folders", "folder_ids": [Uuid::new_v4()] }),
                ),
            )
            .refused(StatusCode::UNPROCESSABLE_ENTITY, "validation"),
            Call::post(
                &shares,
                &w.a.user,
                to_partner(c.id, json!({ "kind": "evidence", "evidence_ids": [] })),
            )
            .status(StatusCode::UNPROCESSABLE_ENTITY),
        ],
    )
    .await;
    w.app.stop().await;
}

// R14, R15, R16: internal and partner targets, processing -> complete, the access list.
#[tokio::test]
async fn r14_r15_r16_internal_and_partner_shares_and_the_access_list() {
    let w = world(policy(true)).await;
    let (colleague, _) = w.app.create_user(w.a.id, "Colleague One", "user").await;
    let (s, g) = w
        .app
        .post(
            &format!("/v1/orgs/{}/groups", w.a.id),
            SERVICE_TOKEN,
            json!({ "name": "Detectives", "member_ids": [colleague] }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let internal = json!({ "scope": { "kind": "case" }, "target": { "kind": "internal", "recipients": [{ "user_id": colleague }, { "group_id": g["id"] }] } });
    let share = w.app.share(&w.a.user, w.case, internal).await;
    assert_eq!(share["status"], "processing", "R15: answers at once");
    let done = w
        .app
        .wait_share(&w.a.user, share["id"].as_str().unwrap())
        .await;
    assert_eq!(done["status"], "complete");
    assert!(done["completed_at"].is_string());
    assert!(
        done["policy"].is_null(),
        "internal shares carry no partner policy"
    );
    // An internal share cannot name another org's user.
    let bad = json!({ "scope": { "kind": "case" }, "target": { "kind": "internal", "recipients": [{ "user_id": w.b.user_id }] } });
    let (s, _) = w
        .app
        .post(&format!("/v1/cases/{}/shares", w.case), &w.a.user, bad)
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);

    let partner = json!({ "scope": { "kind": "case" }, "target": { "kind": "partner", "org_id": w.b.id,
        "recipients": [{ "user_id": w.b.user_id }, { "email": "analyst@beta-pd.example" }] } });
    w.app.share_and_settle(&w.a.user, w.case, partner).await;
    let (_, access) = w
        .app
        .get(&format!("/v1/cases/{}/access", w.case), &w.a.user)
        .await;
    let items = access["items"].as_array().unwrap();
    let owner: Vec<&Value> = items.iter().filter(|i| i["owner"] == true).collect();
    assert_eq!(owner.len(), 1);
    assert_eq!(
        (owner[0]["kind"].as_str(), owner[0]["id"].as_str()),
        (Some("user"), Some(w.a.user_id.to_string().as_str()))
    );
    let has = |kind: &str, id: String| items.iter().any(|i| i["kind"] == kind && i["id"] == id);
    assert!(has("user", colleague.to_string()));
    assert!(has("group", g["id"].as_str().unwrap().to_string()));
    assert!(has("org", w.b.id.to_string()));
    assert!(has("user", w.b.user_id.to_string()));
    assert!(items
        .iter()
        .any(|i| i["kind"] == "email" && i["name"] == "analyst@beta-pd.example"));
    let (_, shares) = w
        .app
        .get(&format!("/v1/cases/{}/shares", w.case), &w.a.user)
        .await;
    assert_eq!(shares["items"].as_array().unwrap().len(), 2);
    w.app.stop().await;
}

// R17: sharing again with the same partner extends the collaboration.
#[tokio::test]
async fn r17_sharing_again_extends_without_duplicates() {
    let w = world(policy(true)).await;
    let tree = Tree::build(
        &w.app,
        &w.a.user,
        w.case,
        &[("One", None), ("Two", None)],
        &[
            (evidence_titled("one"), Some("One")),
            (evidence_titled("two"), Some("Two")),
        ],
    )
    .await;
    let (e1, e2) = (tree.item("one"), tree.item("two"));
    w.app.drain().await;
    w.app
        .share_and_settle(
            &w.a.user,
            w.case,
            to_partner(w.b.id, json!({ "kind": "evidence", "evidence_ids": [e1] })),
        )
        .await;
    w.app
        .share_and_settle(
            &w.a.user,
            w.case,
            to_partner(
                w.b.id,
                json!({ "kind": "folders", "folder_ids": [tree.folder("One"), tree.folder("Two")] }),
            ),
        )
        .await;
    w.app
        .share_and_settle(
            &w.a.user,
            w.case,
            to_partner(w.b.id, json!({ "kind": "case" })),
        )
        .await;
    let (_, received) = w.app.get("/v1/received", &w.b.admin).await;
    assert_eq!(
        received["items"].as_array().unwrap().len(),
        1,
        "one received case"
    );
    let (grants, distinct): (i64, i64) =
        sqlx::query_as("SELECT count(*), count(DISTINCT evidence_id) FROM grants")
            .fetch_one(&w.app.db)
            .await
            .unwrap();
    assert_eq!((grants, distinct), (2, 2), "no duplicate grants");
    let (_, seen) = w
        .app
        .get(&format!("/v1/cases/{}/evidence", w.case), &w.b.admin)
        .await;
    let mut got: Vec<String> = seen["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect();
    got.sort();
    let mut want = vec![e1.to_string(), e2.to_string()];
    want.sort();
    assert_eq!(got, want, "scope union");
    let (_, list) = w.app.get("/v1/cases?external=true", &w.b.admin).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    w.app.stop().await;
}

// R22, R23, R25, R35: a burst into one case while no worker runs: the first
// evidence-added run also does the other queued jobs of the case (set-based),
// and each item is still granted exactly once, by the right shares only
// (case share: all; folder share: the folder and its subfolders; never the
// evidence-subset share), and synced once to an auto-syncing Justice partner.
#[tokio::test]
async fn r22_r23_a_queued_burst_is_fanned_out_once_per_item_in_few_runs() {
    let api = spawn_with(Options {
        roles: caseshare::startup::Roles::API,
        ..Default::default()
    })
    .await;
    let a = api.create_org("Alpha PD", "lea").await;
    let b = api.create_org("Beta PD", "lea").await;
    let c = api.create_org("Gamma PD", "lea").await;
    let j = api.create_org("County DA", "justice").await;
    for p in [&b, &c, &j] {
        api.partner(a.id, p.id).await;
    }
    api.setup(&a, policy(true), false).await;
    api.setup(&j, policy(true), true).await;
    let (s, v) = api
        .put(
            "/v1/sharing/settings",
            &j.admin,
            json!({ "auto_sync": true }),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let case = api.create_case(&a.user, "Busy case").await;
    // No worker runs yet: the seed's job waits for the setup's workers.
    let tree = Tree::build(
        &api,
        &a.user,
        case,
        &[("Scene", None), ("Cam", Some("Scene")), ("Other", None)],
        &[(evidence_titled("seed"), None)],
    )
    .await;
    let (scene, cam, other) = (
        tree.folder("Scene"),
        tree.folder("Cam"),
        tree.folder("Other"),
    );
    let seed = tree.item("seed");

    // Shares need workers: a worker deployment joins for the setup only.
    let setup_workers = spawn_with(Options {
        roles: caseshare::startup::Roles::WORKER,
        join: Some((api.database_url.clone(), api.prefix.clone())),
        ..Default::default()
    })
    .await;
    let target = |org: Uuid| json!({ "kind": "partner", "org_id": org, "recipients": [] });
    for (org, scope) in [
        (b.id, json!({ "kind": "case" })),
        (c.id, json!({ "kind": "folders", "folder_ids": [scene] })),
        (c.id, json!({ "kind": "evidence", "evidence_ids": [seed] })),
        (j.id, json!({ "kind": "case" })),
    ] {
        let share = api
            .share(
                &a.user,
                case,
                json!({ "scope": scope, "target": target(org) }),
            )
            .await;
        let done = api.wait_share(&a.user, share["id"].as_str().unwrap()).await;
        assert_eq!(done["status"], "complete", "{done}");
    }
    api.drain().await;
    setup_workers.stop().await;

    // The burst: 60 items, no worker running.
    let folders = [None, Some(scene), Some(cam), Some(other)];
    let mut ids = Vec::new();
    for i in 0..60 {
        let mut body = json!({ "title": format!("burst {i}") });
        if let Some(f) = folders[i % 4] {
            body["folder_id"] = json!(f);
        }
        ids.push(api.add_evidence(&a.user, case, body).await.0);
    }
    let workers = spawn_with(Options {
        roles: caseshare::startup::Roles::WORKER,
        join: Some((api.database_url.clone(), api.prefix.clone())),
        ..Default::default()
    })
    .await;
    api.drain().await;

    let (complete, coalesced): (i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE j.status = 'complete'),
                count(*) FILTER (WHERE j.status = 'complete' AND j.attempts = 0)
         FROM evidence e JOIN jobs j ON j.id = e.job_id WHERE e.id = ANY($1)",
    )
    .bind(&ids)
    .fetch_one(&api.db)
    .await
    .unwrap();
    assert_eq!(complete, 60, "every job complete");
    assert!(coalesced > 0, "some jobs were done by another job's run");
    let per_org = |org: Uuid| {
        let db = api.db.clone();
        let ids = ids.clone();
        async move {
            let (n, distinct): (i64, i64) = sqlx::query_as(
                "SELECT count(*), count(DISTINCT g.evidence_id) FROM grants g
                 JOIN received r ON r.id = g.received_id
                 WHERE r.receiver_org_id = $1 AND g.evidence_id = ANY($2)",
            )
            .bind(org)
            .bind(&ids)
            .fetch_one(&db)
            .await
            .unwrap();
            (n, distinct)
        }
    };
    assert_eq!(per_org(b.id).await, (60, 60), "case share: every item once");
    // Scene and Cam (its subfolder): 2 of every 4 items; Other and root: none.
    assert_eq!(
        per_org(c.id).await,
        (30, 30),
        "folder share: its subtree only"
    );
    assert_eq!(per_org(j.id).await, (60, 60));
    let synced: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM evidence e JOIN received r ON r.imported_case_id = e.case_id
         WHERE r.receiver_org_id = $1 AND e.source_evidence_id = ANY($2)",
    )
    .bind(j.id)
    .bind(&ids)
    .fetch_one(&api.db)
    .await
    .unwrap();
    assert_eq!(synced, 60, "auto-synced once each");
    workers.stop().await;
    api.stop().await;
}
