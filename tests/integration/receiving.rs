//! Receiving: the external case (R18), import (R19–R21), new evidence after
//! the share (R22–R25), case updates (R26), applying updates (R27), onward
//! sharing (R28) and the audit trail (R39).

use crate::common::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use uuid::Uuid;

/// Alpha (LEA) owns a case, partnered with `receiver_kind` org Beta.
async fn world(p: Value, receiver_kind: &str) -> World {
    World::spawn(("Beta", receiver_kind), p, "Robbery").await
}

/// The receiver's side of `common::World`.
impl World {
    /// Share `scope` of the case with Beta, naming Beta's user (R42: so it
    /// sees the case), and wait until everything settled.
    async fn share(&self, scope: Value) -> Value {
        let body = to_partner_naming(self.b.id, scope, json!([{ "user_id": self.b.user_id }]));
        self.app
            .share_and_settle(&self.a.user, self.case, body)
            .await
    }

    async fn received(&self) -> Value {
        let (_, v) = self.app.get("/v1/received", &self.b.user).await;
        v["items"][0].clone()
    }

    async fn imported_case(&self) -> Uuid {
        self.received().await["imported_case_id"]
            .as_str()
            .expect("imported")
            .parse()
            .unwrap()
    }

    async fn evidence_titles(&self, case: Uuid) -> Vec<String> {
        evidence_titles(&self.app, &self.b.user, case).await
    }
}

// R18: external, marked with the sharing org, read-only.
#[tokio::test]
async fn r18_external_case_is_marked_and_read_only() {
    let w = world(policy(true), "lea").await;
    w.app
        .add_evidence(&w.a.user, w.case, json!({ "title": "Doorbell" }))
        .await;
    let share = w.share(json!({ "kind": "case" })).await;
    let (s, case) = w.app.get(&format!("/v1/cases/{}", w.case), &w.b.user).await;
    assert_eq!(s, StatusCode::OK, "{case}");
    assert_eq!(case["external"]["sharing_org"]["name"], "Alpha PD");
    assert_eq!(case["external"]["sharing_org"]["id"], w.a.id.to_string());
    assert_eq!(case["external"]["share_id"], share["id"]);
    let case_path = format!("/v1/cases/{}", w.case);
    assert_all_refused(
        &w.app,
        [
            Call::patch(&case_path, &w.b.user, json!({ "title": "Mine now" }))
                .refused(StatusCode::FORBIDDEN, "forbidden"),
            Call::post(
                format!("{case_path}/evidence"),
                &w.b.user,
                json!({ "title": "planted" }),
            )
            .status(StatusCode::FORBIDDEN),
            Call::post(
                format!("{case_path}/folders"),
                &w.b.user,
                json!({ "name": "planted" }),
            )
            .status(StatusCode::FORBIDDEN),
            Call::post(
                format!("{case_path}/shares"),
                &w.b.user,
                to_partner(w.a.id, json!({ "kind": "case" })),
            )
            // R45 (sharpening this test's former 404): the receiver sees the
            // case, so the refusal names the policy.
            .refused(StatusCode::FORBIDDEN, "policy_forbids")
            .note("a receiver cannot reshare the owner's case"),
        ],
    )
    .await;
    let (_, list) = w.app.get("/v1/cases", &w.b.user).await;
    let item = &list["items"][0];
    assert_eq!(
        (item["id"].as_str(), item["external"].as_bool()),
        (Some(w.case.to_string().as_str()), Some(true))
    );
    assert_eq!(item["sharing_org"]["name"], "Alpha PD");
    let (_, own_only) = w.app.get("/v1/cases?external=false", &w.b.user).await;
    assert!(own_only["items"].as_array().unwrap().is_empty());
    let r = w.received().await;
    assert_eq!(
        (r["state"].as_str(), r["case_id"].as_str()),
        (Some("external"), Some(w.case.to_string().as_str()))
    );
    assert_eq!(w.evidence_titles(w.case).await, vec!["Doorbell"]);
    // A third org sees nothing.
    let c = w.app.create_org("Gamma PD", "lea").await;
    let (s, _) = w.app.get(&format!("/v1/cases/{}", w.case), &c.user).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    w.app.stop().await;
}

