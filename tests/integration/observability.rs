//! Every process is observable (R37, issue #13): the real binary runs as one
//! `api` and two `worker` processes of one deployment; after a burst of
//! shares, evidence and notices each process's `/metrics` is read and parsed
//! with a Prometheus text-format parser (and, when installed, `promtool check
//! metrics`, the Prometheus project's own parser and linter). The workers
//! export the job and email counters they recorded; the job gauges read 0
//! for statuses no job has any more; every family has HELP and TYPE. Also the
//! operator's side of running processes: `caseshare healthcheck`, a missing
//! config file, `caseshare jobs stats`, and a broker URL naming several nodes.

use crate::common::*;
use caseshare::startup::Roles;
use openmetrics_parser::prometheus::parse_prometheus;
use openmetrics_parser::{MetricsExposition, PrometheusType, PrometheusValue};
use serde_json::json;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A `caseshare` process of the test's deployment, killed when dropped.
struct Process {
    child: Child,
    /// `http://127.0.0.1:<port>` of its API or metrics listener.
    base: String,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// The environment of a process joining `app`'s deployment.
fn command(app: &TestApp, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_caseshare"));
    cmd.args(args)
        .env_remove("CASESHARE_CONFIG")
        .env("CASESHARE_DATABASE_URL", &app.database_url)
        .env("CASESHARE_AMQP_URL", &app.amqp_url)
        .env("CASESHARE_AMQP_PREFIX", &app.prefix)
        .env("CASESHARE_RETRY_DELAYS_MS", "100,200,400")
        .env("CASESHARE_MAX_ATTEMPTS", "4")
        .env("CASESHARE_WORKER_CONCURRENCY", "8")
        .env("CASESHARE_DB_MAX_CONNECTIONS", "6")
        .env("CASESHARE_SERVICE_TOKENS", SERVICE_TOKEN)
        .env("CASESHARE_AUDIT_KEY", TEST_AUDIT_KEY)
        .env("CASESHARE_DOWNLOAD_KEY", TEST_DOWNLOAD_KEY)
        .env("CASESHARE_PUBLIC_URL", "http://caseshare.test")
        .env(
            "CASESHARE_CONTENT_DIR",
            std::env::temp_dir().join(format!("caseshare-test-{}", app.prefix)),
        )
        .env(
            "CASESHARE_SMTP_URL",
            app.smtp.as_ref().map(|s| s.url()).expect("an SMTP sink"),
        )
        .env("CASESHARE_LOG_FORMAT", "json")
        .env("RUST_LOG", "warn");
    cmd
}

/// Run a command to its end without blocking the test's runtime (the
/// application under test runs on it).
async fn output(cmd: Command) -> std::process::Output {
    tokio::process::Command::from(cmd)
        .output()
        .await
        .expect("run caseshare")
}

/// Start `caseshare <role>` with its listener on a free port; wait until
/// its `/readyz` answers 200.
async fn start(app: &TestApp, role: &str) -> Process {
    let port = free_port();
    let addr_var = if role == "worker" {
        "CASESHARE_METRICS_ADDR"
    } else {
        "CASESHARE_HTTP_ADDR"
    };
    let child = command(app, &[role, "--no-migrate"])
        .env(addr_var, format!("127.0.0.1:{port}"))
        // The test reads gauges right after what changes them.
        .env("CASESHARE_METRICS_REFRESH_SECS", "0")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start a caseshare process");
    let p = Process {
        child,
        base: format!("http://127.0.0.1:{port}"),
    };
    eventually(&format!("caseshare {role} to be ready"), || async {
        let res = app
            .client
            .get(format!("{}/readyz", p.base))
            .send()
            .await
            .ok()?;
        (res.status() == reqwest::StatusCode::OK).then_some(())
    })
    .await;
    p
}

/// One scrape of `base`'s `/metrics`: the text, and the parser's view.
struct Exposition {
    text: String,
    parsed: MetricsExposition<PrometheusType, PrometheusValue>,
}

impl Exposition {
    /// Read and parse; the parser refuses anything the text format does not allow.
    async fn read(app: &TestApp, base: &str) -> Exposition {
        let res = app.send(app.client.get(format!("{base}/metrics"))).await;
        assert_eq!(res.status, reqwest::StatusCode::OK);
        let text = String::from_utf8(res.body).expect("metrics are text");
        let parsed = parse_prometheus(&text).unwrap_or_else(|e| {
            panic!("{base}: the Prometheus text parser refuses the exposition: {e}\n{text}")
        });
        Exposition { text, parsed }
    }

