//! Bad input (issue "Hardening"): what PostgreSQL cannot store, or a body
//! that is not the object the contract describes, is refused with 422
//! `validation` naming the field, and changes nothing.

use crate::common::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use uuid::Uuid;

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

// Every answer carries a request id (the client's when it sent a sane one):
// in the `x-request-id` header and in every error body.
#[tokio::test]
async fn request_ids_are_in_headers_and_error_bodies() {
    let app = spawn_app().await;
    let a = app.create_org("Alpha PD", "lea").await;
    let res = app
        .send(
            app.client
                .get(format!("{}/v1/cases/{}", app.base, uuid::Uuid::new_v4()))
                .bearer_auth(&a.user)
                .header("x-request-id", "trace-42"),
        )
        .await;
    assert_eq!(res.status, StatusCode::NOT_FOUND);
    assert_eq!(res.headers["x-request-id"], "trace-42");
    let (_, body) = res.json();
    assert_eq!(body["request_id"], "trace-42");
    let res = app
        .send(app.client.get(format!("{}/v1/cases", app.base)).header(
            "x-request-id",
            "bad id with spaces and more than enough characters to be refused",
        ))
        .await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    let id = res.headers["x-request-id"].to_str().unwrap().to_string();
    assert!(
        uuid::Uuid::parse_str(&id).is_ok(),
        "a fresh id replaces an unusable one"
    );
    let (_, body) = res.json();
    assert_eq!(body["request_id"], id.as_str());
    app.stop().await;
}

// An upload that stops sending is refused after the idle timeout (408) and
// keeps nothing; the server does not hold it forever.
#[tokio::test]
async fn a_stalled_upload_is_refused_after_the_idle_timeout() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = spawn_with(Options {
        tune: Some(std::sync::Arc::new(|s| s.upload_idle_timeout_secs = 1)),
        ..Default::default()
    })
    .await;
    let a = app.create_org("Alpha PD", "lea").await;
    let case = app.create_case(&a.user, "Case").await;
    let (ev, _) = app
        .add_evidence(&a.user, case, json!({ "title": "video" }))
        .await;
    let addr = app.base.trim_start_matches("http://").to_string();
    let mut tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "PUT /v1/evidence/{ev}/content HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/octet-stream\r\nContent-Length: 1000000\r\n\r\n",
        a.user
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    tcp.write_all(&[7u8; 1000]).await.unwrap();
    // ...and then nothing more.
    let mut answer = vec![0u8; 4096];
    let n = tokio::time::timeout(std::time::Duration::from_secs(20), tcp.read(&mut answer))
        .await
        .expect("answered before the test gave up")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer[..n]).to_string();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"timeout\""), "{answer}");
    // Sent by hand, so checked against the document by hand.
    let (head, body) = answer.split_once("\r\n\r\n").expect("a whole answer");
    let content_type = head
        .lines()
        .find_map(|l| l.strip_prefix("content-type: "))
        .map(str::to_string);
    contract(&app.client, &app.base).await.assert(&Answer {
        method: &Method::PUT,
        path: &format!("/v1/evidence/{ev}/content"),
        status: StatusCode::REQUEST_TIMEOUT,
        content_type: content_type.as_deref(),
        body: body.as_bytes(),
    });
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM evidence WHERE id = '{ev}' AND data ? 'content'"
        ))
        .await,
        0
    );
    app.stop().await;
}

/// Every page of the list at `path`, `limit` items a page, following
/// `next_cursor` (each page answered 200): how many pages, and the items in
/// order.
async fn walk(app: &TestApp, path: &str, token: &str, limit: usize) -> (usize, Vec<Value>) {
    let (mut items, mut cursor, mut pages) = (Vec::new(), None::<String>, 0);
    loop {
        let url = match &cursor {
            None => format!("{path}?limit={limit}"),
            Some(c) => format!("{path}?limit={limit}&cursor={c}"),
        };
        let (s, v) = app.get(&url, token).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        pages += 1;
        items.extend(v["items"].as_array().unwrap().iter().cloned());
        match v["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return (pages, items),
        }
    }
}

/// The string `field` of each item.
fn texts(items: &[Value], field: &str) -> Vec<String> {
    items
        .iter()
        .map(|i| i[field].as_str().unwrap().to_string())
        .collect()
}

