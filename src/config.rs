//! Settings: `config/default.toml` (or the file named by `--config` /
//! `CASESHARE_CONFIG`, which must exist), then `CASESHARE_*` environment
//! variables on top. A bad value fails at start
//! with a message naming the variable, never later at first use.

use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub database_url: String,
    pub amqp_url: String,
    pub amqp_prefix: String,
    pub http_addr: SocketAddr,
    /// Where a process without the API (`worker`) serves `/healthz`,
    /// `/readyz` and `/metrics`; `serve` and `api` serve them on `http_addr`.
    pub metrics_addr: SocketAddr,
    /// The SMTP relay; empty outside production: emails are written as
    /// `.eml` files to `mail_dir` instead.
    pub smtp_url: String,
    /// Each SMTP step (connecting, sending one message) gives up after
    /// this; a notice being sent is leased for twice this plus 5 s.
    pub smtp_timeout_secs: u64,
    pub mail_dir: String,
    pub mail_from: String,
    pub public_url: String,
    /// The "View" link of share emails: the host product's page of a case,
    /// `{case_id}` the case as the recipient sees it (the imported copy
    /// once there is one, else the shared case), `{public_url}` this
    /// service's public URL.
    pub case_url: String,
    pub service_tokens: Vec<String>,
    pub worker_concurrency: u16,
    /// Batched broker intake (R38): an events consumer takes up to this many
    /// waiting deliveries, or what arrived within `event_batch_wait_ms` of
    /// the first, and records them in one transaction.
    pub event_batch_max: u16,
    pub event_batch_wait_ms: u64,
    pub max_attempts: u32,
    /// A job `running` with no sign of life (its worker touches it every
    /// quarter of this) for this long is published again (`jobs::rescue`).
    pub job_lease_secs: u64,
    /// Requests per second each bearer token may make (0: no limit), and
    /// the burst it may spend at once; over it: 429 with Retry-After.
    pub rate_limit_per_second: u32,
    pub rate_limit_burst: u32,
    /// How long a request may take (0: no limit); streaming uploads and
    /// downloads have `upload_idle_timeout_secs` instead.
    pub request_timeout_secs: u64,
    /// How long a client may take to send a request's headers before the
    /// connection is closed (slowloris).
    pub header_read_timeout_secs: u64,
    /// How often `/metrics` refreshes the gauges that cost a query (queue
    /// depths, jobs and notices by status); scrapes in between render the
    /// last values (0: every scrape).
    pub metrics_refresh_secs: u64,
    /// How long an upload may send nothing before it is refused (408).
    pub upload_idle_timeout_secs: u64,
    /// The key of the audit HMAC chain. Required when `production` is set;
    /// otherwise generated per installation into `key_file` (R60).
    pub audit_key: String,
    /// The secret link-share download tokens are derived from (R60): the
    /// audit key is not reused, so the two can be rotated apart. Required
    /// when `production` is set; otherwise generated like the audit key.
    pub download_key: String,
    /// Where an installation keeps the keys it generated (empty: see
    /// `keys::default_key_file`); read only when a key is not configured.
    pub key_file: String,
    /// Production mode: refuse to start without the settings that protect
    /// evidence (the audit and download keys).
    pub production: bool,
    /// The most recipients one share may name (a cap on email fan-out).
    pub max_recipients_per_share: u32,
    /// Link shares one user may create in 24 hours (0: no limit): each one
    /// mails a download link from the agency's sender and stores a package,
    /// so an account cannot turn the service into a relay or fill the store.
    pub max_link_shares_per_user_per_day: u32,
    /// Upstream publishers bound to orgs, `amqp_user=org_id` each (see
    /// `crate::publishers`); empty: events from any publisher, except in
    /// production mode.
    pub event_publishers: Vec<String>,
    pub retry_delays_ms: Vec<u64>,
    pub log_format: LogFormat,
    pub migrate_on_start: bool,
    pub db_max_connections: u32,
    /// R40: where evidence content and built link packages live: `local`
    /// (under `content_dir`) or `s3` (the bucket below; `content_dir` is then
    /// the scratch space packages are assembled in).
    pub content_store: StoreKind,
    pub content_dir: PathBuf,
    pub s3_bucket: String,
    pub s3_region: String,
    /// Empty for AWS itself; e.g. `http://127.0.0.1:9000` for MinIO.
    pub s3_endpoint: String,
    /// Empty: credentials from the usual `AWS_*` variables or the instance.
    pub s3_access_key_id: String,
    pub s3_secret_access_key: String,
    /// R40: the largest evidence content accepted by an upload.
    pub max_upload_bytes: u64,
    /// R40: how many hours before a link expires its recipient is reminded
    /// (0: no reminders). Links that live no longer than this get none.
    pub link_reminder_hours: u32,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    Local,
    S3,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} is invalid: {source}")]
    Parse {
        path: PathBuf,
        source: toml::de::Error,
    },
    #[error("{var}: {reason}")]
    Invalid { var: String, reason: String },
}

