//! Revocation (R29–R31): who may revoke, what stops, what stays, idempotency,
//! and the race between new evidence and a revoke.

use crate::common::*;
use reqwest::{Method, StatusCode};
use serde_json::json;
use uuid::Uuid;

struct World {
    app: TestApp,
    a: Org,
    b: Org,
    case: Uuid,
    share_id: String,
}

async fn shared_world(receiver_kind: &str, auto_sync: bool) -> World {
    let app = spawn_app().await;
    let (a, b, case) =
        partners_with_case(&app, ("Beta", receiver_kind), policy(true), "Fraud").await;
    if auto_sync {
        app.put(
            "/v1/sharing/settings",
            &b.admin,
            json!({ "auto_sync": true }),
        )
        .await;
    }
    app.add_evidence(&a.user, case, json!({ "title": "before" }))
        .await;
    let share = app.share_case_with(&a.user, case, b.id).await;
    let share_id = share["id"].as_str().unwrap().to_string();
    app.drain().await;
    World {
        app,
        a,
        b,
        case,
        share_id,
    }
}

impl World {
    async fn revoke(&self, token: &str) -> (StatusCode, serde_json::Value) {
        self.app
            .call(
                Method::POST,
                &format!("/v1/shares/{}/revoke", self.share_id),
                Some(token),
                None,
            )
            .await
    }
}

// R29: admins and the case owner may revoke; access ends; new evidence stops.
#[tokio::test]
async fn r29_owner_or_admin_revokes_and_external_access_ends() {
    let w = shared_world("lea", false).await;
    let (other_user, other_token) = w.app.create_user(w.a.id, "Other Officer", "user").await;
    let (_, outsider_token) = w.app.create_user(w.a.id, "Outsider", "user").await;
    // R41: shared internally, the other officer sees the case but does not manage it.
    w.app
        .share_and_settle(
            &w.a.user,
            w.case,
            json!({ "scope": { "kind": "case" },
                    "target": { "kind": "internal", "recipients": [{ "user_id": other_user }] } }),
        )
        .await;
    let revoke = format!("/v1/shares/{}/revoke", w.share_id);
    assert_all_refused(
        &w.app,
        [
            Call::new(Method::POST, &revoke, Some(other_token.as_str()), None)
                .refused(StatusCode::FORBIDDEN, "forbidden")
                .note("R41: a user who sees the case but does not own it"),
            Call::new(Method::POST, &revoke, Some(outsider_token.as_str()), None)
                .refused(StatusCode::NOT_FOUND, "not_found")
                .note("R41: a user of the org the case was not shared with"),
            Call::new(Method::POST, &revoke, Some(w.b.admin.as_str()), None)
                .status(StatusCode::NOT_FOUND)
                .note("the receiver cannot revoke"),
        ],
    )
    .await;
    let (s, v) = w.revoke(&w.a.admin).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    assert_eq!(v["status"], "revoked");

    let reads = [
        format!("/v1/cases/{}", w.case),
        format!("/v1/cases/{}/evidence", w.case),
        format!("/v1/cases/{}/folders", w.case),
    ];
    assert_all_refused(
        &w.app,
        reads.map(|path| Call::get(path, &w.b.admin).status(StatusCode::NOT_FOUND)),
    )
    .await;
    let (_, received) = w.app.get("/v1/received", &w.b.admin).await;
    assert_eq!(received["items"][0]["state"], "revoked");
    let (_, list) = w.app.get("/v1/cases", &w.b.admin).await;
    assert!(list["items"].as_array().unwrap().is_empty());
    w.app
        .add_evidence(&w.a.user, w.case, json!({ "title": "after" }))
        .await;
    w.app.drain().await;
    let grants: i64 = sqlx::query_scalar("SELECT count(*) FROM grants")
        .fetch_one(&w.app.db)
        .await
        .unwrap();
    assert_eq!(grants, 0, "no grants remain and none are added");
    let (_, share) = w
        .app
        .get(&format!("/v1/shares/{}", w.share_id), &w.a.user)
        .await;
    assert_eq!(share["status"], "revoked");
    assert!(share["revoked_at"].is_string());
    // The owner (not admin) may revoke as well.
    let w2 = shared_world("lea", false).await;
    let (s, _) = w2.revoke(&w2.a.user).await;
    assert_eq!(s, StatusCode::ACCEPTED);
    w2.app.stop().await;
    w.app.stop().await;
}

