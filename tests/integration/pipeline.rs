//! The job pipeline (R35–R38): evidence and its job recorded together, a
//! malformed message dead-lettered, upstream events recorded like HTTP, a
//! crash between effect and ack, the metrics of queues and jobs, and the
//! served OpenAPI document.

use crate::common::*;
use reqwest::{Method, StatusCode};
use serde_json::json;
use uuid::Uuid;

// R35
#[tokio::test]
async fn r35_evidence_and_its_job_are_recorded_together_and_a_resend_is_idempotent() {
    let app = spawn_app().await;
    let a = app.create_org("Alpha PD", "lea").await;
    let case = app.create_case(&a.user, "Case").await;
    let id = Uuid::new_v4();
    let body = json!({ "id": id, "title": "Body cam 1", "categories": ["video"] });
    let (ev, job) = app.add_evidence(&a.user, case, body.clone()).await;
    assert_eq!(ev, id);
    let (ev2, job2) = app.add_evidence(&a.user, case, body).await;
    assert_eq!(
        (ev2, job2),
        (ev, job),
        "a resend answers as the first time did"
    );
    let counts: (i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM evidence), (SELECT count(*) FROM jobs), (SELECT count(*) FROM outbox WHERE job_id IS NOT NULL)",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(counts, (1, 1, 1));
    assert_eq!(app.wait_job(job).await, "complete");
    let (s, v) = app.get(&format!("/v1/jobs/{job}"), &a.user).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        (v["status"].as_str(), v["kind"].as_str()),
        (Some("complete"), Some("evidence-added"))
    );
    assert_eq!(v["attempts"], 1);
    // The service principal may add evidence too (upstream systems).
    let (s, _) = app
        .post(
            &format!("/v1/cases/{case}/evidence"),
            SERVICE_TOKEN,
            json!({ "title": "From upstream" }),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    // Another org cannot read the job.
    let b = app.create_org("Beta PD", "lea").await;
    let (s, _) = app.get(&format!("/v1/jobs/{job}"), &b.user).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    app.stop().await;
}

