//! The registry: which job kinds a process runs and how to call each, built
//! once at the top of the application (`crate::job_registry`), the way crates.io's
//! worker registers its job types. The runner, the topology and the
//! dead-letter commands ask it; nothing else matches on a kind.

use futures_util::future::BoxFuture;
use sqlx::PgConnection;
use std::collections::BTreeMap;
use uuid::Uuid;

use super::{Job, JobError, Reopened};

type RunFn<C> = for<'a> fn(Uuid, serde_json::Value, &'a C) -> BoxFuture<'a, Result<(), JobError>>;
type DeadFn<C> = for<'a> fn(serde_json::Value, &'a C, &'a str) -> BoxFuture<'a, ()>;
type RequeueFn =
    for<'a> fn(serde_json::Value, &'a mut PgConnection) -> BoxFuture<'a, sqlx::Result<Reopened>>;
/// Records a batch of upstream events, answering for each.
pub type EventFn<C> =
    for<'a> fn(&'a C, &'a [Upstream<'a>]) -> BoxFuture<'a, Vec<Result<(), EventError>>>;

/// One upstream delivery: its body and the AMQP `user_id` it carries, which
/// RabbitMQ has checked against the publishing connection's user.
#[derive(Debug, Clone, Copy)]
pub struct Upstream<'a> {
    pub user_id: Option<&'a str>,
    pub body: &'a [u8],
}

/// Why an upstream event could not be recorded.
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    /// Malformed or refused for good: dead-lettered with this reason.
    #[error("{0}")]
    Invalid(String),
    /// A dependency is down: the message goes back to the queue.
    #[error("{0}")]
    Unavailable(String),
}

struct Kind<C> {
    prefetch_factor: u16,
    run: RunFn<C>,
    dead: DeadFn<C>,
    requeue: RequeueFn,
}

/// The handler of the upstream events queue (R38), and the kind name its
/// dead letters and metrics carry.
pub struct Events<C> {
    pub kind: &'static str,
    handle: EventFn<C>,
}

impl<C> Events<C> {
    pub fn handle<'a>(
        &self,
        ctx: &'a C,
        events: &'a [Upstream<'a>],
    ) -> BoxFuture<'a, Vec<Result<(), EventError>>> {
        (self.handle)(ctx, events)
    }
}

pub struct Registry<C> {
    kinds: BTreeMap<&'static str, Kind<C>>,
    events: Option<Events<C>>,
    spans: Spans,
}

/// The target of a job run's span: the runner's, so that a log filter on
/// the runner (e.g. `caseshare::jobs::runner=debug`) shows its spans too.
pub const SPAN_TARGET: &str = "caseshare::jobs::runner";

/// How the runner names one run of a job in the logs. The job layer knows a
/// job's id, kind and attempt; what a job is *about* (its subjects: payload
/// fields holding ids) is the application's vocabulary, so the application
/// declares those fields on the span it makes and names the payload fields
/// the runner records there.
#[derive(Clone, Copy)]
pub struct Spans {
    /// The span of one run, with target [`SPAN_TARGET`]: it declares
    /// `job_id`, `kind`, an empty `attempt` and an empty field for each of
    /// `subjects`.
    pub make: fn(job_id: Uuid, kind: &'static str) -> tracing::Span,
    /// Payload fields (string ids) recorded on the span when present.
    pub subjects: &'static [&'static str],
}

impl Default for Spans {
    fn default() -> Self {
        Spans {
            make: |job_id, kind| tracing::info_span!("job", %job_id, kind = kind, attempt = tracing::field::Empty),
            subjects: &[],
        }
    }
}

impl<C: Send + Sync + 'static> Default for Registry<C> {
    fn default() -> Self {
        Self::new()
    }
}

