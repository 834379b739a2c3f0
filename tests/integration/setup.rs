//! Organizations and setup (R1–R5, R46, R50): org kinds, the one-time
//! setup of advanced sharing, default and per-partner policies, partners,
//! receiving settings, the audit of admin changes, and bad input to them
//! answered in the contract's shape with nothing changed.

use crate::common::*;
use reqwest::{Method, StatusCode};
use serde_json::json;
use uuid::Uuid;

// R1
#[tokio::test]
async fn r1_orgs_have_a_kind() {
    let app = spawn_app().await;
    for kind in ["lea", "justice", "fpp"] {
        let (s, v) = app
            .post(
                "/v1/orgs",
                SERVICE_TOKEN,
                json!({ "name": format!("Org {kind}"), "kind": kind }),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        assert_eq!(v["kind"], kind);
    }
    assert_refused(
        &app,
        Method::POST,
        "/v1/orgs",
        SERVICE_TOKEN,
        Some(json!({ "name": "X", "kind": "police" })),
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation",
    )
    .await;
    let n = app.count("SELECT count(*) FROM orgs").await;
    assert_eq!(n, 3, "a refused request changes nothing");
    app.stop().await;
}

// R50: bootstrap actions and admin changes are audited with their actor.
#[tokio::test]
async fn r50_bootstrap_and_admin_changes_are_audited_with_their_actor() {
    let app = spawn_app().await;
    let a = app.create_org("Alpha PD", "lea").await;
    let b = app.create_org("Beta PD", "lea").await;
    app.partner(a.id, b.id).await;
    app.setup(&a, policy(true), false).await;
    let (_, p) = app.post("/v1/policies", &a.admin, policy(false)).await;
    let policy_id = p["id"].as_str().unwrap();
    let (s, _) = app
        .put(&format!("/v1/policies/{policy_id}"), &a.admin, policy(true))
        .await;
    assert_eq!(s, StatusCode::OK);
    let assign = format!("/v1/partners/{}/policy", b.id);
    let (s, _) = app
        .put(&assign, &a.admin, json!({ "policy_id": policy_id }))
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = app
        .call(Method::DELETE, &assign, Some(&a.admin), None)
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = app
        .put(
            "/v1/sharing/settings",
            &a.admin,
            json!({ "auto_import": true }),
        )
        .await;
    assert_eq!(s, StatusCode::OK);

    let rows: Vec<(String, Option<Uuid>, Option<String>)> = sqlx::query_as(
        "SELECT action, actor_user_id, details->>'actor' FROM audit_log WHERE org_id = $1 ORDER BY id",
    )
    .bind(a.id)
    .fetch_all(&app.db)
    .await
    .unwrap();
    let by_service = |action: &str| {
        rows.iter().any(|(x, user, actor)| {
            x == action && user.is_none() && actor.as_deref() == Some("service")
        })
    };
    let by_admin = |action: &str| {
        rows.iter()
            .any(|(x, user, _)| x == action && *user == Some(a.admin_id))
    };
    for action in ["org_created", "user_created", "partnership_created"] {
        assert!(by_service(action), "{action} by the service: {rows:?}");
    }
    for action in [
        "setup_completed",
        "policy_created",
        "policy_updated",
        "partner_policy_assigned",
        "partner_policy_removed",
        "settings_changed",
    ] {
        assert!(by_admin(action), "{action} by the admin: {rows:?}");
    }
    // A refused admin change records nothing.
    let before = rows.len();
    let (s, _) = app
        .put(
            &format!("/v1/partners/{}/policy", Uuid::new_v4()),
            &a.admin,
            json!({ "policy_id": policy_id }),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let after: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_log WHERE org_id = $1")
        .bind(a.id)
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(after as usize, before);
    app.stop().await;
}

// R46
#[tokio::test]
async fn r46_fpp_orgs_cannot_set_up_advanced_sharing() {
    let app = spawn_app().await;
    let fpp = app.create_org("Free Prosecutor", "fpp").await;
    assert_refused(
        &app,
        Method::POST,
        "/v1/sharing/setup",
        &fpp.admin,
        Some(json!({ "default_policy": policy(true), "auto_import": false })),
        StatusCode::CONFLICT,
        "classic_sharing_required",
    )
    .await;
    let (s, v) = app.get("/v1/sharing/setup", &fpp.admin).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["completed"], false, "a refused setup changes nothing");
    assert_eq!(app.count("SELECT count(*) FROM policies").await, 0);
    // An LEA org still sets up as before.
    let lea = app.create_org("Alpha PD", "lea").await;
    app.setup(&lea, policy(true), false).await;
    app.stop().await;
}

// R2
#[tokio::test]
async fn r2_advanced_sharing_needs_setup_once_and_policy_stays_editable() {
    let app = spawn_app().await;
    let a = app.create_org("Alpha PD", "lea").await;
    let b = app.create_org("Beta PD", "lea").await;
    app.partner(a.id, b.id).await;
    let case = app.create_case(&a.user, "Burglary").await;
    let share = json!({ "scope": { "kind": "case" }, "target": { "kind": "partner", "org_id": b.id, "recipients": [] } });
    let internal = json!({ "scope": { "kind": "case" }, "target": { "kind": "internal", "recipients": [{ "user_id": a.admin_id }] } });
    let shares = format!("/v1/cases/{case}/shares");
    assert_all_refused(
        &app,
        [share.clone(), internal].map(|body| {
            Call::post(&shares, &a.user, body)
                .refused(StatusCode::CONFLICT, "advanced_sharing_not_set_up")
        }),
    )
    .await;

    let (s, v) = app.get("/v1/sharing/setup", &a.admin).await;
    assert_eq!((s, &v["completed"]), (StatusCode::OK, &json!(false)));
    // Only admins run the wizard.
    let (s, _) = app
        .post(
            "/v1/sharing/setup",
            &a.user,
            json!({ "default_policy": policy(true), "auto_import": false }),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let policy_id = app.setup(&a, policy(true), false).await;
    assert_refused(
        &app,
        Method::POST,
        "/v1/sharing/setup",
        &a.admin,
        Some(json!({ "default_policy": policy(false), "auto_import": false })),
        StatusCode::CONFLICT,
        "conflict",
    )
    .await;
    let (_, v) = app.get("/v1/sharing/setup", &a.admin).await;
    assert_eq!(v["completed"], true);
    assert_eq!(v["default_policy_id"], policy_id.to_string());

    // Editable at any time afterwards.
    let mut edited = policy(true);
    set(&mut edited, "evidence_terms.gps", false);
    let (s, v) = app
        .put(&format!("/v1/policies/{policy_id}"), &a.admin, edited)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (_, v) = app
        .get(&format!("/v1/partners/{}/policy", b.id), &a.user)
        .await;
    assert_eq!(v["evidence_terms"]["gps"], false);
    assert_eq!(
        v["policy_source"],
        json!(null)
            .as_str()
            .map_or(v["policy_source"].clone(), |_| json!(null))
    );
    assert_eq!(v["source"], "default");

    let (s, v) = app
        .post(&format!("/v1/cases/{case}/shares"), &a.user, share)
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    app.stop().await;
}

// R3
#[tokio::test]
async fn r3_per_partner_policy_overrides_default_and_removal_falls_back() {
    let app = spawn_app().await;
    let a = app.create_org("Alpha PD", "lea").await;
    let b = app.create_org("Beta PD", "lea").await;
    let c = app.create_org("Gamma DA", "justice").await;
    app.partner(a.id, b.id).await;
    app.partner(a.id, c.id).await;
    let default_id = app.setup(&a, policy(false), false).await;
    let (s, p) = app.post("/v1/policies", &a.admin, policy(true)).await;
    assert_eq!(s, StatusCode::CREATED, "{p}");
    let partner_policy = p["id"].as_str().unwrap().to_string();
    let (s, v) = app
        .put(
            &format!("/v1/partners/{}/policy", c.id),
            &a.admin,
            json!({ "policy_id": partner_policy }),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");

    let (_, v) = app
        .get(&format!("/v1/partners/{}/policy", c.id), &a.user)
        .await;
    assert_eq!(
        (v["policy_id"].as_str(), v["source"].as_str()),
        (Some(partner_policy.as_str()), Some("partner"))
    );
    assert_eq!(v["permissions"]["copy_download"], true);
    let (_, v) = app
        .get(&format!("/v1/partners/{}/policy", b.id), &a.user)
        .await;
    assert_eq!(
        v["policy_id"],
        default_id.to_string(),
        "other partners keep the default"
    );

    let (_, list) = app.get("/v1/partners", &a.admin).await;
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    let gamma = items
        .iter()
        .find(|i| i["org"]["id"] == c.id.to_string())
        .unwrap();
    assert_eq!(gamma["policy_source"], "partner");

    let (s, _) = app
        .call(
            Method::DELETE,
            &format!("/v1/partners/{}/policy", c.id),
            Some(&a.admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (_, v) = app
        .get(&format!("/v1/partners/{}/policy", c.id), &a.user)
        .await;
    assert_eq!(
        (v["policy_id"].as_str(), v["source"].as_str()),
        (Some(default_id.to_string().as_str()), Some("default"))
    );

    // Another org's policy id cannot be assigned.
    let d = app.create_org("Delta PD", "lea").await;
    let d_policy = app.setup(&d, policy(true), false).await;
    assert_refused(
        &app,
        Method::PUT,
        &format!("/v1/partners/{}/policy", c.id),
        &a.admin,
        Some(json!({ "policy_id": d_policy })),
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation",
    )
    .await;
    let (s, _) = app.get(&format!("/v1/policies/{d_policy}"), &a.admin).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "another org's policy answers 404");
    app.stop().await;
}

// R4
#[tokio::test]
async fn r4_non_partners_are_refused_and_fpp_needs_classic_sharing() {
    let app = spawn_app().await;
    let a = app.create_org("Alpha PD", "lea").await;
    let stranger = app.create_org("Stranger PD", "lea").await;
    let fpp = app.create_org("Free Prosecutor", "fpp").await;
    app.partner(a.id, fpp.id).await;
    app.setup(&a, policy(true), false).await;
    let case = app.create_case(&a.user, "Case").await;
    let to = |org: Uuid| json!({ "scope": { "kind": "case" }, "target": { "kind": "partner", "org_id": org, "recipients": [] } });
    let shares = format!("/v1/cases/{case}/shares");
    assert_all_refused(
        &app,
        [
            Call::post(&shares, &a.user, to(stranger.id))
                .refused(StatusCode::UNPROCESSABLE_ENTITY, "not_a_partner"),
            Call::post(&shares, &a.user, to(Uuid::new_v4()))
                .refused(StatusCode::UNPROCESSABLE_ENTITY, "not_a_partner"),
            Call::post(&shares, &a.user, to(fpp.id))
                .refused(StatusCode::CONFLICT, "classic_sharing_required"),
        ],
    )
    .await;
    assert_eq!(app.count("SELECT count(*) FROM shares").await, 0);
    app.stop().await;
}

// R5
#[tokio::test]
async fn r5_receiving_settings() {
    let app = spawn_app().await;
    let lea = app.create_org("Alpha PD", "lea").await;
    let justice = app.create_org("County DA", "justice").await;
    let (_, v) = app.get("/v1/sharing/settings", &justice.admin).await;
    assert_eq!(
        (v["auto_import"].as_bool(), v["auto_sync"].as_bool()),
        (Some(true), Some(false)),
        "justice imports by default"
    );
    let (_, v) = app.get("/v1/sharing/settings", &lea.admin).await;
    assert_eq!(v["auto_import"], false);
    // LEA chooses auto-import at setup.
    app.setup(&lea, policy(true), true).await;
    let (_, v) = app.get("/v1/sharing/settings", &lea.admin).await;
    assert_eq!(v["auto_import"], true);
    assert_refused(
        &app,
        Method::PUT,
        "/v1/sharing/settings",
        &lea.admin,
        Some(json!({ "auto_sync": true })),
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation",
    )
    .await;
    let (s, v) = app
        .put(
            "/v1/sharing/settings",
            &justice.admin,
            json!({ "auto_sync": true, "auto_import": false }),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        (v["auto_import"].as_bool(), v["auto_sync"].as_bool()),
        (Some(false), Some(true))
    );
    let (s, _) = app
        .put(
            "/v1/sharing/settings",
            &justice.user,
            json!({ "auto_sync": false }),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    app.stop().await;
}

#[tokio::test]
async fn bad_input_gets_the_contract_error_shape_and_changes_nothing() {
    let app = spawn_app().await;
    let a = app.create_org("Alpha PD", "lea").await;
    let b = app.create_org("Beta PD", "lea").await;
    let case = app.create_case(&a.user, "Case").await;

    assert_all_refused(
        &app,
        [
            // Missing and bad tokens.
            Call::new(Method::GET, "/v1/cases", None, None)
                .refused(StatusCode::UNAUTHORIZED, "unauthorized")
                .message(""),
            Call::get("/v1/cases", "nope").refused(StatusCode::UNAUTHORIZED, "unauthorized"),
            Call::new(
                Method::POST,
                "/v1/orgs",
                None,
                Some(json!({ "name": "x", "kind": "lea" })),
            )
            .status(StatusCode::UNAUTHORIZED),
            // Wrong role: users cannot bootstrap, the service is not a user, users are not admins.
            Call::post("/v1/orgs", &a.admin, json!({ "name": "x", "kind": "lea" }))
                .refused(StatusCode::FORBIDDEN, "forbidden"),
            Call::get("/v1/cases", SERVICE_TOKEN).status(StatusCode::FORBIDDEN),
            Call::post("/v1/policies", &a.user, policy(true)).status(StatusCode::FORBIDDEN),
        ],
    )
    .await;
    // Malformed JSON and wrong types are validation errors.
    let mut bad_policy = policy(true);
    bad_policy["permissions"]["copy_download"] = json!("yes");
    let mut missing = policy(true);
    missing["evidence_terms"]
        .as_object_mut()
        .unwrap()
        .remove("gps");
    let evidence_path = format!("/v1/cases/{case}/evidence");
    let new_user = json!({ "name": "n", "email": "n@x.example", "role": "user" });
    assert_all_refused(
        &app,
        [
            Call::raw(Method::POST, "/v1/cases", &a.user, "{not json")
                .refused(StatusCode::UNPROCESSABLE_ENTITY, "validation"),
            Call::post(
                "/v1/cases",
                &a.user,
                json!({ "case_number": 7, "title": "t" }),
            )
            .refused(StatusCode::UNPROCESSABLE_ENTITY, "validation"),
            Call::post(
                "/v1/cases",
                &a.user,
                json!({ "case_number": " ", "title": "t" }),
            )
            .status(StatusCode::UNPROCESSABLE_ENTITY),
            Call::post(
                &evidence_path,
                &a.user,
                json!({ "title": "x", "gps": { "lat": "north" } }),
            )
            .status(StatusCode::UNPROCESSABLE_ENTITY),
            Call::post(
                &evidence_path,
                &a.user,
                json!({ "title": "x", "gps": { "lat": 91.0, "lon": 0.0 } }),
            )
            .status(StatusCode::UNPROCESSABLE_ENTITY),
            Call::post(
                &evidence_path,
                &a.user,
                json!({ "title": "x", "folder_id": Uuid::new_v4() }),
            )
            .status(StatusCode::UNPROCESSABLE_ENTITY),
            Call::post(
                "/v1/sharing/setup",
                &a.admin,
                json!({ "default_policy": bad_policy, "auto_import": true }),
            )
            .status(StatusCode::UNPROCESSABLE_ENTITY),
            Call::post(
                "/v1/sharing/setup",
                &a.admin,
                json!({ "default_policy": missing, "auto_import": true }),
            )
            .status(StatusCode::UNPROCESSABLE_ENTITY)
            .note("every policy leaf is required"),
            Call::post("/v1/orgs/not-a-uuid/users", SERVICE_TOKEN, new_user.clone())
                .status(StatusCode::NOT_FOUND),
            Call::post(
                format!("/v1/orgs/{}/users", Uuid::new_v4()),
                SERVICE_TOKEN,
                new_user,
            )
            .status(StatusCode::NOT_FOUND),
            Call::post(
                format!("/v1/orgs/{}/users", a.id),
                SERVICE_TOKEN,
                json!({ "name": "n", "email": "not-an-email", "role": "user" }),
            )
            .status(StatusCode::UNPROCESSABLE_ENTITY),
            Call::post(
                "/v1/partnerships",
                SERVICE_TOKEN,
                json!({ "org_ids": [a.id] }),
            )
            .status(StatusCode::UNPROCESSABLE_ENTITY),
            Call::post(
                format!("/v1/orgs/{}/groups", a.id),
                SERVICE_TOKEN,
                json!({ "name": "g", "member_ids": [b.user_id] }),
            )
            .status(StatusCode::UNPROCESSABLE_ENTITY)
            .note("a group holds only its own org's users"),
            Call::get(format!("/v1/jobs/{}", Uuid::new_v4()), SERVICE_TOKEN)
                .status(StatusCode::NOT_FOUND),
        ],
    )
    .await;

    // Unknown ids and another org's ids answer 404, never 403.
    let reads = [
        format!("/v1/cases/{case}"),
        format!("/v1/cases/{case}/evidence"),
        format!("/v1/cases/{case}/folders"),
        format!("/v1/cases/{case}/shares"),
        format!("/v1/cases/{case}/access"),
        format!("/v1/cases/{case}/audit"),
        format!("/v1/cases/{case}/import-details"),
        format!("/v1/cases/{}", Uuid::new_v4()),
        format!("/v1/shares/{}", Uuid::new_v4()),
    ];
    assert_all_refused(
        &app,
        reads.map(|path| Call::get(path, &b.admin).refused(StatusCode::NOT_FOUND, "not_found")),
    )
    .await;
    assert_all_refused(
        &app,
        [
            Call::patch(
                format!("/v1/cases/{case}"),
                &b.admin,
                json!({ "title": "mine" }),
            )
            .status(StatusCode::NOT_FOUND),
            Call::post(&evidence_path, &b.user, json!({ "title": "planted" }))
                .status(StatusCode::NOT_FOUND),
            Call::post(
                format!("/v1/cases/{case}/folders"),
                &b.user,
                json!({ "name": "planted" }),
            )
            .status(StatusCode::NOT_FOUND),
        ],
    )
    .await;

    let (evidence, title): (i64, String) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM evidence), (SELECT title FROM cases WHERE id = $1)",
    )
    .bind(case)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(
        (evidence, title.as_str()),
        (0, "Case"),
        "refused requests changed nothing"
    );
    app.stop().await;
}
