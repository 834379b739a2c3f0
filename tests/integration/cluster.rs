//! The RabbitMQ cluster story (R35, R36, R38; issue #13), for real: three
//! RabbitMQ nodes on loopback (`.ci/rabbit-cluster`), the service given all
//! three in `CASESHARE_AMQP_URL`, a burst of evidence over HTTP and over the
//! events exchange, and the node that leads the jobs queues stopped in the
//! middle of it. Nothing accepted may be lost and nothing may happen twice.
//!
//! It starts three Erlang VMs and takes about 45 s, so it runs only with
//! `CASESHARE_TEST_CLUSTER=1` (`.ci/run` sets it); otherwise it prints why it
//! did nothing. The nodes are stopped and their directory removed when the
//! test ends, passed or failed (`CASESHARE_CLUSTER_KEEP=1` keeps them, to
//! look around). `CASESHARE_CLUSTER_BURST` (2000) and
//! `CASESHARE_CLUSTER_EVENTS` (500) size the burst; `CASESHARE_CLUSTER_STOP`
//! is `stop_app` (RabbitMQ stops cleanly, the default) or `kill` (the
//! node's VM gets SIGKILL).

use crate::common::*;
use futures_util::stream::{self, StreamExt};
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// A progress line on stderr (`--nocapture` shows it), with the time since `t0`.
macro_rules! step {
    ($t0:expr, $($arg:tt)*) => {
        eprintln!("[cluster {:>6.1?}] {}", $t0.elapsed(), format!($($arg)*))
    };
}

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/.ci/rabbit-cluster");
/// How long the whole burst may take to drain before the test calls it stuck.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(240);

fn env_num(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

/// Run `.ci/rabbit-cluster ARGS`; its stdout, or a panic with its output.
fn script(args: &[&str]) -> String {
    let out = Command::new(SCRIPT)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{SCRIPT}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{SCRIPT} {args:?} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

async fn script_async(args: &[&str]) -> String {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        script(&args)
    })
    .await
    .expect("script task")
}

/// The three nodes, stopped (and their directory removed) on drop.
struct Cluster {
    urls: String,
}

impl Cluster {
    fn start() -> Cluster {
        script(&["start"]);
        Cluster {
            urls: script(&["urls"]).trim().to_string(),
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if std::env::var("CASESHARE_CLUSTER_KEEP").as_deref() == Ok("1") {
            eprintln!("CASESHARE_CLUSTER_KEEP=1: nodes left running; `{SCRIPT} stop` stops them");
            return;
        }
        let _ = Command::new(SCRIPT).arg("stop").status();
    }
}

/// The stopped node, brought back when dropped: a failing test must not
/// leave a member down, or the harness's queue cleanup waits on it.
struct StoppedNode {
    n: String,
    how: String,
    back: bool,
}

impl StoppedNode {
    async fn bring_back(&mut self) -> Duration {
        let t = Instant::now();
        let verb = if self.how == "kill" {
            "restart"
        } else {
            "start-app"
        };
        script_async(&[verb, &self.n]).await;
        self.back = true;
        t.elapsed()
    }
}

impl Drop for StoppedNode {
    fn drop(&mut self) {
        if !self.back {
            let verb = if self.how == "kill" {
                "restart"
            } else {
                "start-app"
            };
            let _ = Command::new(SCRIPT).args([verb, &self.n]).status();
        }
    }
}

/// Leader node of each of `queues`, as node 1 (or another running node) sees it.
async fn leaders(queues: &[String], ask: u8) -> HashMap<String, String> {
    let out = script_async(&[
        "ctl",
        &ask.to_string(),
        "list_queues",
        "-q",
        "--formatter",
        "json",
        "name",
        "leader",
    ])
    .await;
    let rows: Vec<Value> = serde_json::from_str(out.trim()).expect("list_queues JSON");
    rows.iter()
        .filter_map(|r| {
            let name = r["name"].as_str()?;
            let leader = r["leader"].as_str()?;
            queues
                .iter()
                .any(|q| q == name)
                .then(|| (name.to_string(), leader.to_string()))
        })
        .collect()
}

fn node_number(node: &str) -> u8 {
    node.trim_start_matches("cs")
        .split('@')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("not a node of the test cluster: {node}"))
}

fn event(org: Uuid, case: Uuid, id: Uuid, title: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({ "org_id": org, "case_id": case, "id": id, "title": title }))
        .unwrap()
}

