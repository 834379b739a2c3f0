//! Operator commands (R36, R37): `caseshare queues` and `caseshare
//! dead-letters list|show|requeue|purge`, called as library functions against
//! a real deployment whose jobs were dead-lettered for real (SMTP 550).

use crate::common::*;

use caseshare::config::Settings;
use caseshare::operations::{self, OpsError, RequeueTarget};
use serde_json::{json, Value};
use uuid::Uuid;

fn settings(app: &TestApp) -> Settings {
    let mut s = Settings::defaults().expect("default settings");
    s.database_url = app.database_url.clone();
    s.amqp_url = app.amqp_url.clone();
    s.amqp_prefix = app.prefix.clone();
    // The harness's retry steps, so `queues` lists the queues it declared.
    s.retry_delays_ms = Options::default().retry_delays_ms;
    s
}

/// (job id, notice id, recipient, notice status) of every send-notice job.
async fn notice_jobs(app: &TestApp) -> Vec<(Uuid, Uuid, String, String)> {
    sqlx::query_as(
        "SELECT j.id, n.id, n.recipient, n.status::text FROM jobs j
         JOIN notices n ON n.id = (j.payload->>'notice_id')::uuid
         WHERE j.kind = 'send-notice' ORDER BY n.recipient",
    )
    .fetch_all(&app.db)
    .await
    .unwrap()
}

async fn requeue_audit(app: &TestApp) -> Vec<(Option<Uuid>, Option<Uuid>, Value)> {
    sqlx::query_as(
        "SELECT org_id, share_id, details FROM audit_log WHERE action = 'dead_letter_requeued' ORDER BY id",
    )
    .fetch_all(&app.db)
    .await
    .unwrap()
}

