//! `Idempotency-Key` on POST (hardening): a client that lost the answer of a
//! command and sends it again gets the first answer, never a second share,
//! link share, import or email; through the real API, PostgreSQL, RabbitMQ
//! and the SMTP sink. (R32: each recipient is emailed once.)

use crate::common::*;

use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use uuid::Uuid;

struct Answer {
    status: StatusCode,
    body: Value,
    replayed: bool,
}

async fn keyed(app: &TestApp, path: &str, token: &str, key: &str, body: &Value) -> Answer {
    keyed_at(&app.client, &app.base, path, token, key, body).await
}

async fn keyed_at(
    client: &reqwest::Client,
    base: &str,
    path: &str,
    token: &str,
    key: &str,
    body: &Value,
) -> Answer {
    let res = client
        .post(format!("{base}{path}"))
        .bearer_auth(token)
        .header("Idempotency-Key", key)
        .json(body)
        .send()
        .await
        .expect("request sent");
    let status = res.status();
    let replayed = res
        .headers()
        .get("idempotent-replayed")
        .is_some_and(|v| v == "true");
    let text = res.text().await.unwrap();
    Answer {
        status,
        body: serde_json::from_str(&text).unwrap_or(Value::String(text)),
        replayed,
    }
}

/// Send a keyed POST and hang up after `wait` without reading the answer, as
/// a client whose connection broke does.
async fn send_and_hang_up(
    app: &TestApp,
    path: &str,
    token: &str,
    key: &str,
    body: &Value,
    wait: Duration,
) {
    let addr = app.base.trim_start_matches("http://").to_string();
    let mut socket = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let body = body.to_string();
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Idempotency-Key: {key}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    socket.write_all(request.as_bytes()).await.unwrap();
    tokio::time::sleep(wait).await;
    drop(socket);
}

/// Send `body` twice under one new key: the first is accepted (202), the
/// second is its answer replayed. Returns the first answer's body.
async fn sent_twice(app: &TestApp, path: &str, token: &str, body: &Value) -> Value {
    let key = Uuid::new_v4().to_string();
    let first = keyed(app, path, token, &key, body).await;
    assert_eq!(first.status, StatusCode::ACCEPTED, "{}", first.body);
    assert!(!first.replayed);
    let again = keyed(app, path, token, &key, body).await;
    assert_eq!(again.status, first.status);
    assert_eq!(again.body, first.body, "the first answer, replayed");
    assert!(again.replayed, "Idempotent-Replayed: true");
    first.body
}

