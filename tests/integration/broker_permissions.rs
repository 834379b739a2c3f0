//! The RabbitMQ permission layout an operator should use (README "Security
//! model"): in the deployment's vhost, an upstream publisher may only write
//! to the events exchange, a status reader may only read the status
//! exchange (through a queue of its own), and the service's own user does
//! the rest; a status reader's bindings are confined to its org's events
//! (R59, a topic permission) and an upstream publisher to its org's cases
//! (the AMQP `user_id`, verified by RabbitMQ, bound to orgs in
//! `event_publishers`). Tested against the real broker with `rabbitmqctl` in
//! a vhost of the test's own; skipped (with a note) where `rabbitmqctl`
//! cannot be run.

use crate::common::*;
use lapin::options::{
    BasicConsumeOptions, BasicPublishOptions, ConfirmSelectOptions, QueueBindOptions,
    QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::BasicProperties;
use serde_json::json;
use uuid::Uuid;

fn ctl(args: &[&str]) -> bool {
    std::process::Command::new("rabbitmqctl")
        .args(args)
        .output()
        .is_ok_and(|o| o.status.success())
}

fn amqp(user: &str, password: &str, vhost: &str) -> String {
    format!("amqp://{user}:{password}@127.0.0.1:5672/{vhost}")
}

/// Whether `attempt` on `ch` was refused: an error at once, or the broker
/// closing the channel soon after.
async fn refused<T, E>(ch: &lapin::Channel, attempt: Result<T, E>) -> bool {
    match attempt {
        Err(_) => true,
        Ok(_) => tokio::time::timeout(std::time::Duration::from_secs(5), async {
            while ch.status().connected() {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        })
        .await
        .is_ok(),
    }
}

// R38, R59
#[tokio::test]
async fn broker_permissions_confine_upstream_publishers_and_status_readers() {
    let id = &Uuid::new_v4().simple().to_string()[..10];
    let vhost = format!("cs-perm-{id}");
    if !ctl(&["add_vhost", &vhost]) {
        eprintln!("skipped: rabbitmqctl is not available to this test");
        return;
    }
    let (upstream, reader) = (format!("upstream-{id}"), format!("reader-{id}"));
    assert!(ctl(&[
        "set_permissions",
        "-p",
        &vhost,
        "guest",
        ".*",
        ".*",
        ".*"
    ]));
    assert!(ctl(&["add_user", &upstream, "pw"]));
    assert!(ctl(&["add_user", &reader, "pw"]));
    let url = amqp("guest", "guest", &vhost);
    let api_url = url.clone();
    let app = spawn_with(Options {
        roles: caseshare::startup::Roles::API,
        tune: Some(std::sync::Arc::new(move |s| s.amqp_url = api_url.clone())),
        ..Default::default()
    })
    .await;
    let p = regex_escape(&app.prefix);
    // Upstream: write to the events exchange only; configure and read nothing.
    assert!(ctl(&[
        "set_permissions",
        "-p",
        &vhost,
        &upstream,
        "^$",
        &format!("^{p}\\.events$"),
        "^$"
    ]));
    // Reader: its own queues, bound to the status exchange, read from both.
    let own = format!("^{reader}\\..*$");
    assert!(ctl(&[
        "set_permissions",
        "-p",
        &vhost,
        &reader,
        &own,
        &own,
        &format!("^({p}\\.status|{reader}\\..*)$"),
    ]));

    let (a, b, case) = two_partners(&app, policy(true)).await;
    let topology = caseshare::amqp::Topology::new(&app.prefix, &[100, 200, 400]);
    // The workers: the upstream user is bound to Alpha PD alone.
    let bound = format!("{upstream}={}", a.id);
    let worker = spawn_with(Options {
        roles: caseshare::startup::Roles::WORKER,
        join: Some((app.database_url.clone(), app.prefix.clone())),
        tune: Some(std::sync::Arc::new(move |s| {
            s.amqp_url = url.clone();
            s.event_publishers = vec![bound.clone()];
        })),
        ..Default::default()
    })
    .await;
    // R59: the reader may bind to Alpha PD's status events only.
    assert!(ctl(&[
        "set_topic_permissions",
        "-p",
        &vhost,
        &reader,
        &topology.status_exchange(),
        "^$",
        &format!("^status\\.{}\\..*$", a.id),
    ]));

    // The reader listens to status events.
    let rconn = caseshare::amqp::connect(&amqp(&reader, "pw", &vhost), "reader")
        .await
        .unwrap();
    let rch = rconn.create_channel().await.unwrap();
    let queue = format!("{reader}.status");
    rch.queue_declare(
        queue.clone().into(),
        QueueDeclareOptions {
            exclusive: true,
            ..Default::default()
        },
        FieldTable::default(),
    )
    .await
    .unwrap();
    rch.queue_bind(
        queue.clone().into(),
        topology.status_exchange().into(),
        format!("status.{}.share.#", a.id).into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    // Another org's events, or everyone's, cannot be bound.
    for key in [
        format!("status.{}.#", b.id),
        "#".to_string(),
        "status.*.share.#".into(),
    ] {
        let ch = rconn.create_channel().await.unwrap();
        ch.queue_declare(
            format!("{reader}.other").into(),
            QueueDeclareOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
        let bind = ch
            .queue_bind(
                format!("{reader}.other").into(),
                topology.status_exchange().into(),
                key.clone().into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await;
        assert!(refused(&ch, bind).await, "the reader bound {key}");
    }
    let mut events = rch
        .basic_consume(
            queue.clone().into(),
            "r".into(),
            BasicConsumeOptions {
                no_ack: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
    app.share_case_with(&a.user, case, b.id).await;
    let got = tokio::time::timeout(
        std::time::Duration::from_secs(20),
        futures_util::StreamExt::next(&mut events),
    )
    .await
    .expect("a status event reaches the reader")
    .unwrap()
    .unwrap();
    assert!(String::from_utf8_lossy(&got.data).contains("share"));
    assert_eq!(
        got.routing_key.as_str(),
        format!("status.{}.share.processing", a.id)
    );
    // The reader cannot publish events.
    let denied = rch
        .basic_publish(
            topology.events_exchange().into(),
            "evidence.added".into(),
            BasicPublishOptions::default(),
            b"{}",
            Default::default(),
        )
        .await;
    let refused_reader = refused(&rch, denied).await;
    assert!(
        refused_reader,
        "a reader publishing to the events exchange is refused"
    );

    // Upstream: events are accepted and recorded...
    let uconn = caseshare::amqp::connect(&amqp(&upstream, "pw", &vhost), "upstream")
        .await
        .unwrap();
    let uch = uconn.create_channel().await.unwrap();
    uch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    let as_upstream = BasicProperties::default().with_user_id(upstream.clone().into());
    let ev = Uuid::new_v4();
    let confirm = uch
        .basic_publish(
            topology.events_exchange().into(),
            "evidence.added".into(),
            BasicPublishOptions::default(),
            &evidence_event(a.id, case, ev),
            as_upstream.clone(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    assert!(confirm.is_ack());
    eventually("the upstream event recorded", || async {
        (app.count(&format!("SELECT count(*) FROM evidence WHERE id = '{ev}'"))
            .await
            == 1)
            .then_some(())
    })
    .await;
    // ...only for its own org, and only when it says who it is: the event
    // without a user_id, and the one naming Beta PD (for Beta PD's case),
    // are dead-lettered and record nothing.
    let b_case = app.create_case(&b.user, "Beta's own").await;
    let (unsigned, foreign) = (Uuid::new_v4(), Uuid::new_v4());
    for (body, props) in [
        (
            evidence_event(a.id, case, unsigned),
            BasicProperties::default(),
        ),
        (evidence_event(b.id, b_case, foreign), as_upstream.clone()),
    ] {
        let confirm = uch
            .basic_publish(
                topology.events_exchange().into(),
                "evidence.added".into(),
                BasicPublishOptions::default(),
                &body,
                props,
            )
            .await
            .unwrap()
            .await
            .unwrap();
        assert!(confirm.is_ack());
    }
    let gconn = caseshare::amqp::connect(&amqp("guest", "guest", &vhost), "ops")
        .await
        .unwrap();
    let gch = gconn.create_channel().await.unwrap();
    let mut reasons = dead_letter_reasons(&gch, &topology, 2).await;
    reasons.sort();
    assert!(
        reasons[0].contains("may not publish for org"),
        "{reasons:?}"
    );
    assert!(reasons[1].contains("no AMQP user_id"), "{reasons:?}");
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM evidence WHERE id IN ('{unsigned}', '{foreign}')"
        ))
        .await,
        0
    );
    // And it cannot claim to be someone else: RabbitMQ checks the user_id.
    let ch = uconn.create_channel().await.unwrap();
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    let forged = ch
        .basic_publish(
            topology.events_exchange().into(),
            "evidence.added".into(),
            BasicPublishOptions::default(),
            &evidence_event(a.id, case, Uuid::new_v4()),
            BasicProperties::default().with_user_id("guest".into()),
        )
        .await;
    let forged_refused = match forged {
        Err(_) => true,
        Ok(confirm) => confirm.await.is_err() || refused(&ch, Ok::<(), ()>(())).await,
    };
    assert!(forged_refused, "a forged user_id is refused by the broker");
    // ...but jobs and status events cannot be forged, nor queues declared.
    for exchange in [topology.jobs_exchange(), topology.status_exchange()] {
        let ch = uconn.create_channel().await.unwrap();
        let sent = ch
            .basic_publish(
                exchange.clone().into(),
                "share-case".into(),
                BasicPublishOptions::default(),
                b"{}",
                Default::default(),
            )
            .await;
        let refused = refused(&ch, sent).await;
        assert!(refused, "upstream publishing to {exchange} is refused");
    }
    let ch = uconn.create_channel().await.unwrap();
    assert!(ch
        .queue_declare(
            format!("{}.mine", app.prefix).into(),
            QueueDeclareOptions::default(),
            FieldTable::default()
        )
        .await
        .is_err());

    let _ = gconn.close(200, "bye".into()).await;
    worker.stop().await;
    app.stop().await;
    ctl(&["delete_user", &upstream]);
    ctl(&["delete_user", &reader]);
    ctl(&["delete_vhost", &vhost]);
}

fn evidence_event(org: Uuid, case: Uuid, id: Uuid) -> Vec<u8> {
    serde_json::to_vec(
        &json!({ "org_id": org, "case_id": case, "id": id, "title": "from upstream" }),
    )
    .unwrap()
}

fn regex_escape(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                vec![c]
            } else {
                vec!['\\', c]
            }
        })
        .collect()
}
