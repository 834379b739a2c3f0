//! Operators' view (R37): `/metrics` shows queue depth rising while work waits
//! and falling when workers drain it, and jobs by status.

use crate::common::*;
use caseshare::startup::Roles;
use serde_json::json;

async fn gauge(app: &TestApp, line_prefix: &str) -> Option<f64> {
    let res = app
        .send(app.client.get(format!("{}/metrics", app.base)))
        .await;
    let text = String::from_utf8(res.body).ok()?;
    text.lines()
        .find(|l| l.starts_with(line_prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

// R37
#[tokio::test]
async fn r37_queue_depth_rises_during_a_burst_and_falls_when_workers_drain_it() {
    // The API alone: jobs are published but nobody consumes them yet.
    let api = spawn_with(Options {
        roles: Roles::API,
        ..Default::default()
    })
    .await;
    let a = api.create_org("Alpha PD", "lea").await;
    let case = api.create_case(&a.user, "Case").await;
    for i in 0..30 {
        api.add_evidence(&a.user, case, json!({ "title": format!("e{i}") }))
            .await;
    }
    let depth = format!(
        "caseshare_queue_messages{{queue=\"{}.jobs.evidence-added\"}}",
        api.prefix
    );
    let risen = eventually("queue depth to rise", || async {
        gauge(&api, &depth).await.filter(|d| *d >= 30.0)
    })
    .await;
    assert_eq!(risen, 30.0);
    let queued = gauge(
        &api,
        "caseshare_jobs_by_status{kind=\"evidence-added\",status=\"queued\"}",
    )
    .await;
    assert_eq!(queued, Some(30.0));

    // Workers join the same deployment and drain it.
    let workers = spawn_with(Options {
        roles: Roles::WORKER,
        join: Some((api.database_url.clone(), api.prefix.clone())),
        ..Default::default()
    })
    .await;
    api.drain().await;
    let fallen = eventually("queue depth to fall", || async {
        gauge(&api, &depth).await.filter(|d| *d == 0.0)
    })
    .await;
    assert_eq!(fallen, 0.0);
    let complete = gauge(
        &api,
        "caseshare_jobs_by_status{kind=\"evidence-added\",status=\"complete\"}",
    )
    .await;
    assert_eq!(complete, Some(30.0));
    let consumers = gauge(
        &api,
        &format!(
            "caseshare_queue_consumers{{queue=\"{}.jobs.evidence-added\"}}",
            api.prefix
        ),
    )
    .await;
    assert_eq!(consumers, Some(1.0));
    workers.stop().await;
    api.stop().await;
}