/// `n` attempts of the same keyed POST at once: every answer is 202 or
/// 409, and every 202 names the same resource, whose id is returned.
async fn at_once(
    app: &TestApp,
    path: &str,
    token: &str,
    key: &str,
    body: &Value,
    n: usize,
) -> String {
    let mut attempts = tokio::task::JoinSet::new();
    for _ in 0..n {
        let (client, base) = (app.client.clone(), app.base.clone());
        let (path, token, key, body) = (
            path.to_string(),
            token.to_string(),
            key.to_string(),
            body.clone(),
        );
        attempts.spawn(async move { keyed_at(&client, &base, &path, &token, &key, &body).await });
    }
    let answers = attempts.join_all().await;
    for a in &answers {
        assert!(
            a.status == StatusCode::ACCEPTED || a.status == StatusCode::CONFLICT,
            "{} {}",
            a.status,
            a.body
        );
    }
    let ids: std::collections::HashSet<String> = answers
        .iter()
        .filter(|a| a.status == StatusCode::ACCEPTED)
        .map(|a| a.body["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 1, "every accepted answer names the one effect");
    ids.into_iter().next().unwrap()
}

async fn count(app: &TestApp, sql: &str, id: Uuid) -> i64 {
    sqlx::query_scalar(sql)
        .bind(id)
        .fetch_one(&app.db)
        .await
        .unwrap()
}

async fn evidence_of(app: &TestApp, case: Uuid) -> i64 {
    count(
        app,
        "SELECT count(*) FROM evidence WHERE case_id = $1",
        case,
    )
    .await
}

async fn shares_of(app: &TestApp, case: Uuid) -> i64 {
    count(app, "SELECT count(*) FROM shares WHERE case_id = $1", case).await
}

/// The answer of a retry after a hang-up: the first answer, once it is
/// recorded (409 says the first attempt is still finishing).
async fn retry_until_answered(
    app: &TestApp,
    path: &str,
    token: &str,
    key: &str,
    body: &Value,
) -> Answer {
    eventually("the retry to be answered", || async {
        let a = keyed(app, path, token, key, body).await;
        (a.status != StatusCode::CONFLICT).then_some(a)
    })
    .await
}

// R32: a retried share is one share and one email per recipient.
#[tokio::test]
async fn r32_a_share_sent_twice_with_one_key_is_one_share_one_answer_one_email() {
    let app = spawn_app().await;
    let (a, b, case) = two_partners(&app, policy(true)).await;
    let path = format!("/v1/cases/{case}/shares");
    let body = partner_share(b.id, json!([{ "user_id": b.user_id }]));
    let first = sent_twice(&app, &path, &a.user, &body).await;
    app.wait_share(&a.user, first["id"].as_str().unwrap()).await;
    app.drain().await;
    assert_eq!(shares_of(&app, case).await, 1);
    assert_eq!(mails_to(&app, &app.user_email(b.user_id).await).len(), 1);

    // Without a key, the same body is a new command.
    let (s, v) = app.post(&path, &a.user, body.clone()).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    assert_ne!(v["id"], first["id"]);
    assert_eq!(shares_of(&app, case).await, 2);
    app.stop().await;
}

#[tokio::test]
async fn a_key_reused_for_another_request_is_refused_and_changes_nothing() {
    let app = spawn_app().await;
    let (a, b, case) = two_partners(&app, policy(true)).await;
    let path = format!("/v1/cases/{case}/shares");
    let key = Uuid::new_v4().to_string();
    let first = keyed(
        &app,
        &path,
        &a.user,
        &key,
        &to_partner(b.id, json!({ "kind": "case" })),
    )
    .await;
    assert_eq!(first.status, StatusCode::ACCEPTED, "{}", first.body);

    // Another body, and another path, under the same key: 422.
    let other = partner_share(b.id, json!([{ "user_id": b.user_id }]));
    let a2 = keyed(&app, &path, &a.user, &key, &other).await;
    assert_eq!(a2.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", a2.body);
    assert_eq!(a2.body["error"], "validation");
    let folder = keyed(
        &app,
        &format!("/v1/cases/{case}/folders"),
        &a.user,
        &key,
        &json!({ "name": "x" }),
    )
    .await;
    assert_eq!(
        folder.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        folder.body
    );
    assert_eq!(shares_of(&app, case).await, 1);
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM folders WHERE case_id = $1",
            case
        )
        .await,
        0
    );

    // Keys belong to a token: another user's same key is its own command.
    let c2 = app.create_case(&a.admin, "Other").await;
    let theirs = keyed(
        &app,
        &format!("/v1/cases/{c2}/shares"),
        &a.admin,
        &key,
        &to_partner(b.id, json!({ "kind": "case" })),
    )
    .await;
    assert_eq!(theirs.status, StatusCode::ACCEPTED, "{}", theirs.body);
    assert!(!theirs.replayed);

    // A malformed key is refused before anything runs.
    for bad in ["", &"k".repeat(256), "with space"] {
        let a3 = keyed(
            &app,
            &format!("/v1/cases/{case}/folders"),
            &a.user,
            bad,
            &json!({ "name": "y" }),
        )
        .await;
        assert_eq!(
            a3.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{bad:?}: {}",
            a3.body
        );
    }
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM folders WHERE case_id = $1",
            case
        )
        .await,
        0
    );
    app.stop().await;
}