    /// The value of the sample of family `name` whose labels include
    /// `labels`, summed over the samples that match (`None`: no such sample).
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let family = self.parsed.families.get(name)?;
        let matching: Vec<f64> = family
            .iter_samples()
            .filter(|s| {
                let set = s.get_labelset().expect("labels");
                labels
                    .iter()
                    .all(|(k, v)| set.get_label_value(k) == Some(*v))
            })
            .map(|s| match &s.value {
                PrometheusValue::Unknown(n) | PrometheusValue::Gauge(n) => n.as_f64(),
                PrometheusValue::Counter(c) => c.value.as_f64(),
                _ => panic!("{name} is not a counter or gauge"),
            })
            .collect();
        (!matching.is_empty()).then(|| matching.iter().sum())
    }

    /// Every family has HELP and TYPE, and the Prometheus project's own
    /// parser and linter (promtool) accepts the whole exposition when it is
    /// installed (required in CI).
    fn assert_valid(&self, who: &str) {
        assert!(!self.parsed.families.is_empty(), "{who}: no metrics");
        let text = format!("\n{}", self.text);
        for (name, family) in &self.parsed.families {
            assert!(
                text.contains(&format!("\n# HELP {name} ")) && !family.help.is_empty(),
                "{who}: {name} has no # HELP"
            );
            assert!(
                text.contains(&format!("\n# TYPE {name} "))
                    && family.family_type != PrometheusType::Unknown,
                "{who}: {name} has no # TYPE"
            );
        }
        promtool_check(who, &self.text);
    }
}

