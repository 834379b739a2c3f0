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
