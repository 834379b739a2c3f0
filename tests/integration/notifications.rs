//! Notifications (R32–R34), the exclusion of policy-filtered fields from
//! emails (R10) and status events (R15), through the real HTTP API, real
//! PostgreSQL and RabbitMQ and the in-test SMTP sink.

use crate::common::*;

use lapin::types::FieldTable;
use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

// ---------------------------------------------------------------------------
// Helpers (reading mails: `common::mail`).
// ---------------------------------------------------------------------------

fn is_revocation(mail: &Mail) -> bool {
    subject(mail).contains("revoked")
}

async fn notices(app: &TestApp, token: &str, share_id: &str) -> Vec<Value> {
    let (s, v) = app
        .get(&format!("/v1/shares/{share_id}/notices"), token)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v["items"].as_array().unwrap().clone()
}

async fn send_notice_jobs(app: &TestApp) -> Vec<(Uuid, i32, i32, String)> {
    sqlx::query_as(
        "SELECT id, attempts, deliveries, status::text FROM jobs WHERE kind = 'send-notice' ORDER BY created_at, id",
    )
    .fetch_all(&app.db)
    .await
    .unwrap()
}

// ---------------------------------------------------------------------------
// R32
// ---------------------------------------------------------------------------

// R32
#[tokio::test]
async fn r32_partner_share_emails_each_named_recipient_once_with_org_title_message_and_link() {
    let app = spawn_app().await;
    let (a, b, case) = two_partners(&app, policy(true)).await;
    let (b3_id, _) = app.create_user(b.id, "Beta PD Analyst", "user").await;
    // The group holds a user who is also named directly: still one mail each.
    let group = create_group(&app, b.id, "Detectives", &[b.user_id, b3_id]).await;
    let outside = "reviewer@reviewers.beta-pd.example";
    app.share_and_settle(
        &a.user,
        case,
        partner_share(
            b.id,
            json!([{ "user_id": b.user_id }, { "group_id": group }, { "email": outside }]),
        ),
    )
    .await;

    let expected = [
        app.user_email(b.user_id).await,
        app.user_email(b3_id).await,
        outside.to_string(),
    ];
    let mails = sink(&app).mails();
    assert_eq!(
        mails.len(),
        expected.len(),
        "one mail per distinct recipient: {:?}",
        mails.iter().map(|m| &m.to).collect::<Vec<_>>()
    );
    for address in &expected {
        let got = mails_to(&app, address);
        assert_eq!(got.len(), 1, "{address} is emailed exactly once");
        let text = readable(&got[0]);
        assert!(text.contains("Alpha PD"), "sharing org in: {text}");
        assert!(text.contains("Burglary"), "case title in: {text}");
        assert!(text.contains("Please review"), "message in: {text}");
        let link = view_link(&text).expect("a View link");
        assert_eq!(link, format!("http://caseshare.test/cases/{case}"));
    }
    // Neither the partner's notification desk nor anyone unnamed is emailed.
    assert!(mails_to(&app, "desk@beta-pd.example").is_empty());
    assert!(mails_to(&app, &app.user_email(b.admin_id).await).is_empty());
    // The link opens the external case for a recipient.
    let (s, v) = app.get(&format!("/v1/cases/{case}"), &b.user).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    app.stop().await;
}

// R32
#[tokio::test]
async fn r32_share_naming_nobody_emails_the_partner_notification_address() {
    let app = spawn_app().await;
    let (a, b, case) = two_partners(&app, policy(true)).await;
    app.share_and_settle(&a.user, case, partner_share(b.id, json!([])))
        .await;

    let mails = sink(&app).mails();
    assert_eq!(
        mails.len(),
        1,
        "{:?}",
        mails.iter().map(|m| &m.to).collect::<Vec<_>>()
    );
    let desk = mails_to(&app, "desk@beta-pd.example");
    assert_eq!(desk.len(), 1, "the partner's notification address");
    let text = readable(&desk[0]);
    assert!(
        text.contains("Alpha PD") && text.contains("Burglary") && text.contains("Please review"),
        "{text}"
    );
    assert!(
        view_link(&text).is_some_and(|l| l.starts_with("http://caseshare.test/cases/")),
        "{text}"
    );
    // Users of the partner org who were not named get nothing.
    assert!(mails_to(&app, &app.user_email(b.user_id).await).is_empty());
    app.stop().await;
}