/// Publish `bodies` to the events exchange as an upstream system would:
/// confirmed, in chunks of 25 spread over the burst, first connected to
/// `first` (the node that is about to be stopped); when the connection or a
/// confirm fails, reconnect to any node of `urls` and publish the whole chunk
/// again. At-least-once, so some events may reach the broker twice; the
/// service must record each once. Returns how many publishes were repeated
/// and when the last confirm arrived.
async fn publish_events(
    first: String,
    urls: String,
    exchange: String,
    bodies: Vec<Vec<u8>>,
) -> (usize, Duration) {
    let t0 = Instant::now();
    let mut target = first;
    let mut repeated = 0;
    let mut conn: Option<(lapin::Connection, lapin::Channel)> = None;
    let deadline = Instant::now() + DRAIN_TIMEOUT;
    for chunk in bodies.chunks(25) {
        let mut tries = 0;
        loop {
            assert!(Instant::now() < deadline, "events could not be published");
            if conn.is_none() {
                conn = async {
                    let c = caseshare::amqp::connect(&target, "cluster-test-upstream")
                        .await
                        .ok()?;
                    let ch = c.create_channel().await.ok()?;
                    ch.confirm_select(ConfirmSelectOptions::default())
                        .await
                        .ok()?;
                    Some((c, ch))
                }
                .await;
            }
            let Some((_, ch)) = &conn else {
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            };
            if tries > 0 {
                repeated += chunk.len();
            }
            tries += 1;
            let ok = async {
                let mut confirms = Vec::new();
                for body in chunk {
                    confirms.push(
                        ch.basic_publish(
                            exchange.clone().into(),
                            caseshare::amqp::EVIDENCE_ADDED_ROUTING_KEY.into(),
                            BasicPublishOptions {
                                mandatory: true,
                                ..Default::default()
                            },
                            body,
                            lapin::BasicProperties::default().with_delivery_mode(2),
                        )
                        .await
                        .ok()?,
                    );
                }
                for c in confirms {
                    let confirm = tokio::time::timeout(Duration::from_secs(10), c)
                        .await
                        .ok()?
                        .ok()?;
                    if confirm.is_nack() || confirm.take_message().is_some() {
                        return None;
                    }
                }
                Some(())
            }
            .await;
            if ok.is_some() {
                tokio::time::sleep(Duration::from_millis(200)).await;
                break;
            }
            conn = None;
            target = urls.clone();
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    if let Some((c, _)) = conn {
        let _ = c.close(200, "bye".into()).await;
    }
    (repeated, t0.elapsed())
}

/// Jobs not yet finished plus outbox rows not yet published.
async fn busy(app: &TestApp) -> i64 {
    app.count(
        "SELECT (SELECT count(*) FROM jobs WHERE status IN ('queued', 'running', 'retrying'))
              + (SELECT count(*) FROM outbox WHERE published_at IS NULL)",
    )
    .await
}

/// A counter's total over its label sets in the app's `/metrics`.
async fn metric_sum(app: &TestApp, name: &str) -> f64 {
    let text = app
        .send(app.client.get(format!("{}/metrics", app.base)))
        .await
        .body;
    let text = String::from_utf8(text).expect("metrics are text");
    text.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

// R35, R36, R38: three RabbitMQ nodes; the node leading the jobs queues is
// stopped mid-burst; every accepted item is recorded once, shared once per
// partner, every job completes, no notice is sent twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn r35_r36_three_node_cluster_loses_its_leader_mid_burst_and_nothing_is_lost_or_doubled() {
    if std::env::var("CASESHARE_TEST_CLUSTER").as_deref() != Ok("1") {
        eprintln!(
            "cluster test not run: set CASESHARE_TEST_CLUSTER=1 (it starts three RabbitMQ nodes \
             with .ci/rabbit-cluster, about 45 s)"
        );
        return;
    }
    let items = env_num("CASESHARE_CLUSTER_BURST", 2000);
    let events = env_num("CASESHARE_CLUSTER_EVENTS", 500);
    let how = std::env::var("CASESHARE_CLUSTER_STOP").unwrap_or_else(|_| "stop_app".into());
    assert!(
        how == "stop_app" || how == "kill",
        "CASESHARE_CLUSTER_STOP is stop_app or kill"
    );

    let started = Instant::now();
    let cluster = tokio::task::spawn_blocking(Cluster::start).await.unwrap();
    let cluster_up = started.elapsed();
    step!(started, "cluster up: {}", cluster.urls);
    let app = spawn_with(Options {
        amqp_url: Some(cluster.urls.clone()),
        // Generous: a failover may cost a job an attempt or two.
        max_attempts: 8,
        ..Default::default()
    })
    .await;

    // An owner and three partners; two shares before the burst, one during it.
    let a = app.create_org("Alpha PD", "lea").await;
    let partners = [
        app.create_org("Beta PD", "lea").await,
        app.create_org("Gamma DA", "justice").await,
        app.create_org("Delta PD", "lea").await,
    ];
    app.setup(&a, policy(true), false).await;
    let case = app.create_case(&a.user, "Convoy").await;
    for p in &partners {
        app.partner(a.id, p.id).await;
    }
    for p in &partners[..2] {
        app.share_and_settle(
            &a.user,
            case,
            partner_share(p.id, json!([{ "user_id": p.user_id }])),
        )
        .await;
    }

    step!(started, "two shares done");
    // The leader of the jobs queues, once the workers consume there.
    let topology = caseshare::amqp::Topology::new(&app.prefix, &[100, 200, 400])
        .with_job_kinds(caseshare::worker::registry().names());
    let job_queues: Vec<String> = topology
        .job_kinds
        .iter()
        .map(|k| topology.job_queue(k))
        .chain([topology.events_queue()])
        .collect();
    let evidence_queue = topology.job_queue("evidence-added");
    let before = leaders(&job_queues, 1).await;
    let leader = before
        .get(&evidence_queue)
        .unwrap_or_else(|| panic!("no leader for {evidence_queue} in {before:?}"))
        .clone();
    {
        let conn = caseshare::amqp::connect(&cluster.urls, "cluster-test-probe")
            .await
            .unwrap();
        wait_for_events_consumer(&conn, &topology).await;
        let _ = conn.close(200, "bye".into()).await;
    }

    step!(started, "leaders: {before:?}");
    // The burst: HTTP posts, 8 in flight, and events on the broker alongside.
    let event_ids: Vec<Uuid> = (0..events).map(|_| Uuid::new_v4()).collect();
    let bodies = event_ids
        .iter()
        .enumerate()
        .map(|(i, id)| event(a.id, case, *id, &format!("event {i}")))
        .collect();
    let burst_start = Instant::now();
    let leader_url = caseshare::amqp::node_urls(&cluster.urls)
        .nth(usize::from(node_number(&leader)) - 1)
        .unwrap()
        .to_string();
    let upstream = tokio::spawn(publish_events(
        leader_url,
        cluster.urls.clone(),
        topology.events_exchange(),
        bodies,
    ));
    let posted = Arc::new(AtomicUsize::new(0));
    let posts = {
        let (app_base, client, token, posted) = (
            app.base.clone(),
            app.client.clone(),
            a.user.clone(),
            posted.clone(),
        );
        // The posts run in a task of their own: checked against the
        // document here rather than by `TestApp::send`.
        let contract = contract(&app.client, &app.base).await;
        tokio::spawn(async move {
            stream::iter(0..items)
                .map(|i| {
                    let (url, client, token, posted) = (
                        format!("{app_base}/v1/cases/{case}/evidence"),
                        client.clone(),
                        token.clone(),
                        posted.clone(),
                    );
                    async move {
                        let res = client
                            .post(url)
                            .bearer_auth(token)
                            .timeout(Duration::from_secs(30))
                            .json(&json!({ "title": format!("burst {i}") }))
                            .send()
                            .await
                            .expect("evidence posted");
                        let status = res.status();
                        let content_type = res
                            .headers()
                            .get(reqwest::header::CONTENT_TYPE)
                            .and_then(|v| v.to_str().ok())
                            .map(str::to_string);
                        let body = res.bytes().await.unwrap_or_default();
                        contract.assert(&Answer {
                            method: &reqwest::Method::POST,
                            path: &format!("/v1/cases/{case}/evidence"),
                            status,
                            content_type: content_type.as_deref(),
                            body: &body,
                        });
                        let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                        posted.fetch_add(1, Ordering::Relaxed);
                        (status == StatusCode::ACCEPTED)
                            .then(|| v["id"].as_str()?.parse::<Uuid>().ok())
                            .flatten()
                    }
                })
                .buffer_unordered(8)
                .collect::<Vec<Option<Uuid>>>()
                .await
        })
    };

    // A third of the way in: stop the leader, and share with a third partner
    // while the cluster fails over.
    while posted.load(Ordering::Relaxed) < items / 3 {
        assert!(
            burst_start.elapsed() < DRAIN_TIMEOUT,
            "the burst stalled at {} posts",
            posted.load(Ordering::Relaxed)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let stopped_at = burst_start.elapsed();
    let stopped_after = posted.load(Ordering::Relaxed);
    let n = node_number(&leader).to_string();
    step!(started, "{stopped_after} posted: stopping {leader} ({how})");
    let stop = tokio::spawn({
        let (how, n) = (how.clone(), n.clone());
        async move {
            let t = Instant::now();
            if how == "kill" {
                script_async(&["kill", &n]).await;
            } else {
                script_async(&["stop-app", &n]).await;
            }
            t.elapsed()
        }
    });
    let late_share = app
        .share(
            &a.user,
            case,
            partner_share(partners[2].id, json!([{ "user_id": partners[2].user_id }])),
        )
        .await;
    let stop_took = stop.await.unwrap();
    let mut stopped = StoppedNode {
        n: n.clone(),
        how: how.clone(),
        back: false,
    };
    step!(started, "{leader} stopped in {stop_took:.1?}");
    let other = (1..=3u8).find(|i| *i != node_number(&leader)).unwrap();
    let after = leaders(&job_queues, other).await;

    step!(started, "leaders after: {after:?}");
    let accepted: Vec<Uuid> = posts.await.unwrap().into_iter().flatten().collect();
    let burst_took = burst_start.elapsed();
    step!(started, "{} posts accepted", accepted.len());
    let (republished, published_by) = upstream.await.unwrap();
    step!(started, "events confirmed ({republished} published again)");

    // Drain: every job finished, the outbox empty.
    let drain_start = Instant::now();
    loop {
        if busy(&app).await == 0 {
            break;
        }
        if drain_start.elapsed().as_millis() % 5000 < 100 {
            step!(started, "draining: {} left", busy(&app).await);
        }
        assert!(
            drain_start.elapsed() < DRAIN_TIMEOUT,
            "not drained after {DRAIN_TIMEOUT:?}: {} jobs or outbox rows left",
            busy(&app).await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let drained_by = burst_start.elapsed();
    step!(started, "drained");
    let late = app
        .wait_share(&a.user, late_share["id"].as_str().unwrap())
        .await;
    assert_eq!(late["status"], "complete", "{late}");

    // Nothing lost, nothing doubled.
    assert_eq!(accepted.len(), items, "every post accepted");
    let evidence: Vec<Uuid> = sqlx::query_scalar("SELECT id FROM evidence WHERE case_id = $1")
        .bind(case)
        .fetch_all(&app.db)
        .await
        .unwrap();
    let recorded: HashSet<Uuid> = evidence.iter().copied().collect();
    assert_eq!(recorded.len(), evidence.len());
    let lost_posts = accepted.iter().filter(|id| !recorded.contains(id)).count();
    let lost_events = event_ids.iter().filter(|id| !recorded.contains(id)).count();
    assert_eq!((lost_posts, lost_events), (0, 0), "lost (posts, events)");
    assert_eq!(
        evidence.len(),
        items + events,
        "each accepted post and each event recorded exactly once"
    );
    let (grants, distinct): (i64, i64) = sqlx::query_as(
        "SELECT count(*), count(DISTINCT (g.received_id, g.evidence_id))
           FROM grants g JOIN evidence e ON e.id = g.evidence_id WHERE e.case_id = $1",
    )
    .bind(case)
    .fetch_one(&app.db)
    .await
    .unwrap();
    let expected = (evidence.len() * partners.len()) as i64;
    assert_eq!(
        (grants, distinct),
        (expected, expected),
        "grants per partner"
    );
    let audited = app
        .count(&format!(
            "SELECT count(*) FROM audit_log WHERE action = 'evidence_added' AND case_id = '{case}'"
        ))
        .await;
    assert_eq!(audited, evidence.len() as i64, "each item audited once");
    let jobs: Vec<(String, String, i64, i64)> = sqlx::query_as(
        "SELECT kind, status::text, count(*), coalesce(sum(deliveries), 0)::bigint
           FROM jobs GROUP BY 1, 2 ORDER BY 1, 2",
    )
    .fetch_all(&app.db)
    .await
    .unwrap();
    let not_complete: Vec<_> = jobs.iter().filter(|j| j.1 != "complete").collect();
    assert!(
        not_complete.is_empty(),
        "dead or stuck jobs: {not_complete:?}"
    );
    let redelivered_jobs = app
        .count("SELECT count(*) FROM jobs WHERE deliveries > 1")
        .await;
    let retried_jobs = app
        .count("SELECT count(*) FROM jobs WHERE attempts > 1")
        .await;

    let notices: Vec<(String, String)> =
        sqlx::query_as("SELECT status::text, message_id FROM notices ORDER BY created_at")
            .fetch_all(&app.db)
            .await
            .unwrap();
    assert!(
        notices.len() >= partners.len() && notices.iter().all(|(s, _)| s == "sent"),
        "every notice sent: {notices:?}"
    );
    let mails = sink(&app).mails();
    let mut mail_ids: Vec<String> = mails
        .iter()
        .filter_map(|m| header(m, "Message-ID"))
        .map(|id| id.trim().trim_matches(['<', '>']).to_string())
        .collect();
    mail_ids.sort();
    let distinct_mails = {
        let mut d = mail_ids.clone();
        d.dedup();
        d.len()
    };
    assert_eq!(
        (mails.len(), distinct_mails),
        (notices.len(), notices.len()),
        "one mail per notice, none twice"
    );

    let duplicate_deliveries =
        metric_sum(&app, "caseshare_jobs_duplicate_deliveries_total").await as u64;
    let coalesced = metric_sum(&app, "caseshare_jobs_coalesced_total").await as u64;
    let retried = metric_sum(&app, "caseshare_jobs_retried_total").await as u64;

    step!(
        started,
        "checked: nothing lost or doubled; bringing {leader} back"
    );
    // The node comes back and rejoins; the service keeps working.
    let back_took = stopped.bring_back().await;
    let (evidence_id, job) = app
        .add_evidence(
            &a.user,
            case,
            json!({ "title": "after the node came back" }),
        )
        .await;
    assert_eq!(app.wait_job(job).await, "complete");
    let shared = app
        .count(&format!(
            "SELECT count(*) FROM grants WHERE evidence_id = '{evidence_id}'"
        ))
        .await;
    assert_eq!(shared, partners.len() as i64);
    let dead_left: i64 = {
        let out = script_async(&[
            "ctl",
            "1",
            "list_queues",
            "-q",
            "--formatter",
            "json",
            "name",
            "messages",
        ])
        .await;
        let rows: Vec<Value> = serde_json::from_str(out.trim()).unwrap();
        rows.iter()
            .filter(|r| r["name"] == topology.dead_queue())
            .filter_map(|r| r["messages"].as_i64())
            .sum()
    };
    assert_eq!(dead_left, 0, "nothing dead-lettered on the broker");

    let job_lines: Vec<String> = jobs
        .iter()
        .map(|(k, s, c, d)| format!("{k} {s} {c} (deliveries {d})"))
        .collect();
    eprintln!(
        "cluster test ({how}):\n\
         \x20 cluster started in {cluster_up:.1?}; jobs queues led by {leader} ({before:?})\n\
         \x20 burst: {items} evidence posts (8 in flight) + {events} events on the broker\n\
         \x20 {leader} stopped ({how}) at {stopped_at:.1?}, after {stopped_after} posts; the stop took {stop_took:.1?}\n\
         \x20 leaders after: {after:?}\n\
         \x20 posts accepted: {} of {items} by {burst_took:.1?}; events (first connected to {leader}) confirmed by {published_by:.1?}, {republished} published again after a failure\n\
         \x20 drained (every job complete, outbox empty) at {drained_by:.1?} after the burst began ({:.1?} after the last post)\n\
         \x20 evidence recorded: {} (lost 0, doubled 0); grants {grants} = {} items x {} partners\n\
         \x20 jobs: {}\n\
         \x20 jobs delivered more than once: {redelivered_jobs}; attempts > 1: {retried_jobs}; \
         duplicate deliveries (metric) {duplicate_deliveries}; retries {retried}; coalesced {coalesced}\n\
         \x20 notices {} sent, mails {} (distinct Message-IDs {distinct_mails})\n\
         \x20 {leader} back in {back_took:.1?}; a new item after that shared to all partners",
        accepted.len(),
        drained_by.saturating_sub(burst_took),
        evidence.len(),
        evidence.len(),
        partners.len(),
        job_lines.join("; "),
        notices.len(),
        mails.len(),
    );
    app.stop().await;
    drop(cluster);
}