/// `promtool check metrics` reads an exposition from stdin with the
/// Prometheus parser and lints it. Required in CI (`CASESHARE_REQUIRE_TOOLS`).
fn promtool_check(who: &str, text: &str) {
    use std::io::Write;
    let spawned = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match spawned {
        Ok(c) => c,
        Err(_) if std::env::var_os("CASESHARE_REQUIRE_TOOLS").is_none() => {
            eprintln!("promtool not installed: skipping its check (apt-get install prometheus)");
            return;
        }
        Err(e) => panic!("promtool is required (CASESHARE_REQUIRE_TOOLS) but cannot run: {e}"),
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{who}: promtool check metrics: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn job_count(app: &TestApp, kind: &str) -> f64 {
    sqlx::query_scalar::<_, i64>(
        "SELECT count(*) FROM jobs WHERE kind = $1 AND status = 'complete'",
    )
    .bind(kind)
    .fetch_one(&app.db)
    .await
    .unwrap() as f64
}

// R37
#[tokio::test]
async fn r37_api_and_two_worker_processes_each_export_what_they_recorded() {
    // The deployment's database and prefix; this process runs only the relay
    // (no API, no workers), so every job is done by the worker processes.
    let mut app = spawn_with(Options {
        roles: Roles {
            api: false,
            workers: false,
        },
        ..Default::default()
    })
    .await;
    let api = start(&app, "api").await;
    app.base = api.base.clone();

    // Work queued while no worker runs.
    let a = app.create_org("Alpha PD", "lea").await;
    let b = app.create_org("Beta PD", "lea").await;
    app.partner(a.id, b.id).await;
    app.setup(&a, policy(true), false).await;
    let case = app.create_case(&a.user, "Burst").await;
    let share = app
        .share(
            &a.user,
            case,
            partner_share(b.id, json!([{ "user_id": b.user_id }])),
        )
        .await;
    for i in 0..10 {
        app.add_evidence(&a.user, case, json!({ "title": format!("early {i}") }))
            .await;
    }
    let before = Exposition::read(&app, &api.base).await;
    let queued = |e: &Exposition, kind: &str| {
        e.value(
            "caseshare_jobs_by_status",
            &[("kind", kind), ("status", "queued")],
        )
    };
    assert_eq!(queued(&before, "evidence-added"), Some(10.0));
    assert_eq!(queued(&before, "share-case"), Some(1.0));

    // Two workers join and drain it; then a burst while both run.
    let workers = [start(&app, "worker").await, start(&app, "worker").await];
    let evidence_queue = format!("{}.jobs.evidence-added", app.prefix);
    eventually("both workers to consume", || async {
        let e = Exposition::read(&app, &api.base).await;
        let n = e.value("caseshare_queue_consumers", &[("queue", &evidence_queue)])?;
        (n == 2.0).then_some(())
    })
    .await;
    let done = app.wait_share(&a.user, share["id"].as_str().unwrap()).await;
    assert_eq!(done["status"], "complete", "{done}");
    for i in 0..30 {
        app.add_evidence(&a.user, case, json!({ "title": format!("burst {i}") }))
            .await;
    }
    app.drain().await;

    let api_metrics = Exposition::read(&app, &api.base).await;
    let mut worker_metrics = Vec::new();
    for w in &workers {
        worker_metrics.push(Exposition::read(&app, &w.base).await);
    }
    let base_metrics = Exposition::read(&app, &format!("http://{}", app_ops_addr(&app))).await;

    // Every process: a well-formed exposition, build info, process metrics.
    for (who, e) in [("api", &api_metrics), ("relay-only", &base_metrics)]
        .into_iter()
        .chain(worker_metrics.iter().map(|e| ("worker", e)))
    {
        e.assert_valid(who);
        assert_eq!(
            e.value(
                "caseshare_build_info",
                &[("version", env!("CARGO_PKG_VERSION"))]
            ),
            Some(1.0),
            "{who}"
        );
        for m in [
            "process_resident_memory_bytes",
            "process_open_fds",
            "process_threads",
        ] {
            assert!(e.value(m, &[]).is_some_and(|v| v > 0.0), "{who}: {m}");
        }
        // A counter: whole seconds (the metrics crate's counters are integers).
        assert!(e.value("process_cpu_seconds_total", &[]).is_some(), "{who}");
        // The gauges read at scrape time: nothing waits or runs any more,
        // and the statuses that emptied read 0, not their last value.
        for kind in ["evidence-added", "share-case", "send-notice"] {
            for status in ["queued", "running", "retrying", "dead"] {
                assert_eq!(
                    e.value(
                        "caseshare_jobs_by_status",
                        &[("kind", kind), ("status", status)]
                    ),
                    Some(0.0),
                    "{who}: {kind} {status}"
                );
            }
        }
        assert_eq!(
            e.value(
                "caseshare_jobs_by_status",
                &[("kind", "evidence-added"), ("status", "complete")]
            ),
            Some(40.0),
            "{who}"
        );
        assert_eq!(
            e.value("caseshare_notices", &[("status", "pending")]),
            Some(0.0),
            "{who}"
        );
    }

    // The API recorded the requests; the workers, not the API, the jobs.
    assert!(
        api_metrics
            .value(
                "caseshare_http_requests_total",
                &[
                    ("route", "/v1/cases/{case_id}/evidence"),
                    ("method", "POST")
                ]
            )
            .is_some_and(|n| n >= 40.0),
        "{}",
        api_metrics.text
    );
    assert_eq!(api_metrics.value("caseshare_jobs_total", &[]), None);
    for (i, w) in worker_metrics.iter().enumerate() {
        let got = w.value(
            "caseshare_messages_delivered_total",
            &[("queue", &evidence_queue)],
        );
        assert!(
            got.is_some_and(|n| n > 0.0),
            "worker {i} received evidence jobs: {}",
            w.text
        );
        assert!(w.text.contains("caseshare_job_duration_seconds_bucket"));
        assert!(w.text.contains("caseshare_job_latency_seconds_bucket"));
    }
    // Every job run is counted once, by the worker that ran it; evidence
    // jobs done by another's run count as coalesced; every accepted email
    // once. (A worker counts right after it marks the job complete: read
    // again until the counts settle.)
    let sent = app
        .count("SELECT count(*) FROM notices WHERE status = 'sent'")
        .await;
    assert!(sent >= 1);
    let mut expected = Vec::new();
    for kind in ["evidence-added", "share-case", "send-notice"] {
        expected.push((kind, job_count(&app, kind).await));
    }
    let counted = |ws: &[Exposition]| {
        let sum = |name: &str, labels: &[(&str, &str)]| -> f64 {
            ws.iter().filter_map(|e| e.value(name, labels)).sum()
        };
        let jobs: Vec<(&str, f64)> = expected
            .iter()
            .map(|(kind, _)| {
                let n = sum(
                    "caseshare_jobs_total",
                    &[("kind", kind), ("outcome", "complete")],
                ) + sum("caseshare_jobs_coalesced_total", &[("kind", kind)]);
                (*kind, n)
            })
            .collect();
        (jobs, sum("caseshare_emails_sent_total", &[]))
    };
    let mut seen = counted(&worker_metrics);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while (seen.0 != expected || seen.1 != sent as f64) && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        worker_metrics.clear();
        for w in &workers {
            worker_metrics.push(Exposition::read(&app, &w.base).await);
        }
        seen = counted(&worker_metrics);
    }
    assert_eq!(seen.0, expected, "jobs counted by the workers");
    assert_eq!(seen.1, sent as f64, "emails counted by the workers");

    // Liveness on the workers' own listeners.
    for w in &workers {
        let res = app
            .send(app.client.get(format!("{}/healthz", w.base)))
            .await;
        assert_eq!(res.status, reqwest::StatusCode::OK);
    }
    drop(workers);
    drop(api);
    app.stop().await;
}

fn app_ops_addr(app: &TestApp) -> std::net::SocketAddr {
    app.app.as_ref().expect("running").ops_addr()
}

// R37: the container health check is the binary itself (runtime images have
// no curl): exit 0 while /healthz answers, non-zero when nothing listens.
#[tokio::test]
async fn r37_healthcheck_command_probes_the_process_listener() {
    let app = spawn_with(Options {
        roles: Roles::WORKER,
        ..Default::default()
    })
    .await;
    let addr = app_ops_addr(&app).to_string();
    let mut ok = command(&app, &["healthcheck", "--worker"]);
    ok.env("CASESHARE_METRICS_ADDR", &addr);
    let ok = output(ok).await;
    assert!(ok.status.success(), "{ok:?}");
    let closed = format!("127.0.0.1:{}", free_port());
    let mut down = command(&app, &["healthcheck"]);
    down.env("CASESHARE_HTTP_ADDR", &closed);
    let down = output(down).await;
    assert!(!down.status.success(), "{down:?}");
    let stderr = String::from_utf8_lossy(&down.stderr);
    assert!(stderr.contains(&closed), "{stderr}");
    app.stop().await;
}

// A config file that was named but is missing stops the process at start.
#[tokio::test]
async fn a_missing_config_file_refuses_to_start() {
    let started = tokio::time::Instant::now();
    for how in [
        vec![("CASESHARE_CONFIG", "/nonexistent/caseshare.toml")],
        vec![],
    ] {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_caseshare"));
        cmd.arg("worker").env_remove("CASESHARE_CONFIG");
        if how.is_empty() {
            cmd.args(["--config", "/nonexistent/caseshare.toml"]);
        }
        for (k, v) in how {
            cmd.env(k, v);
        }
        let out = output(cmd).await;
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("/nonexistent/caseshare.toml"), "{stderr}");
    }
    assert!(started.elapsed() < Duration::from_secs(20));
}

