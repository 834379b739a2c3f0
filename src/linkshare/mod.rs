//! Classic link sharing (R40): a link share packages the case (or selected
//! folders/evidence) as a ZIP or ISO 9660 download with optional attachments,
//! lists every file's SHA-256 in a manifest, and expires.
//!
//! A link share is a snapshot: the package is built once from the evidence in
//! scope when the job runs; evidence added later is never added to it.
//!
//! This module holds the link share itself (its row, status and view), shared
//! by the capabilities in the files below it:
//! - `request`: accepting a link share, under the governing policy (R10, R40);
//! - `build`: the `BuildLinkShare` job (plan, package, complete or fail);
//! - `lifecycle`: get, list, revoke, status events, expiry sweep, reminders;
//! - `download`: the download by token and its audit (R39);
//! - `package`, `iso9660`: writing the ZIP or ISO image with its manifest.
//!
//! The evidence content the packages are built from is `crate::content`.

use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::config::Settings;
use crate::policy::PolicySnapshot;
use crate::sharing::Scope;

mod build;
mod download;
pub mod iso9660;
mod lifecycle;
mod package;
mod plan;
mod request;

pub use build::BuildLinkShare;
pub use download::{for_download, for_page, record_download, Landing};
pub use lifecycle::{
    get_owned, list_for_case, queue_reminders, revoke, status_event_tx, sweep_expired,
};
pub use package::Package;
pub use request::{create, LinkRecipient, LinkShareAccepted, LinkShareRequest, MAX_DURATION_HOURS};

// The token and the addresses built from it sit below `notify`, which
// links to them in emails.
pub use crate::linktoken::{download_url, page_url, token, token_hash};

// Content upload and verification live in `crate::content`; their former
// paths under `linkshare` stay valid.
pub use crate::content::store_uri;
pub use crate::content::upload::{upload, StoredContent};
pub use crate::content::verify::{verify_content, ContentProblem, ContentReport};

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Attachments {
    #[serde(default)]
    pub audit_trails: bool,
    #[serde(default)]
    pub transcripts: bool,
    #[serde(default)]
    pub table_of_contents: bool,
}

/// A link share's status (`link_share_status` in PostgreSQL).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, sqlx::Type, ToSchema)]
#[sqlx(type_name = "link_share_status", rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum LinkShareStatus {
    Processing,
    Complete,
    Failed,
    Revoked,
}

impl crate::jobs::outbox::StatusEvent for LinkShareStatus {
    const TYPE: &'static str = "link_share";
    fn label(self) -> &'static str {
        self.as_str()
    }
}

impl crate::db::PgEnum for LinkShareStatus {
    const TYPE: &'static str = "link_share_status";
    fn label(self) -> &'static str {
        self.as_str()
    }
}

impl LinkShareStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            LinkShareStatus::Processing => "processing",
            LinkShareStatus::Complete => "complete",
            LinkShareStatus::Failed => "failed",
            LinkShareStatus::Revoked => "revoked",
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LinkShareView {
    pub id: Uuid,
    pub case_id: Uuid,
    pub package: Package,
    pub status: LinkShareStatus,
    /// Set once the package is built.
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub download_url: Option<String>,
    /// The recipient's landing page (what the emails link to): the sender,
    /// the case, the files and sizes, the expiry and the download button.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub page_url: Option<String>,
    /// SHA-256 of the package's `manifest.json`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manifest_sha256: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size_bytes: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub completed_at: Option<chrono::DateTime<chrono::Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LinkShareList {
    pub items: Vec<LinkShareView>,
    /// The `cursor` of the next page; null on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, sqlx::FromRow)]
pub struct LinkShareRow {
    pub id: Uuid,
    pub case_id: Uuid,
    pub org_id: Uuid,
    pub scope: sqlx::types::Json<Scope>,
    pub attachments: sqlx::types::Json<Attachments>,
    pub retain_folder_structure: bool,
    pub package: Package,
    pub duration_hours: i32,
    pub status: LinkShareStatus,
    pub failure: Option<String>,
    /// False for links made before tokens were derived (migration 0014):
    /// their URL cannot be recomputed.
    pub token_derived: bool,
    pub manifest_sha256: Option<String>,
    pub size_bytes: Option<i64>,
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub completed_at: Option<chrono::DateTime<chrono::Utc>>,
    pub package_key: Option<String>,
    pub revoked_at: Option<chrono::DateTime<chrono::Utc>>,
    /// The policy that governed the request (see `governing_policy`).
    pub policy: Option<sqlx::types::Json<PolicySnapshot>>,
}

const COLUMNS: &str =
    "id, case_id, org_id, scope, attachments, retain_folder_structure, package, duration_hours,
    status, failure, token_derived, manifest_sha256, size_bytes, expires_at, created_at, completed_at,
    package_key, revoked_at, policy";

/// The store key of a link share's package: recorded at completion, or
/// `<id>.zip` for packages built before keys were recorded.
pub fn package_key(id: Uuid, recorded: Option<&str>) -> String {
    recorded.map_or_else(|| format!("{id}.zip"), str::to_string)
}

impl LinkShareRow {
    pub fn package_key(&self) -> String {
        package_key(self.id, self.package_key.as_deref())
    }

    pub fn view(self, settings: &Settings) -> LinkShareView {
        let live = self.status == LinkShareStatus::Complete && self.token_derived;
        let download_url = live.then(|| download_url(settings, self.id));
        let page_url = live.then(|| page_url(settings, self.id));
        LinkShareView {
            id: self.id,
            case_id: self.case_id,
            package: self.package,
            status: self.status,
            expires_at: self.expires_at,
            download_url,
            page_url,
            manifest_sha256: self.manifest_sha256,
            size_bytes: self.size_bytes,
            failure: self.failure,
            created_at: self.created_at,
            completed_at: self.completed_at,
            revoked_at: self.revoked_at,
        }
    }
}

async fn load(db: &mut PgConnection, id: Uuid) -> sqlx::Result<Option<LinkShareRow>> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM link_shares WHERE id = $1"))
        .bind(id)
        .fetch_optional(db)
        .await
}