// R32
#[tokio::test]
async fn r32_internal_share_emails_named_users_and_group_members() {
    let app = spawn_app().await;
    let a = app.create_org("Alpha PD", "lea").await;
    app.setup(&a, policy(true), false).await;
    let case = app.create_case(&a.user, "Burglary").await;
    let (a3_id, _) = app.create_user(a.id, "Alpha PD Analyst", "user").await;
    let (a4_id, _) = app.create_user(a.id, "Alpha PD Sergeant", "user").await;
    let group = create_group(&app, a.id, "Night shift", &[a3_id, a4_id]).await;
    app.share_and_settle(
        &a.user,
        case,
        json!({
            "scope": { "kind": "case" },
            "target": { "kind": "internal", "recipients": [{ "user_id": a.admin_id }, { "group_id": group }] },
            "message": "Please review"
        }),
    )
    .await;

    let expected = [
        app.user_email(a.admin_id).await,
        app.user_email(a3_id).await,
        app.user_email(a4_id).await,
    ];
    assert_eq!(sink(&app).mails().len(), expected.len());
    for address in &expected {
        let got = mails_to(&app, address);
        assert_eq!(got.len(), 1, "{address} is emailed exactly once");
        let text = readable(&got[0]);
        assert!(
            text.contains("Alpha PD")
                && text.contains("Burglary")
                && text.contains("Please review"),
            "{text}"
        );
        assert_eq!(
            view_link(&text).as_deref(),
            Some(format!("http://caseshare.test/cases/{case}").as_str())
        );
    }
    // The sharer and the org's notification address are not emailed.
    assert!(mails_to(&app, &app.user_email(a.user_id).await).is_empty());
    assert!(mails_to(&app, "desk@alpha-pd.example").is_empty());
    app.stop().await;
}

