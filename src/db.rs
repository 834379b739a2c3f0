//! PostgreSQL: the pool, creating the database named in the URL when it is
//! missing, and applying `migrations/`.

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgPool};
use std::str::FromStr;
use std::time::Duration;

/// A Rust enum that is a PostgreSQL enum (`#[derive(sqlx::Type)]`): statuses
/// and kinds. Statements bind them (`.bind(JobStatus::Complete)`); the few
/// whose plan depends on the value being in their text (a partial index whose
/// predicate names a status: the planner of a generic plan cannot use it for
/// `status = $1`) write [`PgEnum::literal`], made from the enum, never typed
/// by hand. `layers`' sibling test refuses a status literal in `src/`.
pub trait PgEnum: Copy {
    /// The PostgreSQL type.
    const TYPE: &'static str;
    /// The label of this value in the PostgreSQL type.
    fn label(self) -> &'static str;
    /// This value as an SQL literal of its type, e.g. `'running'::job_status`.
    fn literal(self) -> String {
        format!("'{}'::{}", self.label(), Self::TYPE)
    }
}

/// Values of one enum as a list of SQL literals, for `IN (…)`.
pub fn literals<T: PgEnum>(values: &[T]) -> String {
    values
        .iter()
        .map(|v| v.literal())
        .collect::<Vec<_>>()
        .join(", ")
}

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Create the database in `url` if it does not exist yet.
pub async fn ensure_database(url: &str) -> anyhow::Result<()> {
    let options = PgConnectOptions::from_str(url)?;
    let name = options
        .get_database()
        .map(str::to_owned)
        .unwrap_or_else(|| "postgres".into());
    let mut admin = options.clone().database("postgres").connect().await?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(&name)
            .fetch_one(&mut admin)
            .await?;
    if !exists {
        let quoted = format!("\"{}\"", name.replace('"', "\"\""));
        if let Err(e) = sqlx::query(&format!("CREATE DATABASE {quoted}"))
            .execute(&mut admin)
            .await
        {
            // Another process may have created it in the meantime.
            let raced = e
                .as_database_error()
                .and_then(|d| d.code())
                .is_some_and(|c| c == "42P04");
            if !raced {
                return Err(e.into());
            }
        }
        tracing::info!(database = %name, "created database");
    }
    admin.close().await?;
    Ok(())
}

pub async fn connect(url: &str, max_connections: u32) -> anyhow::Result<PgPool> {
    let pool = PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(10))
        .connect(url)
        .await?;
    Ok(pool)
}

pub async fn migrate(pool: &PgPool) -> anyhow::Result<()> {
    MIGRATOR.run(pool).await?;
    Ok(())
}

/// True when `e` is a unique-constraint violation (SQLSTATE 23505).
pub fn is_unique_violation(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .and_then(|d| d.code())
        .is_some_and(|c| c == "23505")
}

/// Begin the transaction of a request's effect. When the request carries an
/// `Idempotency-Key`, its first transaction claims the key (see
/// [`crate::idempotency`]), so the key is recorded exactly when the effect
/// commits. Every command path begins its transactions here.
pub async fn begin(
    db: &PgPool,
) -> crate::error::Result<sqlx::Transaction<'static, sqlx::Postgres>> {
    let mut tx = db.begin().await?;
    crate::idempotency::claim(&mut tx).await?;
    Ok(tx)
}