// R37: the operator's view of jobs by kind and status, with retries and latency.
#[tokio::test]
async fn r37_jobs_stats_command_shows_jobs_by_status_with_retries_and_latency() {
    let app = spawn_app().await;
    let a = app.create_org("Alpha PD", "lea").await;
    let case = app.create_case(&a.user, "Case").await;
    for i in 0..3 {
        app.add_evidence(&a.user, case, json!({ "title": format!("e{i}") }))
            .await;
    }
    app.drain().await;
    let out = output(command(&app, &["jobs", "stats"])).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let row = text
        .lines()
        .find(|l| l.starts_with("evidence-added"))
        .unwrap_or_else(|| panic!("{text}"));
    let cols: Vec<&str> = row.split_whitespace().collect();
    let header: Vec<&str> = text.lines().next().unwrap().split_whitespace().collect();
    let col = |name: &str| cols[header.iter().position(|h| *h == name).unwrap()];
    assert_eq!(col("QUEUED"), "0", "{text}");
    assert_eq!(col("COMPLETE"), "3", "{text}");
    assert_eq!(col("DEAD"), "0", "{text}");
    assert_eq!(col("RETRIES"), "0", "{text}");
    assert!(col("P95_LATENCY").ends_with('s'), "{text}");
    app.stop().await;
}

// R35: CASESHARE_AMQP_URL may name a cluster's nodes; a process connects to
// one that answers, whichever it tries first, and fails only when none does.
#[tokio::test]
async fn r35_a_process_given_several_broker_nodes_connects_to_one_that_answers() {
    let app = spawn_with(Options {
        roles: Roles {
            api: false,
            workers: false,
        },
        smtp: false,
        ..Default::default()
    })
    .await;
    let dead = format!("amqp://guest:guest@127.0.0.1:{}/%2f", free_port());
    let urls = format!("{dead}, {}", app.amqp_url);
    // The first node is picked at random: enough tries to start at each.
    for _ in 0..8 {
        let conn = caseshare::amqp::connect(&urls, "cluster-test")
            .await
            .expect("connects to the node that answers");
        let _ = conn.close(200, "bye".into()).await;
    }
    let none = format!("{dead},{dead}");
    assert!(caseshare::amqp::connect(&none, "cluster-test")
        .await
        .is_err());
    app.stop().await;
}