// R36, R37
#[tokio::test]
async fn r36_r37_dead_letters_are_listed_shown_requeued_once_and_purged() {
    let app = spawn_with(Options {
        max_attempts: 1,
        ..Default::default()
    })
    .await;
    let ops = settings(&app);
    let (a, b, case) = two_partners(&app, policy(true)).await;
    // Every recipient is refused for good: both send-notice jobs die.
    sink(&app).set_mode(Mode::Permanent);
    let outside = "reviewer@reviewers.beta-pd.example";
    let recipients = json!([{ "user_id": b.user_id }, { "email": outside }]);
    let share = app
        .share_and_settle(&a.user, case, partner_share(b.id, recipients))
        .await;
    let share_id: Uuid = share["id"].as_str().unwrap().parse().unwrap();
    let jobs = notice_jobs(&app).await;
    assert_eq!(jobs.len(), 2, "{jobs:?}");
    for (job, _, _, notice_status) in &jobs {
        assert_eq!(app.job_status(*job).await, "dead");
        assert_eq!(notice_status, "failed", "on_dead marked the notice");
    }
    assert!(sink(&app).mails().is_empty());

    // list: both dead jobs, with the reason, and the broker's dead-letter queue.
    let listed = operations::list(&ops).await.expect("list");
    assert_eq!(listed.dead_queue, format!("{}.dead", app.prefix));
    assert!(listed.broker_error.is_none(), "{listed:?}");
    assert!(
        listed.dead_queue_messages.unwrap() >= 2,
        "both messages wait in the DLQ: {listed:?}"
    );
    assert_eq!(listed.jobs.len(), 2, "{listed:?}");
    for j in &listed.jobs {
        assert_eq!(j.kind, "send-notice");
        assert_eq!(j.attempts, 1);
        assert!(j.finished_at.is_some());
        assert!(
            j.last_error.as_deref().unwrap_or_default().contains("550"),
            "{j:?}"
        );
    }
    let text = listed.render();
    for (job, ..) in &jobs {
        assert!(text.contains(&job.to_string()), "{text}");
    }
    assert!(text.contains("2 dead job(s)"), "{text}");
    assert!(
        text.contains(&format!("{}.dead: ", app.prefix)) && text.contains("message(s) waiting"),
        "{text}"
    );

    // show: the row in full.
    let (job1, notice1, recipient1, _) = jobs[0].clone();
    let (job2, _, recipient2, _) = jobs[1].clone();
    let detail = operations::show(&ops, job1).await.expect("show");
    assert_eq!(detail.id, job1);
    assert_eq!(detail.status, "dead");
    assert_eq!(detail.kind, "send-notice");
    assert_eq!(detail.payload, json!({ "notice_id": notice1 }));
    assert_eq!((detail.attempts, detail.deliveries), (1, 1));
    assert!(detail.last_error.as_deref().unwrap().contains("550"));
    assert!(detail.finished_at.is_some() && detail.started_at.is_some());
    assert_eq!(detail.outbox.len(), 1, "enqueued once so far");
    assert!(detail.requeued_at.is_empty());
    let text = detail.render();
    assert!(text.contains(&notice1.to_string()), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("status:") && l.ends_with(" dead")),
        "{text}"
    );
    assert!(text.contains("550"), "{text}");
    assert!(matches!(
        operations::show(&ops, Uuid::new_v4())
            .await
            .unwrap_err()
            .downcast_ref::<OpsError>(),
        Some(OpsError::NotFound(_))
    ));

    // requeue one job once SMTP accepts again: delivered exactly once.
    sink(&app).set_mode(Mode::Accept);
    let requeued = operations::requeue(&ops, RequeueTarget::Job(job1))
        .await
        .expect("requeue");
    assert_eq!(requeued.len(), 1);
    assert_eq!(
        (requeued[0].job_id, requeued[0].kind.as_str()),
        (job1, "send-notice")
    );
    assert_eq!(
        requeued[0].subject_reset.as_deref(),
        Some(format!("notice {notice1}: failed -> pending").as_str())
    );
    assert!(operations::render_requeued(&requeued).contains("1 job(s) requeued"));
    assert_eq!(app.wait_job(job1).await, "complete");
    app.drain().await;
    assert_eq!(
        mails_to(&app, &recipient1).len(),
        1,
        "the requeued notice is mailed once"
    );
    assert_eq!(sink(&app).count(), 1, "the other dead job stays dead");
    let (status, sent_at): (String, Option<chrono::DateTime<chrono::Utc>>) =
        sqlx::query_as("SELECT status::text, sent_at FROM notices WHERE id = $1")
            .bind(notice1)
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(status, "sent");
    assert!(sent_at.is_some());
    assert_eq!(app.job_status(job2).await, "dead");
    let detail = operations::show(&ops, job1).await.unwrap();
    assert_eq!(
        (detail.attempts, detail.deliveries),
        (1, 2),
        "a fresh attempt budget; deliveries keep the history"
    );
    assert!(
        detail.last_error.as_deref().unwrap().contains("550"),
        "the last error is kept as history"
    );
    assert_eq!(detail.outbox.len(), 2, "one more outbox row, published");
    assert!(detail.outbox.iter().all(|(_, _, p)| p.is_some()));
    assert_eq!(detail.requeued_at.len(), 1);
    let audit = requeue_audit(&app).await;
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!(audit[0].2, json!({ "job_id": job1, "kind": "send-notice" }));
    assert_eq!(audit[0].1, Some(share_id), "the notice's share is named");

    // A job that is no longer dead is refused, and nothing changes.
    let err = operations::requeue(&ops, RequeueTarget::Job(job1))
        .await
        .unwrap_err();
    assert_eq!(
        err.downcast_ref::<OpsError>(),
        Some(&OpsError::NotDead {
            id: job1,
            status: "complete".into()
        })
    );

    // requeue --all picks up the remaining dead job.
    let listed = operations::list(&ops).await.unwrap();
    assert_eq!(listed.jobs.len(), 1);
    assert_eq!(listed.jobs[0].id, job2);
    let requeued = operations::requeue(&ops, RequeueTarget::AllDead)
        .await
        .expect("requeue --all");
    assert_eq!(requeued.len(), 1);
    assert_eq!(requeued[0].job_id, job2);
    assert_eq!(app.wait_job(job2).await, "complete");
    app.drain().await;
    assert_eq!(mails_to(&app, &recipient2).len(), 1);
    assert_eq!(mails_to(&app, &recipient1).len(), 1, "still once");
    assert_eq!(sink(&app).count(), 2);
    assert_eq!(
        notice_jobs(&app)
            .await
            .iter()
            .map(|j| j.3.as_str())
            .collect::<Vec<_>>(),
        ["sent", "sent"]
    );
    assert_eq!(requeue_audit(&app).await.len(), 2);
    assert!(operations::requeue(&ops, RequeueTarget::AllDead)
        .await
        .unwrap()
        .is_empty());

    // purge: the DLQ is emptied, the job rows stay.
    let listed = operations::list(&ops).await.unwrap();
    assert!(listed.jobs.is_empty());
    let waiting = listed.dead_queue_messages.unwrap();
    assert!(waiting >= 2, "requeue leaves the DLQ copies: {listed:?}");
    let purged = operations::purge(&ops).await.expect("purge");
    assert_eq!(purged, waiting);
    let listed = operations::list(&ops).await.unwrap();
    assert_eq!(listed.dead_queue_messages, Some(0));
    assert!(listed.render().contains("0 dead job(s)"));
    assert_eq!(
        app.count("SELECT count(*) FROM jobs WHERE kind = 'send-notice'")
            .await,
        2
    );
    assert_eq!(operations::purge(&ops).await.unwrap(), 0);
    app.stop().await;
}