// R32: the client hangs up after sending; whatever point the server had
// reached, the retry yields exactly one share and one email.
#[tokio::test]
async fn r32_a_client_that_hangs_up_and_retries_gets_one_share_and_one_email() {
    let app = spawn_app().await;
    let (a, b, _) = two_partners(&app, policy(true)).await;
    for (i, wait_ms) in [0u64, 1, 3, 10, 30].into_iter().enumerate() {
        let case = app.create_case(&a.user, &format!("Case {i}")).await;
        let path = format!("/v1/cases/{case}/shares");
        let body = partner_share(b.id, json!([{ "user_id": b.user_id }]));
        let key = Uuid::new_v4().to_string();
        send_and_hang_up(
            &app,
            &path,
            &a.user,
            &key,
            &body,
            Duration::from_millis(wait_ms),
        )
        .await;
        let retry = retry_until_answered(&app, &path, &a.user, &key, &body).await;
        assert_eq!(
            retry.status,
            StatusCode::ACCEPTED,
            "hang-up after {wait_ms} ms: {}",
            retry.body
        );
        // A second retry is the same answer.
        let again = keyed(&app, &path, &a.user, &key, &body).await;
        assert_eq!(again.body, retry.body);
        assert!(again.replayed);
        assert_eq!(shares_of(&app, case).await, 1, "hang-up after {wait_ms} ms");
    }
    app.drain().await;
    assert_eq!(
        mails_to(&app, &app.user_email(b.user_id).await).len(),
        5,
        "one email per case, none doubled"
    );
    app.stop().await;
}

#[tokio::test]
async fn concurrent_attempts_with_one_key_make_one_share() {
    let app = spawn_app().await;
    let (a, b, case) = two_partners(&app, policy(true)).await;
    let path = format!("/v1/cases/{case}/shares");
    let body = to_partner(b.id, json!({ "kind": "case" }));
    let key = Uuid::new_v4().to_string();
    at_once(&app, &path, &a.user, &key, &body, 8).await;
    assert_eq!(shares_of(&app, case).await, 1);
    app.stop().await;
}

// R35, R32: evidence intake is one statement that claims the key along with
// its effect (evidence, job, outbox row, audit entry): of 8 attempts at once
// with one key, one item is recorded, with one job and one audit entry, and
// every answer is that item's or a 409.
#[tokio::test]
async fn r35_concurrent_evidence_attempts_with_one_key_record_one_item() {
    let app = spawn_app().await;
    let a = app.create_org("Alpha PD", "lea").await;
    let case = app.create_case(&a.user, "Burglary").await;
    let path = format!("/v1/cases/{case}/evidence");
    let body = json!({ "title": "Doorbell video" });
    let key = Uuid::new_v4().to_string();
    let accepted = at_once(&app, &path, &a.user, &key, &body, 8).await;
    let id: Uuid = accepted.parse().unwrap();
    let n = |sql: &'static str| count(&app, sql, id);
    assert_eq!(n("SELECT count(*) FROM evidence WHERE id = $1").await, 1);
    assert_eq!(
        n("SELECT count(*) FROM jobs WHERE payload->>'evidence_id' = $1::text").await,
        1
    );
    assert_eq!(
        n("SELECT count(*) FROM audit_log WHERE evidence_id = $1 AND action = 'evidence_added'")
            .await,
        1
    );
    // A retry with the key gets the answer; a case of another org is 404
    // and records nothing.
    let again = retry_until_answered(&app, &path, &a.user, &key, &body).await;
    assert_eq!(again.status, StatusCode::ACCEPTED);
    assert_eq!(again.body["id"].as_str().unwrap(), id.to_string());
    let b = app.create_org("Beta PD", "lea").await;
    let other = keyed(&app, &path, &b.user, &Uuid::new_v4().to_string(), &body).await;
    assert_eq!(other.status, StatusCode::NOT_FOUND, "{}", other.body);
    assert_eq!(evidence_of(&app, case).await, 1);
    app.stop().await;
}

