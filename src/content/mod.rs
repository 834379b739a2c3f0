//! Evidence content: the bytes behind an evidence item's `content`
//! (`{sha256, size_bytes, uri}`), which link-share packages (R40) are built
//! from and list with their SHA-256 in the manifest.
//!
//! - `store`: where the bytes live (local filesystem or S3); infrastructure
//!   that knows no domain module;
//! - `upload`: `PUT /v1/evidence/{id}/content`, stored only when its SHA-256
//!   and size match what the evidence declares, and audited (R39);
//! - `read`: `GET /v1/evidence/{id}/content`, who may read a file and its
//!   audit (R52);
//! - `verify`: `caseshare content verify`, re-hashing what is stored, so the
//!   chain of custody behind the R40 manifests can be proven (R39).

use uuid::Uuid;

use crate::error::Error;

pub mod read;
pub mod store;
pub mod upload;
pub mod verify;

/// The `content.uri` of evidence whose bytes are in the store.
pub fn store_uri(evidence_id: Uuid) -> String {
    format!("store://{evidence_id}")
}

/// The content store failed (unreachable, full): 503, the client may retry;
/// nothing was recorded.
fn io_error(what: &str, e: std::io::Error) -> Error {
    tracing::warn!(error = %e, "content store: cannot {what}");
    Error::Unavailable(format!("the content store cannot {what} now: {e}"))
}
