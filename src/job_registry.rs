//! The job registry: the one place that names every job kind, as crates.io's
//! worker registers its job types. Adding a job kind is its own file (a
//! struct implementing `jobs::Job`) plus one `.register::<…>()` line here;
//! the runner, the queue topology, `caseshare queues` and the dead-letter
//! commands all read the kinds from this registry.

use futures_util::future::BoxFuture;

use crate::amqp::Topology;
use crate::config::Settings;
use crate::context::JobContext;
use crate::evidence::{self, IngestError};
use crate::jobs::{EventError, Registry, Spans, Upstream};
use crate::{linkshare, notify, receiving, revocation, sharing};

/// The kind name that dead-lettered upstream evidence events carry
/// (`x-kind`), and the label of their metrics.
pub const EVIDENCE_EVENT: &str = "evidence-event";

/// Every job kind this service runs, and the upstream events handler (R38).
pub fn registry() -> Registry<JobContext> {
    Registry::new()
        .register::<sharing::fanout::EvidenceAdded>()
        .register::<sharing::ShareCase>()
        .register::<receiving::ImportCase>()
        .register::<receiving::files::CopyContent>()
        .register::<revocation::RevokeShare>()
        .register::<revocation::StopSharingJob>()
        .register::<notify::SendNotice>()
        .register::<linkshare::BuildLinkShare>()
        .events(EVIDENCE_EVENT, ingest_events)
        .spans(Spans {
            make: job_span,
            subjects: &SUBJECTS,
        })
}

/// What a job can be about, as the payload names it (ids only): recorded on
/// the run's span, so one case or share can be followed through the logs
/// (R37). Handlers record the case when only they know it.
const SUBJECTS: [&str; 5] = [
    "case_id",
    "share_id",
    "evidence_id",
    "link_share_id",
    "notice_id",
];

/// The span of one job run: the job layer's fields and every subject.
fn job_span(job_id: uuid::Uuid, kind: &'static str) -> tracing::Span {
    tracing::info_span!(
        target: crate::jobs::SPAN_TARGET,
        "job",
        %job_id,
        kind = kind,
        attempt = tracing::field::Empty,
        case_id = tracing::field::Empty,
        share_id = tracing::field::Empty,
        evidence_id = tracing::field::Empty,
        link_share_id = tracing::field::Empty,
        notice_id = tracing::field::Empty,
    )
}

/// The deployment's RabbitMQ objects: a queue for every registered job kind,
/// the events, retry and dead-letter queues.
pub fn topology(settings: &Settings) -> Topology {
    Topology::new(&settings.amqp_prefix, &settings.retry_delays_ms)
        .with_job_kinds(registry().names())
}

/// R38: upstream systems published evidence to the events exchange; a batch
/// of deliveries is recorded in one transaction, each exactly as `POST
/// /v1/cases/{id}/evidence` records it, and each answered on its own.
fn ingest_events<'a>(
    ctx: &'a JobContext,
    events: &'a [Upstream<'a>],
) -> BoxFuture<'a, Vec<Result<(), EventError>>> {
    Box::pin(async move {
        evidence::ingest_events(&ctx.db, &ctx.settings.publisher_bindings(), events)
            .await
            .into_iter()
            .map(|r| match r {
                Ok(()) => Ok(()),
                Err(IngestError::Invalid(reason)) => Err(EventError::Invalid(reason)),
                Err(IngestError::Unavailable(reason)) => Err(EventError::Unavailable(reason)),
            })
            .collect()
    })
}

#[cfg(test)]
mod job_kinds {
    // The OpenAPI document's closed set of job kinds (`JobView.kind`) is
    // exactly the registered kinds: a new job kind fails this until listed.
    #[test]
    fn the_documented_job_kinds_are_the_registered_ones() {
        use utoipa::PartialSchema;
        let schema = serde_json::to_value(crate::jobs::JobKind::schema()).unwrap();
        let mut documented: Vec<String> = schema["enum"]
            .as_array()
            .expect("an enum")
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect();
        documented.sort();
        let mut registered: Vec<String> = super::registry()
            .names()
            .into_iter()
            .map(str::to_string)
            .collect();
        registered.sort();
        assert_eq!(documented, registered);
    }
}