impl<C: Send + Sync + 'static> Registry<C> {
    pub fn new() -> Self {
        Self {
            kinds: BTreeMap::new(),
            events: None,
            spans: Spans::default(),
        }
    }

    /// Name each run's span with the application's subjects (see [`Spans`]).
    pub fn spans(mut self, spans: Spans) -> Self {
        self.spans = spans;
        self
    }

    /// The span of one run of `kind`, and the payload fields to record on it.
    pub fn span(
        &self,
        job_id: Uuid,
        kind: &'static str,
    ) -> (tracing::Span, &'static [&'static str]) {
        ((self.spans.make)(job_id, kind), self.spans.subjects)
    }

    /// Add a job kind.
    pub fn register<J: Job<Context = C>>(mut self) -> Self {
        let previous = self.kinds.insert(
            J::NAME,
            Kind {
                prefetch_factor: J::PREFETCH_FACTOR.max(1),
                run: run_as::<J>,
                dead: dead_as::<J>,
                requeue: requeue_as::<J>,
            },
        );
        assert!(previous.is_none(), "job kind {} registered twice", J::NAME);
        self
    }

    /// Consume the upstream events queue with `handle`.
    pub fn events(mut self, kind: &'static str, handle: EventFn<C>) -> Self {
        self.events = Some(Events { kind, handle });
        self
    }

    /// Every registered kind's name, in a stable order.
    pub fn names(&self) -> Vec<&'static str> {
        self.kinds.keys().copied().collect()
    }

    pub fn prefetch(&self, name: &str, concurrency: u16) -> u16 {
        let factor = self.kinds.get(name).map_or(1, |k| k.prefetch_factor);
        concurrency.saturating_mul(factor)
    }

    pub fn event_handler(&self) -> Option<&Events<C>> {
        self.events.as_ref()
    }

    /// Run the handler of `name` on a stored payload.
    pub async fn run(
        &self,
        name: &str,
        job_id: Uuid,
        payload: serde_json::Value,
        ctx: &C,
    ) -> Result<(), JobError> {
        match self.kinds.get(name) {
            Some(kind) => (kind.run)(job_id, payload, ctx).await,
            None => Err(JobError::permanent(format!("unknown job kind {name}"))),
        }
    }

    /// Tell the job it was dead-lettered (e.g. mark its share `failed`).
    pub async fn dead(&self, name: &str, payload: serde_json::Value, ctx: &C, reason: &str) {
        if let Some(kind) = self.kinds.get(name) {
            (kind.dead)(payload, ctx, reason).await;
        }
    }

    /// Undo what the job's dead-letter hook marked, in the caller's transaction.
    pub async fn requeue(
        &self,
        name: &str,
        payload: serde_json::Value,
        tx: &mut PgConnection,
    ) -> sqlx::Result<Reopened> {
        match self.kinds.get(name) {
            Some(kind) => (kind.requeue)(payload, tx).await,
            None => Ok(Reopened::default()),
        }
    }
}

fn run_as<'a, J: Job>(
    job_id: Uuid,
    payload: serde_json::Value,
    ctx: &'a J::Context,
) -> BoxFuture<'a, Result<(), JobError>> {
    Box::pin(async move {
        let job: J = serde_json::from_value(payload).map_err(|e| JobError::Permanent {
            reason: format!("malformed {} payload", J::NAME),
            source: Some(Box::new(e)),
        })?;
        job.run(job_id, ctx).await
    })
}

fn dead_as<'a, J: Job>(
    payload: serde_json::Value,
    ctx: &'a J::Context,
    reason: &'a str,
) -> BoxFuture<'a, ()> {
    Box::pin(async move {
        if let Ok(job) = serde_json::from_value::<J>(payload) {
            job.on_dead(ctx, reason).await;
        }
    })
}

fn requeue_as<J: Job>(
    payload: serde_json::Value,
    tx: &mut PgConnection,
) -> BoxFuture<'_, sqlx::Result<Reopened>> {
    Box::pin(async move {
        match serde_json::from_value::<J>(payload) {
            Ok(job) => job.on_requeue(tx).await,
            Err(_) => Ok(Reopened::default()),
        }
    })
}