/// The built-in defaults, identical to `config/default.toml`, so that the
/// binary also runs from a directory without the file.
const DEFAULTS: &str = include_str!("../config/default.toml");

impl Settings {
    /// The audit chain's key (configured, or the installation's generated
    /// one once `keys::resolve` ran; never a shared constant, R60).
    pub fn audit_key(&self) -> crate::audit::AuditKey {
        assert!(
            !self.audit_key.is_empty(),
            "keys::resolve runs before the audit key is used"
        );
        crate::audit::AuditKey::new(self.audit_key.as_bytes())
    }

    /// Which orgs each upstream publisher may publish events for.
    pub fn publisher_bindings(&self) -> crate::publishers::PublisherBindings {
        crate::publishers::PublisherBindings::parse(&self.event_publishers, self.production)
            .expect("validated when the settings were loaded")
    }

    /// The key link-share download tokens are derived from (R60).
    pub fn download_key(&self) -> crate::audit::AuditKey {
        assert!(
            !self.download_key.is_empty(),
            "keys::resolve runs before the download key is used"
        );
        crate::audit::AuditKey::new(self.download_key.as_bytes())
    }

    /// Load defaults, then the config file, then the environment. `file` is
    /// the file named by `--config` or `CASESHARE_CONFIG`: it must exist (a
    /// named file that is missing is a mistake, not "no file"). Without one,
    /// `config/default.toml` is read when present.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut table: toml::Table =
            toml::from_str(DEFAULTS).map_err(|source| ConfigError::Parse {
                path: "built-in defaults".into(),
                source,
            })?;
        let path = match file {
            Some(named) => Some(named.to_path_buf()),
            None => Some(PathBuf::from("config/default.toml")).filter(|p| p.exists()),
        };
        if let Some(path) = path {
            let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
                path: path.clone(),
                source,
            })?;
            let file: toml::Table = toml::from_str(&text).map_err(|source| ConfigError::Parse {
                path: path.clone(),
                source,
            })?;
            table.extend(file);
        }
        Self::from_table_and_env(table, |k| std::env::var(k).ok())
    }

    /// The built-in defaults alone, with no file and no environment (tests).
    pub fn defaults() -> Result<Self, ConfigError> {
        let table: toml::Table = toml::from_str(DEFAULTS).map_err(|source| ConfigError::Parse {
            path: "built-in defaults".into(),
            source,
        })?;
        Self::from_table_and_env(table, |_| None)
    }

    /// Apply `CASESHARE_<KEY>` overrides to `table`, then type-check it.
    pub fn from_table_and_env(
        mut table: toml::Table,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let keys: Vec<String> = table.keys().cloned().collect();
        for key in keys {
            let var = format!("CASESHARE_{}", key.to_uppercase());
            let Some(raw) = env(&var) else { continue };
            let value = match &table[&key] {
                toml::Value::Array(_) => toml::Value::Array(
                    raw.split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(|s| match s.parse::<i64>() {
                            Ok(n) if key != "service_tokens" => toml::Value::Integer(n),
                            _ => toml::Value::String(s.to_string()),
                        })
                        .collect(),
                ),
                toml::Value::Integer(_) => {
                    toml::Value::Integer(raw.trim().parse().map_err(|_| ConfigError::Invalid {
                        var: var.clone(),
                        reason: format!("expected an integer, got {raw:?}"),
                    })?)
                }
                toml::Value::Boolean(_) => toml::Value::Boolean(match raw.trim() {
                    "true" | "1" | "yes" | "on" => true,
                    "false" | "0" | "no" | "off" => false,
                    _ => {
                        return Err(ConfigError::Invalid {
                            var,
                            reason: format!("expected true or false, got {raw:?}"),
                        })
                    }
                }),
                _ => toml::Value::String(raw),
            };
            table.insert(key, value);
        }
        let settings: Settings =
            toml::Value::Table(table)
                .try_into()
                .map_err(|e: toml::de::Error| ConfigError::Invalid {
                    var: "configuration".into(),
                    reason: e.to_string(),
                })?;
        settings.validate()?;
        Ok(settings)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |var: &str, reason: &str| ConfigError::Invalid {
            var: var.into(),
            reason: reason.into(),
        };
        if !self.database_url.starts_with("postgres://")
            && !self.database_url.starts_with("postgresql://")
        {
            return Err(invalid(
                "CASESHARE_DATABASE_URL",
                "must be a postgres:// URL",
            ));
        }
        let mut nodes = crate::amqp::node_urls(&self.amqp_url).peekable();
        if nodes.peek().is_none()
            || !nodes.all(|u| u.starts_with("amqp://") || u.starts_with("amqps://"))
        {
            return Err(invalid(
                "CASESHARE_AMQP_URL",
                "must be an amqp:// or amqps:// URL, or several separated by commas",
            ));
        }
        if self.amqp_prefix.is_empty()
            || !self
                .amqp_prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            return Err(invalid(
                "CASESHARE_AMQP_PREFIX",
                "must be non-empty letters, digits, '-', '_' or '.'",
            ));
        }
        if self.smtp_url.is_empty() {
            if self.mail_dir.is_empty() {
                return Err(invalid(
                    "CASESHARE_MAIL_DIR",
                    "must name a directory when CASESHARE_SMTP_URL is empty",
                ));
            }
        } else if !self.smtp_url.starts_with("smtp://") && !self.smtp_url.starts_with("smtps://") {
            return Err(invalid(
                "CASESHARE_SMTP_URL",
                "must be an smtp:// or smtps:// URL (or empty outside production: .eml files in CASESHARE_MAIL_DIR)",
            ));
        }
        if !self.mail_from.contains('@') {
            return Err(invalid("CASESHARE_MAIL_FROM", "must be an email address"));
        }
        if url::Url::parse(&self.public_url).is_err() {
            return Err(invalid("CASESHARE_PUBLIC_URL", "must be an absolute URL"));
        }
        if !self.case_url.contains("{case_id}") {
            return Err(invalid("CASESHARE_CASE_URL", "must contain {case_id}"));
        }
        if self.production && self.audit_key.len() < 32 {
            return Err(invalid(
                "CASESHARE_AUDIT_KEY",
                "is required in production (CASESHARE_PRODUCTION=true), at least 32 characters: the audit chain is keyed by it",
            ));
        }
        if self.production && self.download_key.len() < 32 {
            return Err(invalid(
                "CASESHARE_DOWNLOAD_KEY",
                "is required in production (CASESHARE_PRODUCTION=true), at least 32 characters: link download tokens are derived from it",
            ));
        }
        if self.production && self.smtp_url.is_empty() {
            return Err(invalid(
                "CASESHARE_SMTP_URL",
                "is required in production (CASESHARE_PRODUCTION=true): recipients are emailed through it",
            ));
        }
        if let Err(reason) =
            crate::publishers::PublisherBindings::parse(&self.event_publishers, self.production)
        {
            return Err(invalid("CASESHARE_EVENT_PUBLISHERS", &reason));
        }
        if self.header_read_timeout_secs == 0 {
            return Err(invalid(
                "CASESHARE_HEADER_READ_TIMEOUT_SECS",
                "must be at least 1",
            ));
        }
        if self.event_batch_max == 0 {
            return Err(invalid("CASESHARE_EVENT_BATCH_MAX", "must be at least 1"));
        }
        if self.worker_concurrency == 0 {
            return Err(invalid(
                "CASESHARE_WORKER_CONCURRENCY",
                "must be at least 1",
            ));
        }
        if self.max_attempts == 0 {
            return Err(invalid("CASESHARE_MAX_ATTEMPTS", "must be at least 1"));
        }
        if self.smtp_timeout_secs == 0 {
            return Err(invalid("CASESHARE_SMTP_TIMEOUT_SECS", "must be at least 1"));
        }
        if self.job_lease_secs == 0 {
            return Err(invalid("CASESHARE_JOB_LEASE_SECS", "must be at least 1"));
        }
        if self.retry_delays_ms.is_empty() || self.retry_delays_ms.contains(&0) {
            return Err(invalid(
                "CASESHARE_RETRY_DELAYS_MS",
                "must list at least one positive delay",
            ));
        }
        if self.content_dir.as_os_str().is_empty() {
            return Err(invalid("CASESHARE_CONTENT_DIR", "must not be empty"));
        }
        if self.max_upload_bytes == 0 {
            return Err(invalid("CASESHARE_MAX_UPLOAD_BYTES", "must be at least 1"));
        }
        if self.content_store == StoreKind::S3 && self.s3_bucket.is_empty() {
            return Err(invalid(
                "CASESHARE_S3_BUCKET",
                "must name a bucket when CASESHARE_CONTENT_STORE is s3",
            ));
        }
        if !self.s3_access_key_id.is_empty() && self.s3_secret_access_key.is_empty() {
            return Err(invalid(
                "CASESHARE_S3_SECRET_ACCESS_KEY",
                "must be set with CASESHARE_S3_ACCESS_KEY_ID",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(env: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let table: toml::Table = toml::from_str(DEFAULTS).unwrap();
        Settings::from_table_and_env(table, |k| {
            env.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        })
    }

    #[test]
    fn defaults_match_the_contract() {
        let s = load(&[]).unwrap();
        assert_eq!(
            s.database_url,
            "postgres://postgres@127.0.0.1:5432/caseshare"
        );
        assert_eq!(s.amqp_url, "amqp://guest:guest@127.0.0.1:5672/%2f");
        assert_eq!(s.http_addr.to_string(), "127.0.0.1:8080");
        assert_eq!(s.metrics_addr.to_string(), "127.0.0.1:9464");
        assert_eq!(s.smtp_url, "");
        assert_eq!(s.mail_dir, "data/mail");
        assert_eq!(s.mail_from, "caseshare@localhost");
        assert_eq!(s.public_url, "http://127.0.0.1:8080");
        assert_eq!(s.amqp_prefix, "caseshare");
        assert!(s.service_tokens.is_empty());
        assert_eq!(s.content_dir, PathBuf::from("data/content"));
        assert_eq!(s.max_upload_bytes, 2_147_483_648);
    }

    #[test]
    fn environment_overrides_and_lists() {
        let s = load(&[
            ("CASESHARE_SERVICE_TOKENS", "a, b"),
            ("CASESHARE_RETRY_DELAYS_MS", "10,20"),
            ("CASESHARE_MIGRATE_ON_START", "false"),
        ])
        .unwrap();
        assert_eq!(s.service_tokens, vec!["a", "b"]);
        assert_eq!(s.retry_delays_ms, vec![10, 20]);
        assert!(!s.migrate_on_start);
        let s = load(&[(
            "CASESHARE_AMQP_URL",
            "amqp://a:5672/%2f, amqp://b:5672/%2f,amqp://c:5672/%2f",
        )])
        .unwrap();
        assert_eq!(crate::amqp::node_urls(&s.amqp_url).count(), 3);
        assert!(load(&[("CASESHARE_AMQP_URL", "amqp://a,http://b")]).is_err());
    }

    #[test]
    fn a_named_config_file_must_exist() {
        let e = Settings::load(Some(Path::new("/nonexistent/caseshare.toml"))).unwrap_err();
        assert!(matches!(e, ConfigError::Read { .. }), "{e}");
        assert!(e.to_string().contains("/nonexistent/caseshare.toml"), "{e}");
    }

    #[test]
    fn bad_values_name_the_variable() {
        let e = load(&[("CASESHARE_WORKER_CONCURRENCY", "lots")]).unwrap_err();
        assert!(
            e.to_string().contains("CASESHARE_WORKER_CONCURRENCY"),
            "{e}"
        );
        let e = load(&[("CASESHARE_DATABASE_URL", "mysql://x")]).unwrap_err();
        assert!(e.to_string().contains("CASESHARE_DATABASE_URL"), "{e}");
        let e = load(&[("CASESHARE_HTTP_ADDR", "nowhere")]).unwrap_err();
        assert!(e.to_string().contains("http_addr"), "{e}");
    }
}