// R19: auto-import with copy_download; manual import otherwise; refused without copy_download.
#[tokio::test]
async fn r19_auto_import_when_on_and_allowed() {
    let mut p = policy(true);
    set(&mut p, "evidence_terms.transcript", false);
    let w = world(p, "justice").await; // Justice: auto-import on by default
    w.app
        .add_evidence(
            &w.a.user,
            w.case,
            json!({ "title": "Interview", "transcript": "secret words" }),
        )
        .await;
    w.share(json!({ "kind": "case" })).await;
    let r = w.received().await;
    assert_eq!(r["state"], "imported");
    let imported = w.imported_case().await;
    let (_, case) = w.app.get(&format!("/v1/cases/{imported}"), &w.b.user).await;
    assert!(case["external"].is_null());
    assert_eq!(case["imported_from"]["sharing_org"]["name"], "Alpha PD");
    assert_eq!(case["title"], "Robbery");
    let (_, ev) = w
        .app
        .get(&format!("/v1/cases/{imported}/evidence"), &w.b.user)
        .await;
    assert_eq!(ev["items"][0]["title"], "Interview");
    assert!(
        ev["items"][0].get("transcript").is_none(),
        "the imported copy is filtered"
    );
    let (_, list) = w.app.get("/v1/cases", &w.b.user).await;
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(
        (items[0]["id"].as_str(), items[0]["imported"].as_bool()),
        (Some(imported.to_string().as_str()), Some(true))
    );
    // The imported copy is the receiver's own: its admins may edit it (R41:
    // a named recipient reads it and adds to it, but does not edit it).
    let (s, _) = w
        .app
        .patch(
            &format!("/v1/cases/{imported}"),
            &w.b.user,
            json!({ "title": "DA copy" }),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = w
        .app
        .patch(
            &format!("/v1/cases/{imported}"),
            &w.b.admin,
            json!({ "title": "DA copy" }),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    w.app.stop().await;
}

#[tokio::test]
async fn r19_manual_import_and_refusal_without_copy_download() {
    let w = world(policy(true), "lea").await; // LEA receiver, auto-import off
    w.app
        .add_evidence(&w.a.user, w.case, json!({ "title": "CCTV" }))
        .await;
    w.share(json!({ "kind": "case" })).await;
    let r = w.received().await;
    assert_eq!(r["state"], "external");
    let (s, v) = w
        .app
        .post(
            &format!("/v1/received/{}/import", r["id"].as_str().unwrap()),
            &w.b.user,
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    w.app
        .wait_job(v["job_id"].as_str().unwrap().parse().unwrap())
        .await;
    let imported = w.imported_case().await;
    assert_eq!(w.evidence_titles(imported).await, vec!["CCTV"]);
    // Importing again changes nothing.
    let (s, v) = w
        .app
        .post(
            &format!("/v1/received/{}/import", r["id"].as_str().unwrap()),
            &w.b.user,
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    w.app
        .wait_job(v["job_id"].as_str().unwrap().parse().unwrap())
        .await;
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM cases WHERE org_id = $1")
        .bind(w.b.id)
        .fetch_one(&w.app.db)
        .await
        .unwrap();
    assert_eq!(n, 1);

    // Without copy_download: refused, the case stays external, even with auto-import on.
    let c = w.app.create_org("Gamma PD", "lea").await;
    w.app.partner(w.a.id, c.id).await;
    w.app
        .put(
            "/v1/sharing/settings",
            &c.admin,
            json!({ "auto_import": true }),
        )
        .await;
    let mut no_copy = policy(true);
    set(&mut no_copy, "permissions.copy_download", false);
    let (_, p) = w.app.post("/v1/policies", &w.a.admin, no_copy).await;
    w.app
        .put(
            &format!("/v1/partners/{}/policy", c.id),
            &w.a.admin,
            json!({ "policy_id": p["id"] }),
        )
        .await;
    w.app.share_case_with(&w.a.user, w.case, c.id).await;
    w.app.drain().await;
    let (_, rc) = w.app.get("/v1/received", &c.admin).await;
    let rc = &rc["items"][0];
    assert_eq!(rc["state"], "external");
    let import = format!("/v1/received/{}/import", rc["id"].as_str().unwrap());
    assert_all_refused(
        &w.app,
        [
            Call::post(&import, &c.admin, json!({}))
                .refused(StatusCode::FORBIDDEN, "policy_forbids"),
            // Another org cannot import Gamma's received case.
            Call::post(&import, &w.b.user, json!({})).status(StatusCode::NOT_FOUND),
        ],
    )
    .await;
    w.app.stop().await;
}

// R20, R48: import details.
#[tokio::test]
async fn r20_r48_import_details_show_sender_policy_and_updates() {
    let w = world(policy(true), "lea").await;
    let body = json!({ "scope": { "kind": "case" }, "message": "for you",
        "target": { "kind": "partner", "org_id": w.b.id, "recipients": [{ "user_id": w.b.user_id }] } });
    let share = w.app.share(&w.a.user, w.case, body).await;
    w.app
        .wait_share(&w.a.user, share["id"].as_str().unwrap())
        .await;
    let (s, d) = w
        .app
        .get(&format!("/v1/cases/{}/import-details", w.case), &w.b.user)
        .await;
    assert_eq!(s, StatusCode::OK, "{d}");
    // R48: the sender (user and org), the partner org (the sharer, seen
    // from here), the recipients, the access level with its permissions,
    // the policy's name and snapshot.
    assert_eq!(d["sender"]["org"]["name"], "Alpha PD");
    assert_eq!(d["sender"]["user"]["id"], w.a.user_id.to_string());
    assert_eq!(d["partner_org"]["name"], "Alpha PD");
    assert_eq!(d["recipients"][0]["user_id"], w.b.user_id.to_string());
    assert!(d["received_on"].is_string());
    assert_eq!(d["access_level"]["kind"], "external");
    assert_eq!(d["access_level"]["permissions"]["copy_download"], true);
    assert_eq!(d["sharing_policy"]["permissions"]["copy_download"], true);
    assert_eq!(d["sharing_policy"]["name"], "everything");
    assert!(d["updates"]["case"].as_array().unwrap().is_empty());
    assert!(d["updates"]["evidence"].as_array().unwrap().is_empty());
    // R48: the recipients of every live share of the collaboration.
    let (colleague, _) = w.app.create_user(w.b.id, "Second Recipient", "user").await;
    w.app
        .share_and_settle(
            &w.a.user,
            w.case,
            partner_share(
                w.b.id,
                json!([{ "user_id": colleague }, { "email": "desk@sub.beta.example" }]),
            ),
        )
        .await;
    let (_, d) = w
        .app
        .get(&format!("/v1/cases/{}/import-details", w.case), &w.b.user)
        .await;
    assert_eq!(
        d["recipients"],
        json!([{ "user_id": w.b.user_id }, { "user_id": colleague }, { "email": "desk@sub.beta.example" }]),
        "{d}"
    );
    w.app.stop().await;
}

// R21, R23: folders are copied once; later renames do not reach the receiver; evidence in
// an original folder lands in the matching folder, in a new folder at the root.
#[tokio::test]
async fn r21_r23_folders_copied_once_and_new_folder_evidence_lands_at_root() {
    let w = world(policy(true), "lea").await;
    let video = w.app.create_folder(&w.a.user, w.case, "Video", None).await;
    w.share(json!({ "kind": "case" })).await;
    let (s, _) = w
        .app
        .patch(
            &format!("/v1/folders/{video}"),
            &w.a.user,
            json!({ "name": "Renamed" }),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let later = w.app.create_folder(&w.a.user, w.case, "Later", None).await;
    let (in_video, _) = w
        .app
        .add_evidence(
            &w.a.user,
            w.case,
            json!({ "title": "in video", "folder_id": video }),
        )
        .await;
    let (in_later, _) = w
        .app
        .add_evidence(
            &w.a.user,
            w.case,
            json!({ "title": "in later", "folder_id": later }),
        )
        .await;
    w.app.drain().await;

    let (_, folders) = w
        .app
        .get(&format!("/v1/cases/{}/folders", w.case), &w.b.user)
        .await;
    let items = folders["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{folders}");
    assert_eq!(
        items[0]["name"], "Video",
        "the rename does not reach the receiver"
    );
    let receiver_video = items[0]["id"].as_str().unwrap().to_string();
    assert_ne!(
        receiver_video,
        video.to_string(),
        "the receiver has its own folder"
    );
    let (_, ev) = w
        .app
        .get(&format!("/v1/cases/{}/evidence", w.case), &w.b.user)
        .await;
    let folder_of = |id: Uuid| {
        ev["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["id"] == id.to_string())
            .unwrap()["folder_id"]
            .clone()
    };
    assert_eq!(folder_of(in_video), json!(receiver_video));
    assert_eq!(folder_of(in_later), Value::Null);
    // Moving a folder does not either; and the import keeps the copied structure.
    let r = w.received().await;
    let (_, v) = w
        .app
        .post(
            &format!("/v1/received/{}/import", r["id"].as_str().unwrap()),
            &w.b.user,
            json!({}),
        )
        .await;
    w.app
        .wait_job(v["job_id"].as_str().unwrap().parse().unwrap())
        .await;
    let imported = w.imported_case().await;
    let (_, f) = w
        .app
        .get(&format!("/v1/cases/{imported}/folders"), &w.b.user)
        .await;
    assert_eq!(f["items"][0]["name"], "Video");
    let (_, iev) = w
        .app
        .get(&format!("/v1/cases/{imported}/evidence"), &w.b.user)
        .await;
    let placed = iev["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["title"] == "in video")
        .unwrap();
    assert_eq!(placed["folder_id"], f["items"][0]["id"]);
    w.app.stop().await;
}

// R22, R24: new evidence is shared automatically for case and folder scopes, at once for
// external receivers; not for an evidence subset, which the sharer extends (R17).
#[tokio::test]
async fn r22_r24_new_evidence_follows_case_and_folder_scopes_not_subsets() {
    let w = world(policy(true), "lea").await;
    let c = w.app.create_org("Gamma PD", "lea").await;
    let d = w.app.create_org("Delta PD", "lea").await;
    w.app.partner(w.a.id, c.id).await;
    w.app.partner(w.a.id, d.id).await;
    let tree = Tree::build(
        &w.app,
        &w.a.user,
        w.case,
        &[("Shared", None), ("Sub", Some("Shared")), ("Other", None)],
        &[(evidence_titled("first"), None)],
    )
    .await;
    let (shared, sub, other) = (
        tree.folder("Shared"),
        tree.folder("Sub"),
        tree.folder("Other"),
    );
    let first = tree.item("first");
    w.app.drain().await;
    w.share(json!({ "kind": "case" })).await;
    for (org, scope) in [
        (c.id, json!({ "kind": "folders", "folder_ids": [shared] })),
        (d.id, json!({ "kind": "evidence", "evidence_ids": [first] })),
    ] {
        let s = w.app.share(&w.a.user, w.case, to_partner(org, scope)).await;
        w.app.wait_share(&w.a.user, s["id"].as_str().unwrap()).await;
    }
    w.app
        .add_evidence(&w.a.user, w.case, json!({ "title": "root new" }))
        .await;
    w.app
        .add_evidence(
            &w.a.user,
            w.case,
            json!({ "title": "sub new", "folder_id": sub }),
        )
        .await;
    w.app
        .add_evidence(
            &w.a.user,
            w.case,
            json!({ "title": "other new", "folder_id": other }),
        )
        .await;
    w.app.drain().await;

    assert_eq!(
        w.evidence_titles(w.case).await,
        vec!["first", "other new", "root new", "sub new"],
        "whole case: everything"
    );
    assert_eq!(
        evidence_titles(&w.app, &c.admin, w.case).await,
        vec!["sub new"],
        "folder share: new evidence in a subfolder only"
    );
    assert_eq!(
        evidence_titles(&w.app, &d.admin, w.case).await,
        vec!["first"],
        "subset share: nothing new automatically"
    );
    // The sharer extends the subset share with the new evidence (R17).
    let (_, own) = w
        .app
        .get(&format!("/v1/cases/{}/evidence", w.case), &w.a.user)
        .await;
    let root_new = own["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["title"] == "root new")
        .unwrap()["id"]
        .clone();
    let s = w
        .app
        .share(
            &w.a.user,
            w.case,
            to_partner(
                d.id,
                json!({ "kind": "evidence", "evidence_ids": [root_new] }),
            ),
        )
        .await;
    w.app.wait_share(&w.a.user, s["id"].as_str().unwrap()).await;
    assert_eq!(
        evidence_titles(&w.app, &d.admin, w.case).await,
        vec!["first", "root new"]
    );
    w.app.stop().await;
}

// R25: Justice with auto-sync gets new evidence applied; otherwise it is an available update.
#[tokio::test]
async fn r25_justice_auto_sync_applies_new_evidence() {
    let w = world(policy(true), "justice").await;
    w.app
        .put(
            "/v1/sharing/settings",
            &w.b.admin,
            json!({ "auto_sync": true }),
        )
        .await;
    w.share(json!({ "kind": "case" })).await;
    let imported = w.imported_case().await;
    w.app
        .add_evidence(&w.a.user, w.case, json!({ "title": "synced" }))
        .await;
    w.app.drain().await;
    assert_eq!(w.evidence_titles(imported).await, vec!["synced"]);
    let (_, d) = w
        .app
        .get(&format!("/v1/cases/{imported}/import-details"), &w.b.user)
        .await;
    assert!(d["updates"]["evidence"].as_array().unwrap().is_empty());
    w.app.stop().await;
}

#[tokio::test]
async fn r25_without_auto_sync_new_evidence_is_an_available_update() {
    for receiver in ["justice", "lea"] {
        let w = world(policy(true), receiver).await;
        if receiver == "lea" {
            w.app
                .put(
                    "/v1/sharing/settings",
                    &w.b.admin,
                    json!({ "auto_import": true }),
                )
                .await;
        }
        w.share(json!({ "kind": "case" })).await;
        let imported = w.imported_case().await;
        let (ev, _) = w
            .app
            .add_evidence(&w.a.user, w.case, json!({ "title": "pending" }))
            .await;
        w.app.drain().await;
        assert!(
            w.evidence_titles(imported).await.is_empty(),
            "{receiver}: not applied automatically"
        );
        let (_, d) = w
            .app
            .get(&format!("/v1/cases/{imported}/import-details"), &w.b.user)
            .await;
        let updates = d["updates"]["evidence"].as_array().unwrap();
        assert_eq!(updates.len(), 1, "{receiver}: {d}");
        assert_eq!(
            (
                updates[0]["evidence_title"].as_str(),
                updates[0]["kind"].as_str()
            ),
            (Some("pending"), Some("added"))
        );
        assert_eq!(updates[0]["evidence_id"], ev.to_string());
        w.app.stop().await;
    }
}

// R26, R27: case-level changes are offered, never applied; the receiver applies a
// selection or all; applied updates disappear.
#[tokio::test]
async fn r26_r27_case_updates_are_offered_and_applied_by_selection() {
    let mut p = policy(true);
    set(&mut p, "evidence_terms.gps", false);
    let w = world(p, "justice").await;
    w.app
        .put(
            "/v1/sharing/settings",
            &w.b.admin,
            json!({ "auto_sync": false }),
        )
        .await;
    w.share(json!({ "kind": "case" })).await;
    let imported = w.imported_case().await;
    let (s, _) = w
        .app
        .patch(
            &format!("/v1/cases/{}", w.case),
            &w.a.user,
            json!({ "title": "Armed robbery", "description": "updated" }),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    w.app
        .add_evidence(
            &w.a.user,
            w.case,
            json!({ "title": "e1", "gps": { "lat": 1.5, "lon": 2.5 } }),
        )
        .await;
    w.app
        .add_evidence(&w.a.user, w.case, json!({ "title": "e2" }))
        .await;
    w.app.drain().await;

    let (_, case) = w.app.get(&format!("/v1/cases/{imported}"), &w.b.user).await;
    assert_eq!(case["title"], "Robbery", "never applied automatically");
    let (_, d) = w
        .app
        .get(&format!("/v1/cases/{imported}/import-details"), &w.b.user)
        .await;
    let case_updates = d["updates"]["case"].as_array().unwrap().clone();
    assert_eq!(case_updates.len(), 2, "{d}");
    let title_update = case_updates.iter().find(|u| u["field"] == "title").unwrap();
    assert_eq!(
        (title_update["old"].as_str(), title_update["new"].as_str()),
        (Some("Robbery"), Some("Armed robbery"))
    );
    let e1 = d["updates"]["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["evidence_title"] == "e1")
        .unwrap()
        .clone();

    // Apply a selection: the title and one evidence item.
    let (s, r) = w
        .app
        .post(
            &format!("/v1/cases/{imported}/updates/apply"),
            &w.b.admin,
            json!({ "case_update_ids": [title_update["id"]], "evidence_update_ids": [e1["id"]] }),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    let (_, case) = w.app.get(&format!("/v1/cases/{imported}"), &w.b.user).await;
    assert_eq!(case["title"], "Armed robbery");
    assert_eq!(
        case["description"], "a description",
        "the unselected field is untouched"
    );
    let (_, ev) = w
        .app
        .get(&format!("/v1/cases/{imported}/evidence"), &w.b.user)
        .await;
    assert_eq!(ev["items"].as_array().unwrap().len(), 1);
    assert!(
        ev["items"][0].get("gps").is_none(),
        "applied updates are filtered too"
    );
    let (_, d) = w
        .app
        .get(&format!("/v1/cases/{imported}/import-details"), &w.b.user)
        .await;
    assert_eq!(d["updates"]["case"].as_array().unwrap().len(), 1);
    assert_eq!(d["updates"]["evidence"].as_array().unwrap().len(), 1);
    // An unknown update id is refused and changes nothing.
    let (s, _) = w
        .app
        .post(
            &format!("/v1/cases/{imported}/updates/apply"),
            &w.b.admin,
            json!({ "case_update_ids": [Uuid::new_v4()] }),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    // Apply all.
    let (s, _) = w
        .app
        .post(
            &format!("/v1/cases/{imported}/updates/apply"),
            &w.b.admin,
            json!({ "all": true }),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (_, d) = w
        .app
        .get(&format!("/v1/cases/{imported}/import-details"), &w.b.user)
        .await;
    assert!(
        d["updates"]["case"].as_array().unwrap().is_empty()
            && d["updates"]["evidence"].as_array().unwrap().is_empty()
    );
    let (_, case) = w.app.get(&format!("/v1/cases/{imported}"), &w.b.user).await;
    assert_eq!(case["description"], "updated");
    assert_eq!(w.evidence_titles(imported).await, vec!["e1", "e2"]);
    w.app.stop().await;
}

// R45: an external (not imported) case goes no further: not to another org,
// not by link (policy_forbids, not 404: the receiver sees it); nothing recorded.
#[tokio::test]
async fn r45_an_external_case_cannot_be_shared_with_another_org_or_by_link() {
    let w = world(policy(true), "lea").await;
    let c = w.app.create_org("Gamma PD", "lea").await;
    w.app.partner(w.b.id, c.id).await;
    w.app.setup(&w.b, policy(true), false).await;
    w.share(json!({ "kind": "case" })).await;
    let before = w.app.count("SELECT count(*) FROM shares").await;
    let links_before = w.app.count("SELECT count(*) FROM link_shares").await;
    assert_all_refused(
        &w.app,
        [
            Call::post(
                format!("/v1/cases/{}/shares", w.case),
                &w.b.admin,
                json!({ "scope": { "kind": "case" },
                        "target": { "kind": "partner", "org_id": c.id, "recipients": [] } }),
            )
            .refused(StatusCode::FORBIDDEN, "policy_forbids"),
            Call::post(
                format!("/v1/cases/{}/link-shares", w.case),
                &w.b.admin,
                json!({ "scope": { "kind": "case" }, "recipient": { "email": "someone@example.org" },
                        "attachments": { "audit_trails": false, "transcripts": false, "table_of_contents": false },
                        "retain_folder_structure": false, "package": "zip", "duration_hours": 24 }),
            )
            .refused(StatusCode::FORBIDDEN, "policy_forbids"),
        ],
    )
    .await;
    assert_eq!(w.app.count("SELECT count(*) FROM shares").await, before);
    assert_eq!(
        w.app.count("SELECT count(*) FROM link_shares").await,
        links_before
    );
    w.app.stop().await;
}

// R28: onward sharing only under internal_share.
#[tokio::test]
async fn r28_onward_sharing_follows_internal_share_permission() {
    let w = world(policy(true), "lea").await;
    let c = w.app.create_org("Gamma PD", "lea").await;
    w.app.partner(w.a.id, c.id).await;
    let mut closed = policy(true);
    set(&mut closed, "permissions.internal_share", false);
    let (_, p) = w.app.post("/v1/policies", &w.a.admin, closed).await;
    w.app
        .put(
            &format!("/v1/partners/{}/policy", c.id),
            &w.a.admin,
            json!({ "policy_id": p["id"] }),
        )
        .await;
    w.share(json!({ "kind": "case" })).await;
    w.app.share_case_with(&w.a.user, w.case, c.id).await;

    let (colleague, colleague_token) = w.app.create_user(w.b.id, "Beta Analyst", "user").await;
    // R42: not named, the colleague does not see the case until added.
    let case_path = format!("/v1/cases/{}", w.case);
    let (s, _) = w.app.get(&case_path, &colleague_token).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, v) = w
        .app
        .post(
            &format!("/v1/cases/{}/recipients", w.case),
            &w.b.user,
            json!({ "user_id": colleague }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (s, _) = w.app.get(&case_path, &colleague_token).await;
    assert_eq!(
        s,
        StatusCode::OK,
        "R42: added onward, the colleague sees it"
    );
    let (_, d) = w
        .app
        .get(&format!("/v1/cases/{}/import-details", w.case), &w.b.user)
        .await;
    assert!(d["recipients"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["user_id"] == colleague.to_string()));
    let (_, access) = w
        .app
        .get(&format!("/v1/cases/{}/access", w.case), &w.a.user)
        .await;
    assert!(
        access["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["id"] == colleague.to_string()),
        "the owner sees onward recipients"
    );
    // The owner's secondary-dissemination log names who added whom, under which share.
    let (s, log) = w
        .app
        .get(&format!("/v1/cases/{}/dissemination", w.case), &w.a.user)
        .await;
    assert_eq!(s, StatusCode::OK, "{log}");
    let entry = &log["items"][0];
    assert_eq!(entry["recipient_id"], colleague.to_string());
    assert_eq!(entry["added_by"], w.b.user_id.to_string());
    assert_eq!(entry["receiving_org_name"], "Beta");
    let (s, _) = w
        .app
        .get(&format!("/v1/cases/{}/dissemination", w.case), &w.b.user)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "only the owning org reads it");
    // Only users of the receiver's own org.
    let (s, _) = w
        .app
        .post(
            &format!("/v1/cases/{}/recipients", w.case),
            &w.b.user,
            json!({ "user_id": w.a.user_id }),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let (gamma_colleague, _) = w.app.create_user(c.id, "Gamma Analyst", "user").await;
    assert_refused(
        &w.app,
        Method::POST,
        &format!("/v1/cases/{}/recipients", w.case),
        &c.admin,
        Some(json!({ "user_id": gamma_colleague })),
        StatusCode::FORBIDDEN,
        "policy_forbids",
    )
    .await;
    w.app.stop().await;
}

// R39: every sharing action is in the append-only audit trail.
#[tokio::test]
async fn r39_sharing_actions_are_audited_and_the_trail_is_append_only() {
    let w = world(policy(true), "lea").await;
    let (ev, _) = w
        .app
        .add_evidence(&w.a.user, w.case, json!({ "title": "x" }))
        .await;
    let share = w.share(json!({ "kind": "case" })).await;
    w.app.get(&format!("/v1/cases/{}", w.case), &w.b.user).await; // access of an external case
    let r = w.received().await;
    let (_, v) = w
        .app
        .post(
            &format!("/v1/received/{}/import", r["id"].as_str().unwrap()),
            &w.b.user,
            json!({}),
        )
        .await;
    w.app
        .wait_job(v["job_id"].as_str().unwrap().parse().unwrap())
        .await;
    let (colleague, _) = w.app.create_user(w.b.id, "Beta Analyst", "user").await;
    w.app
        .post(
            &format!("/v1/cases/{}/recipients", w.case),
            &w.b.user,
            json!({ "user_id": colleague }),
        )
        .await;
    w.app
        .patch(
            &format!("/v1/cases/{}", w.case),
            &w.a.user,
            json!({ "title": "t2" }),
        )
        .await;
    let imported = w.imported_case().await;
    w.app
        .post(
            &format!("/v1/cases/{imported}/updates/apply"),
            &w.b.user,
            json!({ "all": true }),
        )
        .await;
    let (s, _) = w
        .app
        .call(
            Method::POST,
            &format!("/v1/shares/{}/revoke", share["id"].as_str().unwrap()),
            Some(&w.a.user),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    w.app.drain().await;

    let (_, owner) = w
        .app
        .get(&format!("/v1/cases/{}/audit", w.case), &w.a.user)
        .await;
    let actions: Vec<&str> = owner["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["action"].as_str().unwrap())
        .collect();
    for a in [
        "case_created",
        "evidence_added",
        "share",
        "share_complete",
        "case_updated",
        "revoke",
    ] {
        assert!(actions.contains(&a), "{a} missing in {actions:?}");
    }
    let share_entry = owner["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["action"] == "share")
        .unwrap();
    assert_eq!(share_entry["actor_user_id"], w.a.user_id.to_string());
    assert_eq!(share_entry["share_id"], share["id"]);
    let added = owner["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["action"] == "evidence_added")
        .unwrap();
    assert_eq!(added["evidence_id"], ev.to_string());
    let (_, recv) = w
        .app
        .get(&format!("/v1/cases/{imported}/audit"), &w.b.user)
        .await;
    let recv_actions: Vec<&str> = recv["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["action"].as_str().unwrap())
        .collect();
    assert!(
        recv_actions.contains(&"import") && recv_actions.contains(&"update_applied"),
        "{recv_actions:?}"
    );
    let external: Vec<String> =
        sqlx::query_scalar("SELECT action FROM audit_log WHERE org_id = $1 AND case_id = $2")
            .bind(w.b.id)
            .bind(w.case)
            .fetch_all(&w.app.db)
            .await
            .unwrap();
    assert!(
        external.contains(&"access_external".to_string())
            && external.contains(&"onward_share".to_string()),
        "{external:?}"
    );
    // Append-only: the database refuses edits and deletions.
    assert!(sqlx::query("UPDATE audit_log SET action = 'x'")
        .execute(&w.app.db)
        .await
        .is_err());
    assert!(sqlx::query("DELETE FROM audit_log")
        .execute(&w.app.db)
        .await
        .is_err());
    w.app.stop().await;
}
