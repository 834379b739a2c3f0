//! Batched intake (R38, issue "Throughput"): events published straight to
//! the broker are recorded in batches, one transaction per batch; HTTP
//! clients post up to 1,000 items at once. Each item is answered alone,
//! retries by client id are idempotent, a crash between commit and ack
//! redelivers the batch and changes nothing.

use crate::common::*;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions};
use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

/// A confirming channel on the app's broker, once the worker consumes the
/// events queue (its declare and bindings are done).
async fn events_channel(
    app: &TestApp,
) -> (lapin::Connection, lapin::Channel, caseshare::amqp::Topology) {
    let topology = caseshare::amqp::Topology::new(&app.prefix, &[100, 200, 400]);
    let conn = caseshare::amqp::connect(&app.amqp_url, "test")
        .await
        .unwrap();
    let ch = conn.create_channel().await.unwrap();
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    wait_for_events_consumer(&conn, &topology).await;
    (conn, ch, topology)
}

/// Publish every body back to back (a burst the consumer takes as batches),
/// then wait for all confirms.
async fn publish_all(
    ch: &lapin::Channel,
    topology: &caseshare::amqp::Topology,
    bodies: &[Vec<u8>],
) {
    let mut confirms = Vec::new();
    for body in bodies {
        confirms.push(
            ch.basic_publish(
                topology.events_exchange().into(),
                "evidence.added".into(),
                BasicPublishOptions::default(),
                body,
                lapin::BasicProperties::default().with_delivery_mode(2),
            )
            .await
            .unwrap(),
        );
    }
    for c in confirms {
        c.await.unwrap();
    }
}

fn event(org: Uuid, case: Uuid, id: Uuid, title: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({ "org_id": org, "case_id": case, "id": id, "title": title }))
        .unwrap()
}

/// (evidence rows, `evidence_added` audit entries, grants) of `case`.
async fn recorded(app: &TestApp, case: Uuid) -> (i64, i64, i64) {
    sqlx::query_as(
        "SELECT (SELECT count(*) FROM evidence WHERE case_id = $1),
                (SELECT count(*) FROM audit_log WHERE action = 'evidence_added' AND case_id = $1),
                (SELECT count(*) FROM grants g JOIN evidence e ON e.id = g.evidence_id WHERE e.case_id = $1)",
    )
    .bind(case)
    .fetch_one(&app.db)
    .await
    .unwrap()
}

async fn count(app: &TestApp, sql: &str, case: Uuid) -> i64 {
    app.count(&sql.replace("$case", &format!("'{case}'"))).await
}

// R38: a batch with a malformed member, an unknown case, a title over the
// limit and the same event twice: the bad ones are dead-lettered alone, the
// rest recorded once each and shared once each.
#[tokio::test]
async fn r38_batched_events_refuse_bad_members_alone_and_record_the_rest_once() {
    let app = spawn_app().await;
    let (a, b, case) = case_shared_with_partner(&app, policy(true), "Convoy").await;
    let (_conn, ch, topology) = events_channel(&app).await;
    let ids: Vec<Uuid> = (0..60).map(|_| Uuid::new_v4()).collect();
    let mut bodies: Vec<Vec<u8>> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| event(a.id, case, *id, &format!("Clip {i}")))
        .collect();
    bodies.insert(10, b"{\"case_id\": \"not a uuid\"".to_vec());
    bodies.insert(
        20,
        event(a.id, Uuid::new_v4(), Uuid::new_v4(), "no such case"),
    );
    bodies.insert(
        30,
        event(a.id, case, Uuid::new_v4(), &"x".repeat(4 * 1024 * 1024)),
    );
    bodies.push(event(a.id, case, ids[5], "Clip 5")); // a retry of an event of the batch
                                                      // An event claiming another org's case (the case is Alpha's).
    bodies.push(event(b.id, case, Uuid::new_v4(), "not Beta's case"));
    publish_all(&ch, &topology, &bodies).await;

    let reasons = dead_letter_reasons(&ch, &topology, 4).await;
    assert!(
        reasons.iter().any(|r| r.contains("malformed")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| r.contains("not found")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| r.contains("longer than")),
        "{reasons:?}"
    );
    app.drain().await;
    assert_eq!(
        recorded(&app, case).await,
        (60, 60, 60),
        "each item recorded, audited and shared once"
    );
    let (_, v) = app
        .get(&format!("/v1/cases/{case}/evidence"), &b.admin)
        .await;
    assert_eq!(v["items"].as_array().unwrap().len(), 60);
    // Batched: far fewer evidence-added jobs than items (one per case and batch).
    let jobs = count(
        &app,
        "SELECT count(DISTINCT job_id) FROM evidence WHERE case_id = $case",
        case,
    )
    .await;
    assert!(jobs < 60, "{jobs} jobs for 60 items");
    app.stop().await;
}