// Lists are paginated (API.md): ?limit= (default 100, max 1,000) and an
// opaque ?cursor=; next_cursor is null on the last page.
#[tokio::test]
async fn lists_are_paginated_with_an_opaque_cursor() {
    let app = spawn_app().await;
    let a = app.create_org("Alpha PD", "lea").await;
    let case = app.create_case(&a.user, "Case").await;
    app.create_case(&a.user, "Second case").await;
    for i in 0..5 {
        app.add_evidence(&a.user, case, json!({ "title": format!("item {i}") }))
            .await;
    }
    let (pages, items) = walk(&app, &format!("/v1/cases/{case}/evidence"), &a.user, 2).await;
    assert_eq!(pages, 3);
    assert_eq!(
        texts(&items, "title"),
        (0..5).map(|i| format!("item {i}")).collect::<Vec<_>>()
    );
    // The audit trail pages by keyset too: every entry once, in order.
    let (_, whole) = app
        .get(&format!("/v1/cases/{case}/audit?limit=1000"), &a.user)
        .await;
    let all = whole["items"].as_array().unwrap();
    assert!(all.len() >= 6, "{whole}");
    let (_, paged) = walk(&app, &format!("/v1/cases/{case}/audit"), &a.user, 4).await;
    assert_eq!(&paged, all);
    let (_, v) = app.get("/v1/cases?limit=1", &a.user).await;
    assert_eq!(v["items"].as_array().unwrap().len(), 1);
    assert!(v["next_cursor"].is_string());
    let (_, v) = app.get("/v1/cases", &a.user).await;
    assert_eq!(v["items"].as_array().unwrap().len(), 2);
    assert!(v["next_cursor"].is_null());
    // The case list pages by keyset in SQL: every case once, in the order
    // of the whole list; a cursor of a case not in the list is refused.
    for i in 0..3 {
        app.create_case(&a.user, &format!("More {i}")).await;
    }
    let (_, whole) = app.get("/v1/cases", &a.user).await;
    let (pages, paged) = walk(&app, "/v1/cases", &a.user, 2).await;
    assert_eq!((pages, paged.len()), (3, 5));
    assert_eq!(
        texts(&paged, "id"),
        texts(whole["items"].as_array().unwrap(), "id")
    );
    let stranger = hex::encode(format!("v1:{}", Uuid::new_v4()));
    let (s, v) = app
        .get(&format!("/v1/cases?cursor={stranger}"), &a.user)
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let evidence = format!("/v1/cases/{case}/evidence");
    assert_all_refused(
        &app,
        [
            Call::get(format!("{evidence}?limit=0"), &a.user)
                .refused(StatusCode::UNPROCESSABLE_ENTITY, "validation"),
            Call::get(format!("{evidence}?limit=1001"), &a.user)
                .refused(StatusCode::UNPROCESSABLE_ENTITY, "validation"),
            Call::get(format!("{evidence}?cursor=nonsense"), &a.user)
                .refused(StatusCode::UNPROCESSABLE_ENTITY, "validation"),
            Call::get("/v1/cases?limit=abc", &a.user)
                .refused(StatusCode::UNPROCESSABLE_ENTITY, "validation"),
        ],
    )
    .await;
    app.stop().await;
}