// R36
#[tokio::test]
async fn r36_requeue_refuses_jobs_that_are_not_dead_and_changes_nothing() {
    let app = spawn_app().await;
    let ops = settings(&app);
    let (a, b, case) = two_partners(&app, policy(true)).await;
    let recipients = json!([{ "user_id": b.user_id }]);
    app.share_and_settle(&a.user, case, partner_share(b.id, recipients))
        .await;
    let share_job: Uuid = sqlx::query_scalar("SELECT id FROM jobs WHERE kind = 'share-case'")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(app.job_status(share_job).await, "complete");
    let outbox = app.count("SELECT count(*) FROM outbox").await;
    let audit = app.count("SELECT count(*) FROM audit_log").await;

    let err = operations::requeue(&ops, RequeueTarget::Job(share_job))
        .await
        .unwrap_err();
    assert_eq!(
        err.downcast_ref::<OpsError>(),
        Some(&OpsError::NotDead {
            id: share_job,
            status: "complete".into()
        }),
        "{err:#}"
    );
    assert!(err.to_string().contains("only dead jobs"), "{err}");
    let missing = Uuid::new_v4();
    let err = operations::requeue(&ops, RequeueTarget::Job(missing))
        .await
        .unwrap_err();
    assert_eq!(
        err.downcast_ref::<OpsError>(),
        Some(&OpsError::NotFound(missing))
    );
    let none = operations::requeue(&ops, RequeueTarget::AllDead)
        .await
        .unwrap();
    assert!(none.is_empty(), "nothing is dead: {none:?}");

    assert_eq!(app.job_status(share_job).await, "complete");
    assert_eq!(app.count("SELECT count(*) FROM outbox").await, outbox);
    assert_eq!(app.count("SELECT count(*) FROM audit_log").await, audit);
    let listed = operations::list(&ops).await.unwrap();
    assert!(listed.jobs.is_empty());
    assert_eq!(listed.dead_queue_messages, Some(0));
    app.stop().await;
}

