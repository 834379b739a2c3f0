//! Who is acting: the service principal (bootstrap and upstream systems) or a
//! user of an organization with a role. A domain type: the HTTP layer
//! authenticates a token into one (`http/auth.rs`), the domain decides what
//! it may see and do.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, sqlx::Type, ToSchema)]
#[sqlx(type_name = "user_role", rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    User,
}

/// A user of an organization.
#[derive(Debug, Clone)]
pub struct UserPrincipal {
    pub user_id: Uuid,
    pub org_id: Uuid,
    pub role: Role,
}

#[derive(Debug, Clone)]
pub enum Principal {
    Service,
    User(UserPrincipal),
}
