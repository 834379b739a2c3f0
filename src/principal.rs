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
    Service(ServiceScope),
    User(UserPrincipal),
}

/// What a service token may act for (configuration, `service_tokens`): an
/// unbound token (`token`) provisions orgs and partnerships and acts for any
/// org; a bound one (`token=<org-id>+<org-id>`) acts only for those orgs —
/// their users and groups, evidence into their cases, their jobs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceScope {
    pub orgs: Option<Vec<Uuid>>,
}

impl ServiceScope {
    pub fn unbound(&self) -> bool {
        self.orgs.is_none()
    }

    pub fn may_act_for(&self, org: Uuid) -> bool {
        self.orgs.as_ref().is_none_or(|orgs| orgs.contains(&org))
    }

    /// Parse one `service_tokens` entry into (token, scope).
    pub fn parse(entry: &str) -> Result<(String, ServiceScope), String> {
        match entry.split_once('=') {
            None => Ok((entry.trim().to_string(), ServiceScope { orgs: None })),
            Some((token, orgs)) => {
                let orgs = orgs
                    .split('+')
                    .map(|o| o.trim().parse::<Uuid>().map_err(|e| format!("{o:?}: {e}")))
                    .collect::<Result<Vec<_>, _>>()?;
                if token.trim().is_empty() || orgs.is_empty() {
                    return Err("expected <token>=<org-id>[+<org-id>...]".into());
                }
                Ok((token.trim().to_string(), ServiceScope { orgs: Some(orgs) }))
            }
        }
    }
}