// R30: an imported copy stays with the receiver and gets no further updates.
#[tokio::test]
async fn r30_imported_copy_stays_but_receives_no_updates() {
    let w = shared_world("justice", true).await;
    let (_, r) = w.app.get("/v1/received", &w.b.admin).await;
    let imported: Uuid = r["items"][0]["imported_case_id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let (s, _) = w.revoke(&w.a.user).await;
    assert_eq!(s, StatusCode::ACCEPTED);
    w.app
        .add_evidence(&w.a.user, w.case, json!({ "title": "after revoke" }))
        .await;
    w.app
        .patch(
            &format!("/v1/cases/{}", w.case),
            &w.a.user,
            json!({ "title": "renamed" }),
        )
        .await;
    w.app.drain().await;
    let (s, ev) = w
        .app
        .get(&format!("/v1/cases/{imported}/evidence"), &w.b.admin)
        .await;
    assert_eq!(s, StatusCode::OK, "the imported copy stays");
    let titles: Vec<&str> = ev["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["title"].as_str().unwrap())
        .collect();
    assert_eq!(titles, vec!["before"]);
    let (_, d) = w
        .app
        .get(&format!("/v1/cases/{imported}/import-details"), &w.b.admin)
        .await;
    assert_eq!(d["state"], "revoked");
    assert!(d["updates"]["case"].as_array().unwrap().is_empty());
    assert!(d["updates"]["evidence"].as_array().unwrap().is_empty());
    assert_refused(
        &w.app,
        Method::POST,
        &format!("/v1/cases/{imported}/updates/apply"),
        &w.b.admin,
        Some(json!({ "all": true })),
        StatusCode::GONE,
        "share_revoked",
    )
    .await;
    w.app.stop().await;
}

// R31: revoking twice is harmless.
#[tokio::test]
async fn r31_revoke_is_idempotent() {
    let w = shared_world("lea", false).await;
    let (s1, v1) = w.revoke(&w.a.user).await;
    let (s2, v2) = w.revoke(&w.a.user).await;
    assert_eq!((s1, s2), (StatusCode::ACCEPTED, StatusCode::ACCEPTED));
    assert_eq!(v1["revoked_at"], v2["revoked_at"]);
    w.app.drain().await;
    let (jobs, audits): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM jobs WHERE kind = 'revoke-share'), (SELECT count(*) FROM audit_log WHERE action = 'revoke')",
    )
    .fetch_one(&w.app.db)
    .await
    .unwrap();
    assert_eq!((jobs, audits), (1, 1));
    w.app.stop().await;
}

// R31: evidence-added jobs racing a revoke never share after the revoke was acknowledged.
#[tokio::test]
async fn r31_evidence_racing_a_revoke_is_never_shared_after_the_acknowledgement() {
    let w = shared_world("justice", true).await;
    let (_, r) = w.app.get("/v1/received", &w.b.admin).await;
    let imported: Uuid = r["items"][0]["imported_case_id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let count_synced = || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM evidence WHERE case_id = $1")
            .bind(imported)
            .fetch_one(&w.app.db)
            .await
            .unwrap()
    };
    // A stream of evidence, 4 requests at a time, with the revoke fired in the middle of it.
    use futures_util::StreamExt;
    let path = format!("/v1/cases/{}/evidence", w.case);
    let posts = futures_util::stream::iter(0..80)
        .map(|i| {
            w.app
                .post(&path, &w.a.user, json!({ "title": format!("race {i}") }))
        })
        .buffer_unordered(4)
        .collect::<Vec<_>>();
    let revoke = async {
        while count_synced().await < 10 {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        let res = w.revoke(&w.a.user).await;
        // Acknowledged: from here on nothing more may reach the receiver.
        (res, count_synced().await)
    };
    let (results, ((s, _), at_ack)) = tokio::join!(posts, revoke);
    assert_eq!(s, StatusCode::ACCEPTED);
    assert!(results.iter().all(|(s, _)| *s == StatusCode::ACCEPTED));
    w.app.drain().await;
    let after = count_synced().await;
    println!("race: {at_ack} of 80 evidence items (+1 from before) synced before the revoke was acknowledged");
    assert_eq!(
        after, at_ack,
        "nothing was synced after the revoke was acknowledged ({at_ack} at ack)"
    );
    let (s, _) = w
        .app
        .get(&format!("/v1/cases/{}/evidence", w.case), &w.b.admin)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let grants: i64 = sqlx::query_scalar("SELECT count(*) FROM grants")
        .fetch_one(&w.app.db)
        .await
        .unwrap();
    assert_eq!(grants, 0);
    w.app.stop().await;
}

