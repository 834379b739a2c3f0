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

/// Waits until every outbox row of `app` is on the broker.
async fn all_published(app: &TestApp) {
    eventually("the outbox to be published", || async {
        (app.count("SELECT count(*) FROM outbox WHERE published_at IS NULL")
            .await
            == 0)
            .then_some(())
    })
    .await;
}

// R37, issue 19 (L3): `/metrics` is unauthenticated, so a scrape must not
// cost a broker declare and table aggregates each time: between refreshes
// it renders the gauges' last values. A test harness refreshes on every
// scrape; here the interval is an hour, so the second scrape shows the
// first's depth although the queue has grown since.
#[tokio::test]
async fn r37_scrapes_between_refreshes_render_the_last_values() {
    let api = spawn_with(Options {
        roles: Roles::API,
        tune: Some(std::sync::Arc::new(|s| s.metrics_refresh_secs = 3600)),
        ..Default::default()
    })
    .await;
    let a = api.create_org("Alpha PD", "lea").await;
    let case = api.create_case(&a.user, "Case").await;
    let depth = format!(
        "caseshare_queue_messages{{queue=\"{}.jobs.evidence-added\"}}",
        api.prefix
    );
    api.add_evidence(&a.user, case, json!({ "title": "e0" }))
        .await;
    all_published(&api).await;
    assert_eq!(
        gauge(&api, &depth).await,
        Some(1.0),
        "the first scrape collects"
    );
    for i in 1..6 {
        api.add_evidence(&a.user, case, json!({ "title": format!("e{i}") }))
            .await;
    }
    all_published(&api).await;
    for _ in 0..20 {
        assert_eq!(
            gauge(&api, &depth).await,
            Some(1.0),
            "scrapes within the refresh interval do not query the broker"
        );
    }
    api.stop().await;
}