// R10, R32
#[tokio::test]
async fn r10_r32_fields_the_policy_excludes_never_appear_in_an_email() {
    let app = spawn_app().await;
    let mut p = policy(false);
    set(&mut p, "permissions.copy_download", true);
    let (a, b, case) = two_partners(&app, p).await;
    let secrets = [
        "Zed Secretname",
        "zed.secret@hidden.example",
        "+1 555 0199",
        "1971-04-05",
        "secret transcript words",
        "secret evidence note",
        "secret-evidence-tag",
        "secret custom value",
    ];
    app.add_evidence(
        &a.user,
        case,
        json!({
            "title": "Doorbell video",
            "notes": ["secret evidence note"],
            "tags": ["secret-evidence-tag"],
            "custom_metadata": { "k": "secret custom value" },
            "community_request": {
                "caption": "Neighbour footage",
                "pii": { "name": "Zed Secretname", "date_of_birth": "1971-04-05",
                         "email": "zed.secret@hidden.example", "phone": "+1 555 0199" }
            },
            "transcript": "secret transcript words"
        }),
    )
    .await;
    app.drain().await;
    let share_id = app
        .share_and_settle(
            &a.user,
            case,
            partner_share(
                b.id,
                json!([{ "user_id": b.user_id }, { "email": format!("reviewer@{}", org_domain("Beta PD")) }]),
            ),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    // And the revocation mails, too.
    let (s, v) = app
        .post(&format!("/v1/shares/{share_id}/revoke"), &a.user, json!({}))
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    app.drain().await;

    let mails = sink(&app).mails();
    assert_eq!(mails.len(), 4, "share and revoke mails for two recipients");
    for mail in &mails {
        let text = readable(mail);
        assert!(text.contains("Burglary"), "{text}");
        for secret in secrets {
            assert!(
                !mail.data.contains(secret) && !text.contains(secret),
                "{secret:?} leaked into an email: {text}"
            );
        }
    }
    app.stop().await;
}

// ---------------------------------------------------------------------------
// R33
// ---------------------------------------------------------------------------

// R33
#[tokio::test]
async fn r33_revocation_emails_the_receivers_once_even_when_jobs_are_redelivered() {
    let app = spawn_app().await;
    let (a, b, case) = two_partners(&app, policy(true)).await;
    let outside = "reviewer@reviewers.beta-pd.example";
    let share_id = app
        .share_and_settle(
            &a.user,
            case,
            partner_share(
                b.id,
                json!([{ "user_id": b.user_id }, { "email": outside }]),
            ),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let recipients = [app.user_email(b.user_id).await, outside.to_string()];

    let (s, v) = app
        .post(&format!("/v1/shares/{share_id}/revoke"), &a.user, json!({}))
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    // Revoking again is idempotent: no second revocation notice.
    let (s, _) = app
        .post(&format!("/v1/shares/{share_id}/revoke"), &a.user, json!({}))
        .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    app.drain().await;

    let check = |app: &TestApp| {
        for address in &recipients {
            let got = mails_to(app, address);
            let revokes = got.iter().filter(|m| is_revocation(m)).count();
            assert_eq!(revokes, 1, "{address}: one revocation mail");
            assert_eq!(got.len() - revokes, 1, "{address}: one share mail");
            let text = readable(got.iter().find(|m| is_revocation(m)).unwrap());
            assert!(
                text.contains("Alpha PD") && text.contains("Burglary"),
                "{text}"
            );
        }
        assert_eq!(sink(app).mails().len(), 2 * recipients.len());
    };
    check(&app);
    let kinds: Vec<String> = notices(&app, &a.user, &share_id)
        .await
        .iter()
        .map(|n| {
            format!(
                "{}:{}",
                n["kind"].as_str().unwrap(),
                n["status"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        kinds.iter().filter(|k| *k == "revoke:sent").count(),
        2,
        "{kinds:?}"
    );
    assert_eq!(
        kinds.iter().filter(|k| *k == "share:sent").count(),
        2,
        "{kinds:?}"
    );

    // A broker redelivery of every finished SendNotice job changes nothing.
    let topology = caseshare::amqp::Topology::new(&app.prefix, &[100, 200, 400]);
    let conn = caseshare::amqp::connect(&app.amqp_url, "redeliver")
        .await
        .unwrap();
    let publisher = caseshare::amqp::Publisher::open(&conn).await.unwrap();
    let redeliver = |job: Uuid| {
        let publisher = publisher.clone();
        let exchange = topology.jobs_exchange();
        async move {
            let body = serde_json::to_vec(&json!({ "job_id": job })).unwrap();
            publisher
                .publish(&exchange, "send-notice", &body, FieldTable::default(), None)
                .await
                .unwrap();
        }
    };
    let jobs = send_notice_jobs(&app).await;
    assert_eq!(jobs.len(), 4);
    for (job, ..) in &jobs {
        redeliver(*job).await;
    }
    // And again, as if the worker had died after sending but before recording
    // the job's outcome: the handler runs again and must find its notice sent.
    sqlx::query("UPDATE jobs SET status = 'running' WHERE kind = 'send-notice'")
        .execute(&app.db)
        .await
        .unwrap();
    for (job, ..) in &jobs {
        redeliver(*job).await;
    }
    eventually("the redelivered jobs to run again", || async {
        let now = send_notice_jobs(&app).await;
        now.iter()
            .zip(&jobs)
            .all(|(n, before)| n.3 == "complete" && n.2 > before.2)
            .then_some(())
    })
    .await;
    app.drain().await;
    check(&app);
    let _ = conn.close(200, "bye".into()).await;
    app.stop().await;
}

// R33, R35
#[tokio::test]
async fn r33_a_crash_between_smtp_accept_and_ack_sends_no_second_copy() {
    let app = spawn_app().await;
    let (a, b, case) = two_partners(&app, policy(true)).await;
    let (b3_id, _) = app.create_user(b.id, "Beta PD Analyst", "user").await;
    let group = create_group(&app, b.id, "Detectives", &[b.admin_id, b3_id]).await;
    let outside = "reviewer@reviewers.beta-pd.example";
    // The worker dies after one notice's SMTP accept, before its ack; the
    // other notices are in flight on the same worker at that moment.
    let faults = app.app.as_ref().unwrap().faults();
    faults.crash_after_effect_once(<caseshare::notify::SendNotice as caseshare::jobs::Job>::NAME);
    app.share_and_settle(
        &a.user,
        case,
        partner_share(
            b.id,
            json!([{ "user_id": b.user_id }, { "group_id": group }, { "email": outside }]),
        ),
    )
    .await;
    assert!(faults.has_crashed(), "a worker died after an SMTP accept");

    let recipients = [
        app.user_email(b.user_id).await,
        app.user_email(b.admin_id).await,
        app.user_email(b3_id).await,
        outside.to_string(),
    ];
    for address in &recipients {
        assert_eq!(mails_to(&app, address).len(), 1, "{address} got one mail");
    }
    assert_eq!(sink(&app).mails().len(), recipients.len());
    let jobs = send_notice_jobs(&app).await;
    assert!(jobs.iter().all(|j| j.3 == "complete"), "{jobs:?}");
    let deliveries = jobs.iter().map(|j| j.2).max().unwrap();
    assert!(
        deliveries >= 2,
        "the crashed job was redelivered ({jobs:?})"
    );
    app.stop().await;
}

// ---------------------------------------------------------------------------
// R34
// ---------------------------------------------------------------------------

// R34
#[tokio::test]
async fn r34_transient_smtp_failures_are_retried_until_delivered_once() {
    let app = spawn_app().await;
    let (a, b, case) = two_partners(&app, policy(true)).await;
    sink(&app).set_mode(Mode::Transient(2));
    let share_id = app
        .share_and_settle(
            &a.user,
            case,
            partner_share(b.id, json!([{ "user_id": b.user_id }])),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_string();

    let address = app.user_email(b.user_id).await;
    let mails = mails_to(&app, &address);
    assert_eq!(mails.len(), 1, "delivered once after the retries");
    assert_eq!(sink(&app).mails().len(), 1);
    assert_eq!(sink(&app).rejected(), 2, "two 451 answers were retried");
    let jobs = send_notice_jobs(&app).await;
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].3, "complete");
    assert!(jobs[0].1 >= 3, "attempts: {jobs:?}");

    let items = notices(&app, &a.user, &share_id).await;
    assert_eq!(items.len(), 1, "{items:?}");
    let notice = &items[0];
    assert_eq!(notice["status"], "sent", "{notice}");
    assert_eq!(notice["recipient"], address.as_str());
    assert!(notice["attempts"].as_i64().unwrap() >= 3, "{notice}");
    assert!(notice["last_error"].is_null(), "{notice}");
    // The delivered mail carries the notice's stable Message-ID.
    assert_eq!(
        header(&mails[0], "Message-ID").as_deref(),
        notice["message_id"].as_str(),
        "{}",
        mails[0].data
    );
    app.stop().await;
}

// R34
#[tokio::test]
async fn r34_a_permanent_smtp_failure_marks_the_notice_failed_and_the_share_stays_complete() {
    let app = spawn_app().await;
    let (a, b, case) = two_partners(&app, policy(true)).await;
    sink(&app).set_mode(Mode::Permanent);
    let share_id = app
        .share_and_settle(
            &a.user,
            case,
            partner_share(b.id, json!([{ "user_id": b.user_id }])),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_string();

    let items = notices(&app, &a.user, &share_id).await;
    assert_eq!(items.len(), 1, "{items:?}");
    let notice = &items[0];
    assert_eq!(notice["status"], "failed", "visible to operators: {notice}");
    let error = notice["last_error"].as_str().unwrap_or_default();
    assert!(error.contains("550"), "the SMTP reason is kept: {notice}");
    assert!(sink(&app).mails().is_empty());
    assert!(sink(&app).rejected() >= 1);

    let jobs = send_notice_jobs(&app).await;
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].3, "dead", "{jobs:?}");
    assert_eq!(jobs[0].1, 1, "a 5xx is not retried: {jobs:?}");
    let (_, share) = app.get(&format!("/v1/shares/{share_id}"), &a.user).await;
    assert_eq!(share["status"], "complete", "{share}");
    // The partner still has the case.
    let (s, _) = app.get(&format!("/v1/cases/{case}"), &b.user).await;
    assert_eq!(s, StatusCode::OK);
    app.stop().await;
}

// ---------------------------------------------------------------------------
// R15
// ---------------------------------------------------------------------------

// R15, R10, R59
#[tokio::test]
async fn r15_r59_status_events_carry_ids_and_status_per_concerned_org() {
    let app = spawn_app().await;
    let a = app.create_org("Alpha PD", "lea").await;
    let da = app.create_org("County DA", "justice").await;
    app.partner(a.id, da.id).await;
    app.setup(&a, policy(true), false).await;
    let case = app.create_case(&a.user, "Burglary").await;
    let evidence_values = [
        "Zulu doorbell footage",
        "a dark alley description",
        "secret transcript words",
        "secret evidence note",
        "Zed Secretname",
    ];
    app.add_evidence(
        &a.user,
        case,
        json!({
            "title": "Zulu doorbell footage",
            "description": "a dark alley description",
            "notes": ["secret evidence note"],
            "community_request": { "caption": "c", "pii": { "name": "Zed Secretname" } },
            "transcript": "secret transcript words"
        }),
    )
    .await;
    app.drain().await;

    // R59: each org reads its own events, bound by its id.
    let sharer = StatusListener::bind(&app, a.id, &["share.#", "import.#"]).await;
    let receiver = StatusListener::bind(&app, da.id, &["share.#", "import.#"]).await;
    let all = StatusListener::bind_all(&app).await;
    let share = app
        .share(&a.user, case, partner_share(da.id, json!([])))
        .await;
    let share_id = share["id"].as_str().unwrap().to_string();
    app.wait_share(&a.user, &share_id).await;

    let wanted = ["share.processing", "share.complete", "import.complete"];
    let mut seen = Vec::new();
    for listener in [&sharer, &receiver] {
        let events = listener.wait_for(&wanted).await;
        for key in wanted {
            let (_, v) = events.iter().find(|(k, _)| k == key).unwrap();
            assert_eq!(v["share_id"], share_id.as_str(), "{key}: {v}");
            let status = key.split_once('.').unwrap().1;
            assert_eq!(v["status"], status, "{key}: {v}");
        }
        seen.push(events);
    }
    // The receiver learns its imported case; the sharer only that it was
    // imported.
    let import = |events: &[(String, Value)]| {
        events
            .iter()
            .find(|(k, _)| k == "import.complete")
            .unwrap()
            .1
            .clone()
    };
    assert!(import(&seen[1])["imported_case_id"].is_string(), "{seen:?}");
    assert!(
        import(&seen[0]).get("imported_case_id").is_none(),
        "{seen:?}"
    );
    // One event per concerned org, and no other org's key carries any.
    let everything = all
        .wait_for(&[
            &format!("status.{}.share.complete", a.id),
            &format!("status.{}.share.complete", da.id),
            &format!("status.{}.import.complete", a.id),
            &format!("status.{}.import.complete", da.id),
        ])
        .await;
    assert_eq!(everything.len(), 6, "{everything:?}");
    for (key, body) in everything.iter().chain(seen.iter().flatten()) {
        assert!(
            key.starts_with(&format!("status.{}.", a.id))
                || key.starts_with(&format!("status.{}.", da.id))
                || !key.starts_with("status."),
            "{key}"
        );
        let body = body.to_string();
        for value in evidence_values {
            assert!(!body.contains(value), "{value:?} leaked into {key}: {body}");
        }
    }
    for listener in [sharer, receiver, all] {
        listener.close().await;
    }
    app.stop().await;
}

// R33, R34 (issue 21, item 5): a notice claimed by a worker that was killed
// mid-send is taken over when the claim's lease ends, by the delivery that
// finds it: the mail goes out just after the lease, and no attempt is spent
// on backoff. (Before, every redelivery within the lease failed as "being
// sent by another worker": here the test's 4 attempts ran out at once and
// the notice was given up on.)
#[tokio::test]
async fn r34_a_killed_workers_claim_is_taken_over_when_its_lease_ends() {
    let app = spawn_app().await;
    let (a, b, case) = two_partners(&app, policy(true)).await;
    let share = app.share_case_with(&a.user, case, b.id).await;
    app.drain().await;
    let share_id: Uuid = share["id"].as_str().unwrap().parse().unwrap();
    let to = "clerk@beta.example".to_string();
    // The notice and its job, with the claim a killed worker left: 3 s of
    // its lease still to run.
    let mut tx = app.db.begin().await.unwrap();
    caseshare::notify::enqueue_tx(
        &mut tx,
        caseshare::notify::NoticeKind::Share,
        Some(share_id),
        None,
        std::slice::from_ref(&to),
    )
    .await
    .unwrap();
    sqlx::query(
        "UPDATE notices SET claimed_until = now() + interval '3 seconds' WHERE recipient = $1",
    )
    .bind(&to)
    .execute(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let start = std::time::Instant::now();
    let sink = app.smtp.as_ref().unwrap();
    eventually("the taken-over notice to be mailed", || async {
        sink.mails()
            .iter()
            .any(|m| m.to.iter().any(|t| t == &to))
            .then_some(())
    })
    .await;
    let after = start.elapsed();
    assert!(
        after >= std::time::Duration::from_millis(2_500)
            && after < std::time::Duration::from_secs(6),
        "mailed {after:?} after the commit; the lease had 3 s left"
    );
    app.drain().await;
    let (job_attempts, notice_attempts, status): (i32, i32, String) = sqlx::query_as(
        "SELECT j.attempts, n.attempts, n.status::text FROM notices n
           JOIN jobs j ON j.kind = 'send-notice' AND j.payload->>'notice_id' = n.id::text
          WHERE n.recipient = $1",
    )
    .bind(&to)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(
        (job_attempts, notice_attempts, status.as_str()),
        (1, 1, "sent"),
        "one attempt, one claim, sent"
    );
    app.stop().await;
}

// R32, #22: with no SMTP relay configured (outside production), a share's
// email is written as an `.eml` file to the mail directory, sent once, not
// retried into the dead letters.
#[tokio::test]
async fn r32_without_a_relay_emails_are_written_as_eml_files() {
    let app = spawn_with(Options {
        smtp: false,
        tune: Some(std::sync::Arc::new(
            |s: &mut caseshare::config::Settings| {
                s.smtp_url = String::new();
            },
        )),
        ..Default::default()
    })
    .await;
    let (a, b, case) = two_partners(&app, policy(true)).await;
    share_naming_user(&app, &a, case, &b, json!({ "kind": "case" })).await;
    app.drain().await;
    let dir = std::env::temp_dir()
        .join(format!("caseshare-test-{}-mail", app.prefix))
        .display()
        .to_string();
    let emails: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .flatten()
        .filter(|f| f.path().extension().is_some_and(|x| x == "eml"))
        .map(|f| std::fs::read_to_string(f.path()).unwrap())
        .collect();
    let to_b: Vec<&String> = emails
        .iter()
        .filter(|m| m.contains("beta.pd.user@beta-pd.example"))
        .collect();
    assert_eq!(to_b.len(), 1, "one email to the named user: {emails:?}");
    assert!(to_b[0].contains("Subject:"), "{}", to_b[0]);
    let sent: i64 = sqlx::query_scalar("SELECT count(*) FROM notices WHERE status::text = 'sent'")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert!(sent >= 1);
    let _ = std::fs::remove_dir_all(&dir);
    app.stop().await;
}

// R32, #22: the "View" link follows CASESHARE_CASE_URL (the case UI belongs
// to the host product), with the case as the recipient sees it.
#[tokio::test]
async fn r32_the_view_link_follows_the_configured_case_url() {
    let app = spawn_with(Options {
        tune: Some(std::sync::Arc::new(
            |s: &mut caseshare::config::Settings| {
                s.case_url = "https://rms.example/#/cases/{case_id}?via=caseshare".into();
            },
        )),
        ..Default::default()
    })
    .await;
    let (a, b, case) = two_partners(&app, policy(true)).await;
    share_naming_user(&app, &a, case, &b, json!({ "kind": "case" })).await;
    app.drain().await;
    let mails = mails_to(&app, &app.user_email(b.user_id).await);
    assert_eq!(mails.len(), 1);
    let text = readable(&mails[0]);
    assert!(
        text.contains(&format!("https://rms.example/#/cases/{case}?via=caseshare")),
        "{text}"
    );
    app.stop().await;
}
