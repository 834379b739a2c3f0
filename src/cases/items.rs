//! The evidence model (R6–R11, R18): every field an evidence item holds, as
//! the API sends and returns it, with its validation. It sits with the case
//! model, below `policy` (whose one filter reads it), `access` and intake
//! (`evidence`), which re-exports it.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::limits;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct Gps {
    pub lat: f64,
    pub lon: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct Pii {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub date_of_birth: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct CommunityRequest {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub caption: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pii: Option<Pii>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct Content {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size_bytes: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    /// The media type the file was uploaded with (R52), served with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
}

/// Where the file of an imported copy of an item stands (`content_state` in
/// PostgreSQL, R53): waiting for its copy, copied and matching the sender's
/// SHA-256, bytes that hash otherwise, or gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::Type)]
#[sqlx(type_name = "content_state", rename_all = "snake_case")]
pub enum ContentState {
    Pending,
    Match,
    ContentMismatch,
    Missing,
}

impl crate::db::PgEnum for ContentState {
    const TYPE: &'static str = "content_state";
    fn label(self) -> &'static str {
        match self {
            ContentState::Pending => "pending",
            ContentState::Match => "match",
            ContentState::ContentMismatch => "content_mismatch",
            ContentState::Missing => "missing",
        }
    }
}

/// Every field of the evidence body (API.md) but `id` and `folder_id`.
/// Absent fields stay absent when serialized.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct EvidenceData {
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub categories: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recorded_at: Option<chrono::DateTime<chrono::Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exif: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clips: Option<Vec<serde_json::Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub markers: Option<Vec<serde_json::Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gps: Option<Gps>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_metadata: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_metadata: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub community_request: Option<CommunityRequest>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transcript: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<Content>,
}

impl EvidenceData {
    pub fn validate(&self) -> Result<()> {
        if self.title.trim().is_empty() {
            return Err(Error::validation("title must not be empty"));
        }
        limits::text("title", &self.title, MAX_TITLE_CHARS)?;
        limits::opt("description", self.description.as_deref(), limits::TEXT)?;
        limits::opt("transcript", self.transcript.as_deref(), limits::LONG)?;
        limits::list(
            "notes",
            self.notes.as_deref().unwrap_or_default(),
            limits::TEXT,
        )?;
        limits::list(
            "tags",
            self.tags.as_deref().unwrap_or_default(),
            limits::SHORT,
        )?;
        limits::list(
            "categories",
            self.categories.as_deref().unwrap_or_default(),
            limits::SHORT,
        )?;
        if let Some(g) = &self.gps {
            if !(-90.0..=90.0).contains(&g.lat) || !(-180.0..=180.0).contains(&g.lon) {
                return Err(Error::validation("gps lat/lon out of range"));
            }
        }
        if let Some(exif) = &self.exif {
            if !exif.is_object() {
                return Err(Error::validation("exif must be an object"));
            }
        }
        if let Some(c) = &self.content {
            if let Some(h) = &c.sha256 {
                if h.len() != 64 || !h.chars().all(|c| c.is_ascii_hexdigit()) {
                    return Err(Error::validation("content.sha256 must be 64 hex digits"));
                }
            }
            if c.size_bytes.is_some_and(|s| s < 0) {
                return Err(Error::validation("content.size_bytes must not be negative"));
            }
        }
        Ok(())
    }
}

/// The longest evidence title accepted (a title is a label, not a document).
pub const MAX_TITLE_CHARS: usize = 1_000;

/// Evidence as returned: the body plus its id and folder.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EvidenceView {
    pub id: Uuid,
    pub folder_id: Option<Uuid>,
    #[serde(flatten)]
    pub data: EvidenceData,
}