// R18, R10: an external case's evidence pages by keyset too, each page
// filtered by the policy; a cursor naming an item the partner was not given
// is refused like any stale cursor (and says nothing about that item).
#[tokio::test]
async fn r10_r18_external_evidence_pages_by_keyset_and_stays_filtered() {
    let app = spawn_app().await;
    let mut p = policy(true);
    set(&mut p, "evidence_terms.gps", false);
    let (a, b, case) = case_shared_with_partner(&app, p, "Paged").await;
    for i in 0..5 {
        app.add_evidence(
            &a.user,
            case,
            json!({ "title": format!("item {i}"), "gps": { "lat": 51.5, "lon": -0.12 } }),
        )
        .await;
    }
    app.drain().await;
    let (pages, items) = walk(&app, &format!("/v1/cases/{case}/evidence"), &b.admin, 2).await;
    assert_eq!(pages, 3);
    for item in &items {
        assert!(
            item.get("gps").is_none() || item["gps"].is_null(),
            "R10: {item}"
        );
    }
    assert_eq!(
        texts(&items, "title"),
        (0..5).map(|i| format!("item {i}")).collect::<Vec<_>>()
    );
    // A cursor built from an item of another case of the sharer.
    let other = app.create_case(&a.user, "Not shared").await;
    let (hidden, _) = app
        .add_evidence(&a.user, other, json!({ "title": "not shared" }))
        .await;
    // Cursors are opaque but not secret: hex of `v1:<id>`.
    let stale = hex::encode(format!("v1:{hidden}"));
    let (s, v) = app
        .get(
            &format!("/v1/cases/{case}/evidence?cursor={stale}"),
            &b.admin,
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(!v.to_string().contains("not shared"), "{v}");
    app.stop().await;
}

// Per-token rate limit: over it, 429 rate_limited with Retry-After; other
// tokens are not affected.
#[tokio::test]
async fn a_token_over_its_rate_gets_429_with_retry_after() {
    let app = spawn_with(Options {
        tune: Some(std::sync::Arc::new(|s| {
            s.rate_limit_per_second = 1;
            s.rate_limit_burst = 3;
        })),
        ..Default::default()
    })
    .await;
    let a = app.create_org("Alpha PD", "lea").await;
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for _ in 0..6 {
        let res = app
            .send(
                app.client
                    .get(format!("{}/v1/cases", app.base))
                    .bearer_auth(&a.user),
            )
            .await;
        statuses.push(res.status.as_u16());
        if res.status == StatusCode::TOO_MANY_REQUESTS {
            retry_after = res
                .headers
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_string());
            let (_, body) = res.json();
            assert_eq!(body["error"], "rate_limited");
        }
    }
    assert!(statuses.contains(&429), "{statuses:?}");
    assert_eq!(statuses[0], 200);
    assert!(retry_after.is_some_and(|s| s.parse::<u64>().unwrap() >= 1));
    // Issue 19 item 5: spaces around the token are the same token, not a
    // new budget.
    for spaced in [
        format!("Bearer  {}", a.user),
        format!("Bearer {}   ", a.user),
    ] {
        let res = app
            .send(
                app.client
                    .get(format!("{}/v1/cases", app.base))
                    .header("authorization", spaced),
            )
            .await;
        assert_eq!(res.status, StatusCode::TOO_MANY_REQUESTS);
    }
    let (s, _) = app.get("/v1/cases", &a.admin).await;
    assert_eq!(s, StatusCode::OK, "another token has its own budget");
    app.stop().await;
}

