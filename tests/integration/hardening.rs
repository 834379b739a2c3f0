//! Bad input (issue "Hardening"): what PostgreSQL cannot store, or a body
//! that is not the object the contract describes, is refused with 422
//! `validation` naming the field, and changes nothing.

use crate::common::*;
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn nul_characters_and_non_object_bodies_are_refused_naming_the_field() {
    let app = spawn_app().await;
    let a = app.create_org("Alpha PD", "lea").await;
    app.setup(&a, policy(true), false).await;
    let case = app.create_case(&a.user, "Case").await;
    let mut nul_policy = policy(true);
    nul_policy["name"] = json!("bad\u{0}name");
    let before = (
        app.count("SELECT count(*) FROM policies").await,
        app.count("SELECT count(*) FROM cases").await,
        app.count("SELECT count(*) FROM audit_log").await,
    );
    let probes: Vec<(Call, &str)> = vec![
        (Call::post("/v1/policies", &a.admin, nul_policy), "name"),
        (
            Call::post(
                "/v1/cases",
                &a.user,
                json!({ "case_number": "1", "title": "t", "tags": ["ok", "x\u{0}"] }),
            ),
            "tags[1]",
        ),
        (
            Call::post(
                format!("/v1/cases/{case}/evidence"),
                &a.user,
                json!({ "title": "t", "custom_metadata": { "k": "\u{0}" } }),
            ),
            "custom_metadata.k",
        ),
    ];
    assert_all_refused(
        &app,
        probes.into_iter().map(|(call, field)| {
            call.refused(StatusCode::UNPROCESSABLE_ENTITY, "validation")
                .message(field)
        }),
    )
    .await;
    assert_all_refused(
        &app,
        [
            Call::new(
                Method::PUT,
                "/v1/sharing/settings",
                Some(a.admin.as_str()),
                Some(json!([null, null])),
            )
            .refused(StatusCode::UNPROCESSABLE_ENTITY, "validation")
            .note("a struct filled by position is not the contract's object"),
            Call::raw(Method::POST, "/v1/cases", &a.user, "{\"title\": 1")
                .refused(StatusCode::UNPROCESSABLE_ENTITY, "validation"),
        ],
    )
    .await;
    let after = (
        app.count("SELECT count(*) FROM policies").await,
        app.count("SELECT count(*) FROM cases").await,
        app.count("SELECT count(*) FROM audit_log").await,
    );
    assert_eq!(before, after, "refusals change nothing");
    app.stop().await;
}

// Limits: recipients per share (a cap on email fan-out) and the length of
// every text field, refused with 422 naming the field, nothing recorded.
#[tokio::test]
async fn recipient_caps_and_field_lengths_are_refused_naming_the_limit() {
    let app = spawn_app().await;
    let (a, b, case) = two_partners(&app, policy(true)).await;
    let many: Vec<serde_json::Value> = (0..101)
        .map(|i| json!({ "email": format!("person{i}@beta.example") }))
        .collect();
    let long = "x".repeat(501);
    let shares = format!("/v1/cases/{case}/shares");
    assert_all_refused(
        &app,
        [
            Call::post(&shares, &a.user, partner_share(b.id, json!(many)))
                .refused(StatusCode::UNPROCESSABLE_ENTITY, "validation")
                .message("100"),
            Call::post(
                &shares,
                &a.user,
                json!({ "scope": { "kind": "case" }, "message": "m".repeat(10_001),
                        "target": { "kind": "partner", "org_id": b.id } }),
            )
            .refused(StatusCode::UNPROCESSABLE_ENTITY, "validation")
            .message("message"),
            Call::post(
                "/v1/cases",
                &a.user,
                json!({ "case_number": "1", "title": long }),
            )
            .refused(StatusCode::UNPROCESSABLE_ENTITY, "validation")
            .message("title"),
            Call::post(
                format!("/v1/cases/{case}/evidence"),
                &a.user,
                json!({ "title": "t", "tags": ["ok", "y".repeat(501)] }),
            )
            .refused(StatusCode::UNPROCESSABLE_ENTITY, "validation")
            .message("tags[1]"),
            Call::post(
                format!("/v1/cases/{case}/folders"),
                &a.user,
                json!({ "name": "f".repeat(201) }),
            )
            .refused(StatusCode::UNPROCESSABLE_ENTITY, "validation")
            .message("name"),
        ],
    )
    .await;
    assert_eq!(app.count("SELECT count(*) FROM shares").await, 0);
    assert_eq!(app.count("SELECT count(*) FROM evidence").await, 0);
    app.stop().await;
}
