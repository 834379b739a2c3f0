//! The receiving side (R18–R28, R30): what a receiving org sees of a case
//! shared with it, and what it may do with it. Everything that leaves the
//! owner's org passes `policy::filter`.
//!
//! One file per capability:
//! - `view`: the read-only external view and the received list (R18, R23, R24);
//! - `import`: manual and automatic import, the `ImportCase` job (R19, R21);
//! - `updates`: new evidence and case changes for imported copies, and
//!   applying them (R25–R27, R30);
//! - `details`: import details (R20);
//! - `onward`: onward sharing within the receiving org (R28);
//! - `files`: the evidence files an import carries, the `CopyContent` job (R53).
//!
//! The collaboration row itself (`ReceivedRow`, its state, its locks and its
//! one writer) is `crate::collaboration`, below this module and `access`;
//! it stays reachable as `receiving::…`. This file holds the org reference.

mod details;
pub mod files;
mod import;
mod onward;
mod updates;
mod view;

pub use details::{import_details, ImportDetails};
pub use import::{auto_import_tx, import_tx, request_import, ImportCase, ImportStatus};
pub use onward::{add_recipient, check_onward, Onward, OnwardRecipient};
pub use updates::{
    apply_updates, deliver_new_evidence_tx, deliver_to, record_case_updates_tx, ApplyRequest,
    ApplyResult, CaseUpdate, EvidenceUpdate, Updates,
};
pub use view::{
    audit_external_read, case_view, external_evidence, external_folders, list, CaseView,
    ExternalMark, ImportedFrom, ReceivedItem,
};

pub use crate::collaboration::{ReceivedRow, ReceivedState};

use serde::Serialize;
use sqlx::PgConnection;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::Result;
use crate::orgs;

#[derive(Debug, Serialize, ToSchema)]
pub struct OrgRef {
    pub id: Uuid,
    pub name: String,
}

pub async fn org_ref(db: &mut PgConnection, id: Uuid) -> Result<OrgRef> {
    let org = orgs::get(db, id).await?;
    Ok(OrgRef {
        id: org.id,
        name: org.name,
    })
}