// Service tokens are bound to the orgs they may act for: a bound token adds
// evidence only to its orgs' cases (another org's case does not exist for
// it), creates users and groups only there, and provisions nothing.
#[tokio::test]
async fn a_bound_service_token_acts_only_for_its_orgs() {
    let app = spawn_app().await;
    let a = app.create_org("Alpha PD", "lea").await;
    let b = app.create_org("Beta PD", "lea").await;
    let case_a = app.create_case(&a.user, "Alpha case").await;
    let case_b = app.create_case(&b.user, "Beta case").await;
    let alpha = a.id;
    let api = spawn_with(Options {
        roles: caseshare::startup::Roles::API,
        join: Some((app.database_url.clone(), app.prefix.clone())),
        tune: Some(std::sync::Arc::new(move |s| {
            s.service_tokens.push(format!("alpha-upstream={alpha}"));
        })),
        ..Default::default()
    })
    .await;
    let token = "alpha-upstream";
    let (s, v) = api
        .post(
            &format!("/v1/cases/{case_a}/evidence"),
            token,
            json!({ "title": "from Alpha's system" }),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    let evidence_b = app
        .count(&format!(
            "SELECT count(*) FROM evidence WHERE case_id = '{case_b}'"
        ))
        .await;
    assert_all_refused(
        &api,
        [
            Call::post(
                format!("/v1/cases/{case_b}/evidence"),
                token,
                json!({ "title": "into Beta" }),
            )
            .refused(StatusCode::NOT_FOUND, "not_found"),
            Call::post(
                format!("/v1/cases/{case_b}/evidence:batch"),
                token,
                json!({ "items": [{ "title": "into Beta" }] }),
            )
            .refused(StatusCode::NOT_FOUND, "not_found"),
            Call::post(
                format!("/v1/orgs/{}/users", b.id),
                token,
                json!({ "name": "Mole", "email": "mole@beta.example", "role": "admin" }),
            )
            .refused(StatusCode::FORBIDDEN, "forbidden"),
            Call::post(
                "/v1/orgs",
                token,
                json!({ "name": "Rogue PD", "kind": "lea" }),
            )
            .refused(StatusCode::FORBIDDEN, "forbidden"),
            Call::post(
                "/v1/partnerships",
                token,
                json!({ "org_ids": [a.id, b.id] }),
            )
            .refused(StatusCode::FORBIDDEN, "forbidden"),
        ],
    )
    .await;
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM evidence WHERE case_id = '{case_b}'"
        ))
        .await,
        evidence_b
    );
    let (s, v) = api
        .post(
            &format!("/v1/orgs/{}/users", a.id),
            token,
            json!({ "name": "Alpha Clerk", "email": "clerk@alpha.example", "role": "user" }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    api.stop().await;
    app.stop().await;
}

// A partner share is not a mail relay: its email recipients must be at the
// partner's own domains (set at creation); an org without domains is
// reached only through its users, groups, badges and notification address.
#[tokio::test]
async fn email_recipients_of_a_partner_share_are_at_the_partners_domains() {
    let app = spawn_app().await;
    let (a, b, case) = two_partners(&app, policy(true)).await;
    let (s, no_domains) = app
        .post(
            "/v1/orgs",
            SERVICE_TOKEN,
            json!({ "name": "Gamma PD", "kind": "lea" }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{no_domains}");
    let gamma: uuid::Uuid = no_domains["id"].as_str().unwrap().parse().unwrap();
    app.partner(a.id, gamma).await;
    let shares = format!("/v1/cases/{case}/shares");
    assert_all_refused(
        &app,
        [
            Call::post(
                &shares,
                &a.user,
                partner_share(b.id, json!([{ "email": "phish@elsewhere.example" }])),
            )
            .refused(StatusCode::UNPROCESSABLE_ENTITY, "validation")
            .message("beta-pd.example"),
            Call::post(
                &shares,
                &a.user,
                partner_share(b.id, json!([{ "email": "x@notbeta-pd.example" }])),
            )
            .refused(StatusCode::UNPROCESSABLE_ENTITY, "validation"),
            Call::post(
                &shares,
                &a.user,
                partner_share(gamma, json!([{ "email": "someone@gamma.example" }])),
            )
            .refused(StatusCode::UNPROCESSABLE_ENTITY, "validation")
            .message("no email domains"),
            Call::post(
                "/v1/orgs",
                SERVICE_TOKEN,
                json!({ "name": "Bad", "kind": "lea", "email_domains": ["not a domain"] }),
            )
            .refused(StatusCode::UNPROCESSABLE_ENTITY, "validation"),
        ],
    )
    .await;
    assert_eq!(app.count("SELECT count(*) FROM shares").await, 0);
    // At the domain, or below it: accepted.
    let (s, v) = app
        .post(
            &shares,
            &a.user,
            partner_share(
                b.id,
                json!([{ "email": "Analyst@Records.Beta-PD.example" }]),
            ),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    app.stop().await;
}

// The served OpenAPI document lists the statuses every operation can answer
// with the error schema: 401 where a token is needed, 429, 500, 503,
// 413/422 with a body, and 404 with an id in the path.
#[tokio::test]
async fn openapi_lists_the_error_statuses_of_every_operation() {
    let app = spawn_app().await;
    let doc: serde_json::Value = app
        .client
        .get(format!("{}/openapi.json", app.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        if !path.starts_with("/v1/") {
            continue;
        }
        for (method, op) in item.as_object().unwrap() {
            let responses = op["responses"].as_object().unwrap();
            let mut want = vec!["429", "500", "503"];
            // Anonymous operations (`security: []`: downloads by token, an
            // org's public keys) cannot answer 401.
            if op["security"] != serde_json::json!([]) {
                want.push("401");
            }
            // A malformed id in the path is `not_found` (`extract::Path`).
            if path.contains('{') {
                want.push("404");
            }
            if op.get("requestBody").is_some() {
                want.extend(["413", "422"]);
            }
            for status in want {
                let r = responses
                    .get(status)
                    .unwrap_or_else(|| panic!("{method} {path} does not list {status}"));
                assert_eq!(
                    r["content"]["application/json"]["schema"]["$ref"],
                    "#/components/schemas/ErrorBody",
                    "{method} {path} {status}"
                );
            }
            checked += 1;
        }
    }
    assert!(checked > 40, "{checked} operations");
    for anonymous in ["/v1/downloads/{token}", "/v1/orgs/{org_id}/keys"] {
        assert!(doc["paths"][anonymous]["get"]["responses"]
            .get("401")
            .is_none());
    }
    app.stop().await;
}

// The checker every answer of the tests goes through (`common::contract`)
// refuses what the served document does not allow: an undocumented status,
// a body missing a required field or of the wrong type, an undocumented
// `/v1/` path, a body where none is documented.
#[tokio::test]
async fn the_contract_checker_refuses_what_the_document_does_not_allow() {
    let app = spawn_app().await;
    let contract = contract(&app.client, &app.base).await;
    let check =
        |method: &Method, path: &str, status: u16, content_type: Option<&str>, body: &str| {
            contract.check(&Answer {
                method,
                path,
                status: StatusCode::from_u16(status).unwrap(),
                content_type,
                body: body.as_bytes(),
            })
        };
    let json = Some("application/json");
    let case = uuid::Uuid::new_v4();
    let error = r#"{"error": "not_found", "message": "no such case"}"#;
    assert_eq!(
        contract.template(&format!("/v1/cases/{case}?limit=1")),
        Some("/v1/cases/{case_id}")
    );
    assert_eq!(
        contract.template("/v1/shares/revoke"),
        Some("/v1/shares/revoke"),
        "a literal segment wins over a parameter"
    );
    check(&Method::GET, &format!("/v1/cases/{case}"), 404, json, error).unwrap();
    let refused = [
        check(&Method::GET, "/v1/cases", 418, json, error),
        check(
            &Method::GET,
            &format!("/v1/cases/{case}"),
            404,
            json,
            r#"{"error": 1}"#,
        ),
        check(&Method::GET, &format!("/v1/cases/{case}"), 200, json, "{}"),
        check(&Method::GET, "/v1/nowhere", 404, json, error),
        check(&Method::DELETE, "/v1/cases", 405, None, ""),
        check(
            &Method::DELETE,
            &format!("/v1/partners/{case}/policy"),
            204,
            json,
            "{}",
        ),
        check(
            &Method::GET,
            &format!("/v1/cases/{case}"),
            404,
            Some("text/plain"),
            "nope",
        ),
    ];
    for (i, r) in refused.iter().enumerate() {
        assert!(r.is_err(), "#{i} should be refused");
    }
    let message = refused[1].as_ref().unwrap_err();
    for part in ["GET /v1/cases/", "404", "\"/error\"", "{\"error\": 1}"] {
        assert!(message.contains(part), "{part:?} in {message}");
    }
    // Outside `/v1/`, a path the document does not describe is not checked.
    check(&Method::GET, "/openapi.json", 200, json, "{}").unwrap();
    app.stop().await;
}

// A bounded fuzz of the served OpenAPI document: every operation, called by
// a user, an admin and the service with real and random ids, with invalid
// bodies and odd queries, answers 4xx in the contract's error shape, never
// 5xx, and never accepts an invalid body; every answer's status is listed
// for its operation and its body matches the document's schema.
#[tokio::test]
async fn every_operation_refuses_invalid_input_with_4xx_never_5xx() {
    use reqwest::Method;
    let app = spawn_app().await;
    let (a, b, case) = case_shared_with_partner(&app, policy(true), "Fuzzed").await;
    let (ev, _) = app
        .add_evidence(&a.user, case, json!({ "title": "item" }))
        .await;
    app.drain().await;
    let doc: serde_json::Value = app
        .client
        .get(format!("{}/openapi.json", app.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    // Every answer must also be one the document allows: its status listed
    // for the operation, its body matching that status's schema.
    let contract = contract(&app.client, &app.base).await;
    let ids = [
        case.to_string(),
        ev.to_string(),
        uuid::Uuid::new_v4().to_string(),
        "not-a-uuid".into(),
    ];
    let bodies: Vec<String> = vec![
        "[]".into(),
        "[null, null]".into(),
        "{}".into(),
        "\"text\"".into(),
        "{\"unknown_field\": 1}".into(),
        "{\"name\": \"a\\u0000b\", \"title\": \"\\u0000\"}".into(),
        "{\"scope\": {\"kind\": \"case\"}, \"target\": {\"kind\": \"partner\", \"org_id\": 1}}"
            .into(),
        "{\"items\": [{}]}".into(),
        "{".into(),
    ];
    let tokens = [
        a.user.as_str(),
        a.admin.as_str(),
        b.admin.as_str(),
        SERVICE_TOKEN,
    ];
    let mut calls = 0;
    let mut failures = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        if !path.starts_with("/v1/") || path.contains("downloads") {
            continue;
        }
        for (method, op) in item.as_object().unwrap() {
            let method: Method = method.to_uppercase().parse().unwrap();
            for id in &ids {
                let url = path
                    .split('/')
                    .map(|seg| {
                        if seg.starts_with('{') {
                            id.as_str()
                        } else {
                            seg
                        }
                    })
                    .collect::<Vec<_>>()
                    .join("/");
                for token in tokens {
                    let sends: Vec<Option<&String>> = if op.get("requestBody").is_some() {
                        bodies.iter().map(Some).collect()
                    } else {
                        vec![None]
                    };
                    for body in sends {
                        let mut req = app
                            .client
                            .request(
                                method.clone(),
                                format!("{}{url}?limit=-1&cursor=%00", app.base),
                            )
                            .bearer_auth(token);
                        if let Some(body) = body {
                            req = req
                                .header("content-type", "application/json")
                                .body(body.clone());
                        }
                        let (sent, at, res) = app.fetch(req).await;
                        let status = res.status;
                        let text = String::from_utf8_lossy(&res.body).into_owned();
                        calls += 1;
                        let what = format!("{method} {url} {body:?}: {status} {text}");
                        if let Err(e) = contract.check(&res.answer(&sent, &at)) {
                            failures.push(format!("{e} (body sent: {body:?})"));
                        }
                        if status.is_server_error() {
                            failures.push(what);
                        } else if status.is_success()
                            // `{}` is a valid empty patch or settings change;
                            // content is any bytes.
                            && body.is_some_and(|b| b != "{}")
                            && !path.ends_with("/content")
                        {
                            failures.push(format!("accepted an invalid body: {what}"));
                        } else if status.is_client_error()
                            && status != StatusCode::METHOD_NOT_ALLOWED
                            && !serde_json::from_str::<serde_json::Value>(&text)
                                .is_ok_and(|v| v["error"].is_string())
                        {
                            failures.push(format!("not the error shape: {what}"));
                        }
                    }
                }
            }
        }
    }
    assert!(calls > 500, "{calls} calls");
    assert!(
        failures.is_empty(),
        "{} of {calls}:\n{}",
        failures.len(),
        failures.join("\n")
    );
    app.stop().await;
}

// Issue 19 item 5 (slowloris): a client that dribbles its request headers is
// disconnected once the header-read timeout passes, while a client that
// sends its request at once on another connection is answered meanwhile.
#[tokio::test]
async fn a_connection_that_never_finishes_its_headers_is_closed() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = spawn_with(Options {
        tune: Some(std::sync::Arc::new(|s| s.header_read_timeout_secs = 1)),
        ..Default::default()
    })
    .await;
    let addr = app.base.trim_start_matches("http://").to_string();
    let mut slow = tokio::net::TcpStream::connect(&addr).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    // One header byte a few times a second: never a complete request.
    let dribble = async {
        let mut buf = [0u8; 256];
        loop {
            tokio::select! {
                read = slow.read(&mut buf) => break read,
                _ = tokio::time::sleep(std::time::Duration::from_millis(300)) => {
                    if slow.write_all(b"X").await.is_err() {
                        break Ok(0);
                    }
                }
            }
        }
    };
    let (status, _) = app.get("/healthz", "").await;
    assert_eq!(status, StatusCode::OK, "others are served meanwhile");
    // The server gives up on the headers: the connection ends (hyper may
    // first answer 408), well before this generous bound.
    let ended = tokio::time::timeout(std::time::Duration::from_secs(15), dribble)
        .await
        .expect("the slow connection is still open after 15 s");
    match ended {
        Ok(0) | Err(_) => {}
        Ok(n) => {
            let mut rest = Vec::new();
            let _ = tokio::time::timeout(
                std::time::Duration::from_secs(5),
                slow.read_to_end(&mut rest),
            )
            .await
            .expect("closed after its answer");
            assert!(n > 0);
        }
    }
    app.stop().await;
}
