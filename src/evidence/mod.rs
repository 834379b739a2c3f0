//! Evidence intake (R35, R38, R41): `POST /v1/cases/{id}/evidence` and the
//! upstream events exchange (R38) both land here, so both paths behave the
//! same. The evidence row and its evidence-added job are written in one
//! transaction (R35); a client-chosen id makes a resend an idempotent retry.
//!
//! One file per capability: `intake` records one item or a batch (the
//! request's and the events' one path), `events` turns upstream events into
//! a batch (R38), `page` reads a page of a case's own evidence. This file
//! holds what they share: the request and answer shapes and the
//! evidence-added job's payload, which intake owns because it writes it.
//! The evidence model itself (`EvidenceData`) is `crate::cases`'s.

mod events;
mod intake;
mod page;

pub use events::{ingest_events, IngestError};
pub use intake::{record, record_many, BatchItem};
pub use page::{page_owned, EvidenceRow};

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::principal::{ServiceScope, UserPrincipal};

// The evidence model sits with the case model, below `policy` (which
// filters it) and `access`; intake is this module's.
pub use crate::cases::{
    CommunityRequest, Content, EvidenceData, EvidenceView, Gps, Pii, MAX_TITLE_CHARS,
};

/// The evidence-added job (R22): written by intake in the transaction that
/// records the evidence; its handler is `sharing::fanout`'s (the job's
/// `impl Job`), which grants the item to the collaborations covering it.
#[derive(Debug, Serialize, Deserialize)]
pub struct EvidenceAdded {
    pub evidence_id: Uuid,
    /// More evidence of the same case recorded in the same batch (batched
    /// intake: one job per case and batch).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub more: Vec<Uuid>,
}

/// The evidence body as sent by a client.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct NewEvidence {
    /// Optional client-chosen id: resending the same id is an idempotent retry.
    pub id: Option<Uuid>,
    pub folder_id: Option<Uuid>,
    #[serde(flatten)]
    pub data: EvidenceData,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Accepted {
    pub id: Uuid,
    pub job_id: Uuid,
}

/// Who adds one evidence item over HTTP.
pub enum Writer<'a> {
    /// A user, who must be able to add to the case (R41; an external case
    /// is read-only: 403).
    User(&'a UserPrincipal),
    /// A trusted service, acting for the orgs its token is bound to.
    Service(&'a ServiceScope),
}