#[tokio::test]
async fn an_applied_request_whose_answer_was_lost_is_not_applied_again() {
    let app = spawn_app().await;
    let (a, b, case) = two_partners(&app, policy(true)).await;
    let path = format!("/v1/cases/{case}/shares");
    let body = to_partner(b.id, json!({ "kind": "case" }));
    let key = Uuid::new_v4().to_string();
    assert_eq!(
        keyed(&app, &path, &a.user, &key, &body).await.status,
        StatusCode::ACCEPTED
    );
    // As if the process died between its commit and recording the answer.
    sqlx::query("UPDATE idempotency_keys SET status = NULL, content_type = NULL, body = NULL")
        .execute(&app.db)
        .await
        .unwrap();
    let retry = keyed(&app, &path, &a.user, &key, &body).await;
    assert_eq!(retry.status, StatusCode::CONFLICT, "{}", retry.body);
    assert_eq!(retry.body["error"], "conflict");
    assert_eq!(shares_of(&app, case).await, 1);

    // A key older than 24 h is forgotten: the same request is a new command.
    sqlx::query("UPDATE idempotency_keys SET created_at = now() - interval '25 hours'")
        .execute(&app.db)
        .await
        .unwrap();
    let later = keyed(&app, &path, &a.user, &key, &body).await;
    assert_eq!(later.status, StatusCode::ACCEPTED, "{}", later.body);
    assert!(!later.replayed);
    assert_eq!(shares_of(&app, case).await, 2);
    app.stop().await;
}

// R24, R32: every command takes a key, e.g. import, link share and evidence.
#[tokio::test]
async fn r24_imports_link_shares_and_evidence_sent_twice_happen_once() {
    let app = spawn_app().await;
    let (a, b, case) = case_shared_with_partner(&app, policy(true), "Burglary").await;

    // Evidence without a client id.
    let ev = json!({ "title": "Photo 1" });
    sent_twice(&app, &format!("/v1/cases/{case}/evidence"), &a.user, &ev).await;
    assert_eq!(evidence_of(&app, case).await, 1);
    app.drain().await;

    // Import by the partner.
    let (_, received) = app.get("/v1/received", &b.admin).await;
    let rid = received["items"][0]["id"].as_str().unwrap().to_string();
    sent_twice(
        &app,
        &format!("/v1/received/{rid}/import"),
        &b.admin,
        &json!({}),
    )
    .await;
    app.drain().await;
    assert_eq!(
        count(&app, "SELECT count(*) FROM cases WHERE org_id = $1", b.id).await,
        1,
        "one imported copy"
    );

    // A link share to a named address.
    let lpath = format!("/v1/cases/{case}/link-shares");
    let link = json!({
        "scope": { "kind": "case" },
        "recipient": { "email": "da@county.example" },
        "package": "zip",
        "duration_hours": 24
    });
    sent_twice(&app, &lpath, &a.user, &link).await;
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM link_shares WHERE case_id = $1",
            case
        )
        .await,
        1
    );
    app.drain().await;
    assert!(
        mails_to(&app, "da@county.example").len() <= 1,
        "never two emails"
    );
    app.stop().await;
}

// R60 (N6): a new user's bearer token is in the answer a retry replays, yet
// not in the database: the recorded answer is sealed under the requester's
// token, and another token's same key opens nothing.
#[tokio::test]
async fn r60_recorded_answers_keep_no_token_in_plain_text() {
    let app = spawn_app().await;
    let org = app.create_org("Alpha PD", "lea").await;
    let path = format!("/v1/orgs/{}/users", org.id);
    let body =
        json!({ "name": "New Officer", "email": "new.officer@alpha.example", "role": "user" });
    let key = Uuid::new_v4().to_string();
    let first = keyed(&app, &path, SERVICE_TOKEN, &key, &body).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    let token = first.body["token"].as_str().expect("a token").to_string();
    let again = keyed(&app, &path, SERVICE_TOKEN, &key, &body).await;
    assert!(again.replayed);
    assert_eq!(again.body, first.body);
    let stored: Vec<Vec<u8>> =
        sqlx::query_scalar("SELECT body FROM idempotency_keys WHERE key = $1 AND body IS NOT NULL")
            .bind(&key)
            .fetch_all(&app.db)
            .await
            .unwrap();
    assert_eq!(stored.len(), 1);
    assert!(
        !stored[0]
            .windows(token.len())
            .any(|w| w == token.as_bytes()),
        "the token is stored in plain text"
    );
    assert!(!stored[0].windows(7).any(|w| w == b"Officer"));
    app.stop().await;
}
