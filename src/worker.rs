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
use crate::jobs::{EventError, Registry, Upstream};
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