// R29, R31: bulk revoke by share ids, by case, by partner; one job; idempotent.
#[tokio::test]
async fn r29_r31_bulk_revoke_by_ids_case_and_partner() {
    let w = shared_world("lea", false).await;
    let c = w.app.create_org("Gamma PD", "lea").await;
    w.app.partner(w.a.id, c.id).await;
    let second_case = w.app.create_case(&w.a.user, "Second").await;
    let mut ids = Vec::new();
    for (case, org) in [(w.case, c.id), (second_case, w.b.id), (second_case, c.id)] {
        let s = w.app.share_case_with(&w.a.user, case, org).await;
        ids.push(s["id"].as_str().unwrap().to_string());
    }
    // Refusals change nothing.
    let (_, other_token) = w.app.create_user(w.a.id, "Other Officer", "user").await;
    let bulk = "/v1/shares/revoke";
    assert_all_refused(
        &w.app,
        [
            Call::post(bulk, &other_token, json!({ "case_id": w.case }))
                .status(StatusCode::NOT_FOUND)
                .note("R41: the case was not shared with this user"),
            Call::post(bulk, &other_token, json!({ "org_id": w.b.id }))
                .status(StatusCode::FORBIDDEN)
                .note("revoking every share to a partner is for admins"),
            Call::post(
                bulk,
                &w.a.user,
                json!({ "share_ids": [ids[0], Uuid::new_v4()] }),
            )
            .status(StatusCode::NOT_FOUND),
            Call::post(bulk, &w.b.admin, json!({ "share_ids": [ids[0]] }))
                .status(StatusCode::NOT_FOUND)
                .note("another org's share ids do not leak"),
            Call::post(bulk, &w.a.user, json!({ "share_ids": [] }))
                .status(StatusCode::UNPROCESSABLE_ENTITY),
        ],
    )
    .await;
    let live = w
        .app
        .count("SELECT count(*) FROM shares WHERE status = 'complete'")
        .await;
    assert_eq!(live, 4);

    // All shares to Gamma (two cases), in one job.
    let (s, v) = w
        .app
        .post("/v1/shares/revoke", &w.a.admin, json!({ "org_id": c.id }))
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    assert_eq!(v["count"], 2);
    w.app
        .wait_job(v["job_id"].as_str().unwrap().parse().unwrap())
        .await;
    let (_, gamma) = w.app.get("/v1/received", &c.user).await;
    assert!(gamma["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["state"] == "revoked"));
    // Again: nothing left to revoke.
    let (_, v) = w
        .app
        .post("/v1/shares/revoke", &w.a.admin, json!({ "org_id": c.id }))
        .await;
    assert_eq!(
        (v["count"].as_i64(), v["job_id"].is_null()),
        (Some(0), true)
    );
    // All shares of a case, by its owner.
    let (s, v) = w
        .app
        .post("/v1/shares/revoke", &w.a.user, json!({ "case_id": w.case }))
        .await;
    assert_eq!((s, v["count"].as_i64()), (StatusCode::ACCEPTED, Some(1)));
    // By ids, including one already revoked.
    let (s, v) = w
        .app
        .post(
            "/v1/shares/revoke",
            &w.a.user,
            json!({ "share_ids": [ids[0], ids[1]] }),
        )
        .await;
    assert_eq!((s, v["count"].as_i64()), (StatusCode::ACCEPTED, Some(1)));
    w.app.drain().await;
    let (live, revoke_jobs): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM shares WHERE status = 'complete'), (SELECT count(*) FROM jobs WHERE kind = 'revoke-share')",
    )
    .fetch_one(&w.app.db)
    .await
    .unwrap();
    assert_eq!((live, revoke_jobs), (0, 3));
    let (_, beta) = w.app.get("/v1/received", &w.b.admin).await;
    assert!(beta["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["state"] == "revoked"));
    w.app.stop().await;
}