// R36: a dead share-case job. Its failure is simulated in SQL exactly as the
// runner records one (job `dead`, `on_dead` marks the share `failed`), while
// no worker runs; then requeue and a worker joining finish the share.
#[tokio::test]
async fn r36_requeue_of_a_dead_share_case_job_reopens_its_share() {
    let api = spawn_with(Options {
        roles: caseshare::startup::Roles::API,
        ..Default::default()
    })
    .await;
    let ops = settings(&api);
    let (a, b, case) = two_partners(&api, policy(true)).await;
    let share = api
        .share(&a.user, case, to_partner(b.id, json!({ "kind": "case" })))
        .await;
    let share_id: Uuid = share["id"].as_str().unwrap().parse().unwrap();
    let job: Uuid = share["job_id"].as_str().unwrap().parse().unwrap();
    eventually("the share job to be published", || async {
        let published: bool = sqlx::query_scalar(
            "SELECT bool_and(published_at IS NOT NULL) FROM outbox WHERE job_id = $1",
        )
        .bind(job)
        .fetch_one(&api.db)
        .await
        .unwrap();
        published.then_some(())
    })
    .await;
    sqlx::query(
        "UPDATE jobs SET status = 'dead', attempts = 8, deliveries = 8,
                last_error = 'gave up after 8 attempts: database: timeout', finished_at = now()
         WHERE id = $1",
    )
    .bind(job)
    .execute(&api.db)
    .await
    .unwrap();
    sqlx::query("UPDATE shares SET status = 'failed', failure = 'gave up' WHERE id = $1")
        .bind(share_id)
        .execute(&api.db)
        .await
        .unwrap();
    // R59: the sharer's own status event of the share.
    let processing_events = format!(
        "SELECT count(*) FROM outbox WHERE routing_key = 'status.{}.share.processing'",
        a.id
    );
    let processing_events = processing_events.as_str();
    let before = api.count(processing_events).await;

    let requeued = operations::requeue(&ops, RequeueTarget::AllDead)
        .await
        .expect("requeue");
    assert_eq!(requeued.len(), 1);
    assert_eq!(requeued[0].job_id, job);
    assert_eq!(
        requeued[0].subject_reset.as_deref(),
        Some(format!("share {share_id}: failed -> processing").as_str())
    );
    let (status, failure): (String, Option<String>) =
        sqlx::query_as("SELECT status::text, failure FROM shares WHERE id = $1")
            .bind(share_id)
            .fetch_one(&api.db)
            .await
            .unwrap();
    assert_eq!((status.as_str(), failure), ("processing", None));
    assert_eq!(api.count(processing_events).await, before + 1);
    let (attempts, status): (i32, String) =
        sqlx::query_as("SELECT attempts, status::text FROM jobs WHERE id = $1")
            .bind(job)
            .fetch_one(&api.db)
            .await
            .unwrap();
    assert_eq!((attempts, status.as_str()), (0, "queued"));
    let audit = requeue_audit(&api).await;
    assert_eq!(
        audit,
        vec![(
            Some(a.id),
            Some(share_id),
            json!({ "job_id": job, "kind": "share-case" })
        )]
    );

    // A worker joins: the share completes and the partner has the case.
    let workers = spawn_with(Options {
        roles: caseshare::startup::Roles::WORKER,
        join: Some((api.database_url.clone(), api.prefix.clone())),
        ..Default::default()
    })
    .await;
    assert_eq!(api.wait_job(job).await, "complete");
    let done = api.wait_share(&a.user, &share_id.to_string()).await;
    assert_eq!(done["status"], "complete", "{done}");
    let (s, _) = api.get(&format!("/v1/cases/{case}"), &b.admin).await;
    assert_eq!(s, reqwest::StatusCode::OK);
    api.drain().await;
    workers.stop().await;
    api.stop().await;
}

