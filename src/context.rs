//! What every job handler gets (`Job::Context`): pooled connections, the
//! settings and the process's shared clients, nothing per job. Built once in
//! `startup`; only infrastructure lives here.

use sqlx::PgPool;
use std::sync::Arc;

use crate::amqp::Topology;
use crate::config::Settings;
use crate::content::store::ContentStore;
use crate::mail::Mailer;

#[derive(Clone)]
pub struct JobContext {
    pub db: PgPool,
    pub settings: Arc<Settings>,
    pub topology: Topology,
    pub mailer: Mailer,
    pub store: ContentStore,
}