// R35, R38: the worker dies after the batch committed and before the ack:
// the batch is redelivered and recorded again, which changes nothing.
#[tokio::test]
async fn r35_r38_crash_between_commit_and_ack_redelivers_the_batch_and_changes_nothing() {
    let app = spawn_app().await;
    let (a, _, case) = case_shared_with_partner(&app, policy(true), "Convoy").await;
    let (_conn, ch, topology) = events_channel(&app).await;
    app.app
        .as_ref()
        .unwrap()
        .faults()
        .crash_after_effect_once(caseshare::worker::EVIDENCE_EVENT);
    let bodies: Vec<Vec<u8>> = (0..40)
        .map(|i| event(a.id, case, Uuid::new_v4(), &format!("Clip {i}")))
        .collect();
    publish_all(&ch, &topology, &bodies).await;
    eventually("the crash and the redelivery", || async {
        let n = count(
            &app,
            "SELECT count(*) FROM evidence WHERE case_id = $case",
            case,
        )
        .await;
        (app.app.as_ref().unwrap().faults().has_crashed() && n == 40).then_some(())
    })
    .await;
    // The redelivered batch is settled: nothing left on the queue.
    eventually("the events queue to empty", || async {
        let info = ch
            .queue_declare(
                topology.events_queue().into(),
                QueueDeclareOptions {
                    passive: true,
                    ..Default::default()
                },
                Default::default(),
            )
            .await
            .ok()?;
        (info.message_count() == 0).then_some(())
    })
    .await;
    app.drain().await;
    assert_eq!(
        recorded(&app, case).await,
        (40, 40, 40),
        "each item recorded, audited and shared once"
    );
    app.stop().await;
}

// Batched HTTP intake: up to 1,000 items, an answer per item, a bad item
// refused alone, client-id retries idempotent inside and across batches.
#[tokio::test]
async fn r38_http_batch_answers_per_item_and_retries_are_idempotent() {
    let app = spawn_app().await;
    let (a, b, case) = case_shared_with_partner(&app, policy(true), "Convoy").await;
    let path = format!("/v1/cases/{case}/evidence:batch");
    let retried = Uuid::new_v4();
    let items: Vec<Value> = (0..20)
        .map(|i| json!({ "title": format!("Item {i}") }))
        .chain([
            json!({ "id": retried, "title": "with a client id" }),
            json!({ "title": "" }),
            json!({ "title": "bad folder", "folder_id": Uuid::new_v4() }),
            json!({ "id": retried, "title": "with a client id" }),
        ])
        .collect();
    let (s, v) = app.post(&path, &a.user, json!({ "items": items })).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let answers = v["items"].as_array().unwrap();
    assert_eq!(answers.len(), 24);
    assert!(answers[..21].iter().all(|r| r["status"] == 202), "{v}");
    assert_eq!(answers[21]["status"], 422);
    assert_eq!(answers[21]["error"], "validation");
    assert_eq!(answers[22]["status"], 422);
    assert_eq!(answers[23]["status"], 202);
    assert_eq!(answers[23]["id"], answers[20]["id"]);
    assert_eq!(answers[23]["job_id"], answers[20]["job_id"]);
    // The whole batch again: the same answers, nothing new.
    let (_, again) = app
        .post(
            &path,
            &a.user,
            json!({ "items": [{ "id": retried, "title": "with a client id" }] }),
        )
        .await;
    assert_eq!(again["items"][0]["job_id"], answers[20]["job_id"]);
    app.drain().await;
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM evidence WHERE case_id = $case",
            case
        )
        .await,
        21
    );
    let (_, seen) = app
        .get(&format!("/v1/cases/{case}/evidence"), &b.admin)
        .await;
    assert_eq!(seen["items"].as_array().unwrap().len(), 21);
    // Limits and access.
    let too_many: Vec<Value> = (0..1001)
        .map(|i| json!({ "title": format!("{i}") }))
        .collect();
    let (_, outsider) = app.create_user(a.id, "Outsider", "user").await;
    assert_all_refused(
        &app,
        [
            Call::post(&path, &a.user, json!({ "items": too_many }))
                .refused(StatusCode::UNPROCESSABLE_ENTITY, "validation"),
            Call::post(&path, &a.user, json!({ "items": [] }))
                .refused(StatusCode::UNPROCESSABLE_ENTITY, "validation"),
        ],
    )
    .await;
    let (s, v) = app
        .post(&path, &outsider, json!({ "items": [{ "title": "x" }] }))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        v["items"][0]["status"], 404,
        "R41: the case is not the outsider's"
    );
    let (s, v) = app
        .post(&path, &b.admin, json!({ "items": [{ "title": "x" }] }))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        v["items"][0]["status"], 403,
        "an external case is read-only"
    );
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM evidence WHERE case_id = $case",
            case
        )
        .await,
        21
    );
    app.stop().await;
}