// R37
#[tokio::test]
async fn r37_queues_lists_every_queue_with_depth_and_consumers() {
    let app = spawn_app().await;
    let ops = settings(&app);
    let rows = eventually("workers to consume every job queue", || async {
        let rows = operations::queues(&ops).await.expect("queues");
        rows.iter()
            .filter(|q| q.queue.contains(".jobs.") || q.queue.contains(".events."))
            .all(|q| q.consumers.unwrap_or(0) >= 1)
            .then_some(rows)
    })
    .await;
    let names: Vec<&str> = rows.iter().map(|q| q.queue.as_str()).collect();
    let p = &app.prefix;
    for expected in [
        format!("{p}.jobs.share-case"),
        format!("{p}.jobs.send-notice"),
        format!("{p}.events.evidence-added"),
        format!("{p}.retry.0"),
        format!("{p}.retry.2"),
        format!("{p}.dead"),
    ] {
        assert!(names.contains(&expected.as_str()), "{names:?}");
    }
    assert!(rows.iter().all(|q| q.messages.is_some()), "{rows:?}");
    let dead = rows
        .iter()
        .find(|q| q.queue == format!("{p}.dead"))
        .unwrap();
    assert_eq!((dead.messages, dead.consumers), (Some(0), Some(0)));
    let text = operations::render_queues(&rows);
    assert!(text.starts_with("QUEUE"), "{text}");
    assert!(text.contains("MESSAGES") && text.contains("CONSUMERS"));
    assert_eq!(text.lines().count(), rows.len() + 1);

    // A prefix with no deployment: every queue is reported missing, no error.
    let mut other = ops.clone();
    other.amqp_prefix = format!("cs-absent-{}", &Uuid::new_v4().simple().to_string()[..8]);
    let rows = operations::queues(&other).await.expect("queues");
    assert!(rows.iter().all(|q| q.messages.is_none()), "{rows:?}");
    assert!(operations::render_queues(&rows).contains("missing"));
    let err = operations::purge(&other).await.unwrap_err();
    assert!(matches!(
        err.downcast_ref::<OpsError>(),
        Some(OpsError::QueueMissing(_))
    ));
    app.stop().await;
}

// R35, #21: a job left `running` (its worker stopped without the broker
// handing its message to another) is published again by the rescuer once
// it has shown no life for its lease, and finishes once.
#[tokio::test]
async fn r35_a_job_left_running_past_its_lease_is_rescued() {
    let app = spawn_with(Options {
        tune: Some(std::sync::Arc::new(
            |s: &mut caseshare::config::Settings| {
                s.job_lease_secs = 1;
            },
        )),
        ..Default::default()
    })
    .await;
    let a = app.create_org("Alpha PD", "lea").await;
    let case = app.create_case(&a.user, "Burglary").await;
    let accepted = app
        .add_evidence(&a.user, case, json!({ "title": "Doorbell video" }))
        .await;
    app.drain().await;
    let job: Uuid = sqlx::query_scalar("SELECT job_id FROM evidence WHERE case_id = $1")
        .bind(case)
        .fetch_one(&app.db)
        .await
        .unwrap();
    let _ = accepted;
    // As a worker that took the job and then froze leaves it.
    sqlx::query(
        "UPDATE jobs SET status = 'running', finished_at = NULL, updated_at = now() - interval '1 hour'
          WHERE id = $1",
    )
    .bind(job)
    .execute(&app.db)
    .await
    .unwrap();
    let (status, deliveries): (String, i32) =
        eventually("the stuck job rescued and finished", || async {
            let row: (String, i32) =
                sqlx::query_as("SELECT status::text, deliveries FROM jobs WHERE id = $1")
                    .bind(job)
                    .fetch_one(&app.db)
                    .await
                    .ok()?;
            (row.0 == "complete").then_some(row)
        })
        .await;
    assert_eq!(status, "complete");
    assert_eq!(deliveries, 2, "delivered once more, by the rescuer");
    // Finished jobs are left alone: no third delivery.
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    app.drain().await;
    let deliveries: i32 = sqlx::query_scalar("SELECT deliveries FROM jobs WHERE id = $1")
        .bind(job)
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(deliveries, 2);
    app.stop().await;
}