// R36
#[tokio::test]
async fn r36_malformed_messages_are_dead_lettered_with_a_reason_and_the_worker_goes_on() {
    use lapin::options::BasicPublishOptions;
    let app = spawn_app().await;
    let a = app.create_org("Alpha PD", "lea").await;
    let case = app.create_case(&a.user, "Case").await;
    let topology = caseshare::amqp::Topology::new(&app.prefix, &[100, 200, 400]);
    let conn = caseshare::amqp::connect(&app.amqp_url, "test")
        .await
        .unwrap();
    let ch = conn.create_channel().await.unwrap();
    wait_for_events_consumer(&conn, &topology).await;
    for body in [
        &b"not json"[..],
        br#"{"job_id": "0c6c6a4e-0000-4000-8000-000000000000"}"#,
    ] {
        ch.basic_publish(
            topology.jobs_exchange().into(),
            "evidence-added".into(),
            BasicPublishOptions::default(),
            body,
            Default::default(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    }
    ch.basic_publish(
        topology.events_exchange().into(),
        "evidence.added".into(),
        BasicPublishOptions::default(),
        b"{\"case_id\": 1}",
        Default::default(),
    )
    .await
    .unwrap()
    .await
    .unwrap();
    let reasons = dead_letter_reasons(&ch, &topology, 3).await;
    assert!(
        reasons.iter().any(|r| r.contains("malformed message")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| r.contains("unknown job")),
        "{reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("malformed evidence event")),
        "{reasons:?}"
    );
    // The worker is still alive and working.
    let (_, job) = app
        .add_evidence(&a.user, case, json!({ "title": "after" }))
        .await;
    assert_eq!(app.wait_job(job).await, "complete");
    let _ = conn.close(200, "bye".into()).await;
    app.stop().await;
}

// R38
#[tokio::test]
async fn r38_evidence_published_to_rabbitmq_is_recorded_like_http() {
    use lapin::options::BasicPublishOptions;
    let app = spawn_app().await;
    let a = app.create_org("Alpha PD", "lea").await;
    let case = app.create_case(&a.user, "Case").await;
    let folder = app.create_folder(&a.user, case, "Video", None).await;
    let topology = caseshare::amqp::Topology::new(&app.prefix, &[100, 200, 400]);
    let conn = caseshare::amqp::connect(&app.amqp_url, "upstream")
        .await
        .unwrap();
    let publisher = caseshare::amqp::Publisher::open(&conn).await.unwrap();
    let id = Uuid::new_v4();
    let body = serde_json::to_vec(&json!({ "org_id": a.id, "case_id": case, "id": id, "title": "Dash cam", "folder_id": folder, "categories": ["video"] })).unwrap();
    // Publish twice: the second is an idempotent retry.
    for _ in 0..2 {
        eventually("events exchange accepts", || async {
            publisher
                .publish(
                    &topology.events_exchange(),
                    "evidence.added",
                    &body,
                    Default::default(),
                    None,
                )
                .await
                .ok()
        })
        .await;
    }
    let _ = BasicPublishOptions::default();
    let job: Uuid = eventually("evidence recorded", || async {
        sqlx::query_scalar::<_, Option<Uuid>>("SELECT job_id FROM evidence WHERE id = $1")
            .bind(id)
            .fetch_optional(&app.db)
            .await
            .ok()
            .flatten()
            .flatten()
    })
    .await;
    assert_eq!(app.wait_job(job).await, "complete");
    let (_, v) = app
        .get(&format!("/v1/cases/{case}/evidence"), &a.user)
        .await;
    let items = v["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(
        (items[0]["title"].as_str(), items[0]["folder_id"].as_str()),
        (Some("Dash cam"), Some(folder.to_string().as_str()))
    );
    app.drain().await;
    let jobs: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(jobs, 1, "the duplicate event added no second job");
    let _ = conn.close(200, "bye".into()).await;
    app.stop().await;
}

// R35, R36: a worker that dies after the effect but before the ack.
#[tokio::test]
async fn r35_crash_after_effect_before_ack_redelivers_and_the_effect_happens_once() {
    let app = spawn_app().await;
    let (a, b, case) = case_shared_with_partner(&app, policy(true), "Case").await;

    app.app.as_ref().unwrap().faults().crash_after_effect_once(
        <caseshare::sharing::fanout::EvidenceAdded as caseshare::jobs::Job>::NAME,
    );
    let (ev, job) = app
        .add_evidence(&a.user, case, json!({ "title": "New video" }))
        .await;
    assert_eq!(app.wait_job(job).await, "complete");
    assert!(
        app.app.as_ref().unwrap().faults().has_crashed(),
        "the worker crashed once"
    );
    let (deliveries, grants): (i32, i64) = sqlx::query_as(
        "SELECT (SELECT deliveries FROM jobs WHERE id = $1), (SELECT count(*) FROM grants WHERE evidence_id = $2)",
    )
    .bind(job)
    .bind(ev)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert!(
        deliveries >= 2,
        "redelivered after the crash ({deliveries})"
    );
    assert_eq!(grants, 1, "the grant happened once");
    let (_, v) = app
        .get(&format!("/v1/cases/{case}/evidence"), &b.admin)
        .await;
    assert_eq!(v["items"].as_array().unwrap().len(), 1);
    app.stop().await;
}

// R37
#[tokio::test]
async fn r37_metrics_show_queues_and_jobs() {
    let app = spawn_app().await;
    let a = app.create_org("Alpha PD", "lea").await;
    let case = app.create_case(&a.user, "Case").await;
    let (_, job) = app
        .add_evidence(&a.user, case, json!({ "title": "x" }))
        .await;
    app.wait_job(job).await;
    let text = app
        .send(app.client.get(format!("{}/metrics", app.base)))
        .await
        .body;
    let text = String::from_utf8(text).expect("metrics are text");
    assert!(
        text.contains(&format!(
            "caseshare_queue_messages{{queue=\"{}.jobs.evidence-added\"}}",
            app.prefix
        )),
        "{text}"
    );
    assert!(
        text.contains("caseshare_jobs_by_status{kind=\"evidence-added\",status=\"complete\"} 1"),
        "{text}"
    );
    assert!(text.contains("caseshare_http_requests_total"), "{text}");
    let (s, v) = app.call(Method::GET, "/readyz", None, None).await;
    assert_eq!(
        (s, &v["database"], &v["broker"]),
        (StatusCode::OK, &json!(true), &json!(true))
    );
    let (s, _) = app.call(Method::GET, "/healthz", None, None).await;
    assert_eq!(s, StatusCode::OK);
    app.stop().await;
}

#[tokio::test]
async fn openapi_document_lists_the_contract() {
    let app = spawn_app().await;
    let (s, v) = app.call(Method::GET, "/openapi.json", None, None).await;
    assert_eq!(s, StatusCode::OK);
    for path in [
        "/v1/orgs",
        "/v1/cases/{case_id}/shares",
        "/v1/received",
        "/v1/shares/{share_id}/revoke",
        "/v1/jobs/{job_id}",
        "/v1/cases/{case_id}/link-shares",
        "/v1/link-shares/{id}",
        "/v1/downloads/{token}",
        "/v1/evidence/{evidence_id}/content",
        "/v1/shares/revoke",
    ] {
        assert!(v["paths"].get(path).is_some(), "{path} missing");
    }
    // R40: both package formats are in the contract.
    let package = &v["components"]["schemas"]["Package"];
    let formats: Vec<&str> = package["enum"]
        .as_array()
        .or_else(|| package["oneOf"].as_array())
        .map(|a| {
            a.iter()
                .filter_map(|p| p.as_str().or_else(|| p["enum"][0].as_str()))
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(formats, ["zip", "iso"], "{package}");
    app.stop().await;
}
