//! The RabbitMQ permission layout an operator should use (README "Security
//! model"): in the deployment's vhost, an upstream publisher may only write
//! to the events exchange, a status reader may only read the status
//! exchange (through a queue of its own), and the service's own user does
//! the rest. Tested against the real broker with `rabbitmqctl` in a vhost of
//! the test's own; skipped (with a note) where `rabbitmqctl` cannot be run.

use crate::common::*;
use lapin::options::{
    BasicConsumeOptions, BasicPublishOptions, ConfirmSelectOptions, QueueBindOptions,
    QueueDeclareOptions,
};
use lapin::types::FieldTable;
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
    let app = spawn_with(Options {
        tune: Some(std::sync::Arc::new(move |s| s.amqp_url = url.clone())),
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
        "share.#".into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
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
    let refused_reader = match denied {
        Err(_) => true,
        Ok(_) => tokio::time::timeout(std::time::Duration::from_secs(5), async {
            while rch.status().connected() {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        })
        .await
        .is_ok(),
    };
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
    let ev = Uuid::new_v4();
    let body = serde_json::to_vec(
        &json!({ "org_id": a.id, "case_id": case, "id": ev, "title": "from upstream" }),
    )
    .unwrap();
    let confirm = uch
        .basic_publish(
            topology.events_exchange().into(),
            "evidence.added".into(),
            BasicPublishOptions::default(),
            &body,
            Default::default(),
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
        let refused = match sent {
            Err(_) => true,
            Ok(_) => tokio::time::timeout(std::time::Duration::from_secs(5), async {
                while ch.status().connected() {
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            })
            .await
            .is_ok(),
        };
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

    app.stop().await;
    ctl(&["delete_user", &upstream]);
    ctl(&["delete_user", &reader]);
    ctl(&["delete_vhost", &vhost]);
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
