//! The named recipient (R14, R47): who a share names, and so who a
//! collaboration's import details list (R20). It sits here, below both the
//! sharing side that names recipients and the receiving side that lists them.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A named recipient (R14, R47). Untagged: the variant is told by its field
/// (its schema: [`recipient_schema::Recipient`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Recipient {
    /// R47: a user named by badge ID. `user_id` is the user the badge named
    /// when the share was accepted (set by the service, whatever was sent).
    Badge {
        badge_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        user_id: Option<Uuid>,
    },
    User {
        user_id: Uuid,
    },
    Group {
        group_id: Uuid,
    },
    Email {
        email: String,
    },
}

/// The OpenAPI schema of [`Recipient`]: `anyOf` its variants, as serde's
/// `untagged` takes the first that fits. Derived, it would be `oneOf`, which
/// a badge recipient with its resolved `user_id` breaks: it fits the badge
/// variant and the user one.
pub mod recipient_schema {
    use utoipa::openapi::schema::{AnyOfBuilder, Schema};
    use utoipa::openapi::RefOr;
    use utoipa::{PartialSchema, ToSchema};
    use uuid::Uuid;

    /// A named recipient (R14, R47). Untagged: the variant is told by its field.
    #[derive(serde::Serialize, ToSchema)]
    #[serde(untagged)]
    #[allow(dead_code)]
    pub enum Recipient {
        /// R47: a user named by badge ID. `user_id` is the user the badge named
        /// when the share was accepted (set by the service, whatever was sent).
        Badge {
            badge_id: String,
            user_id: Option<Uuid>,
        },
        User {
            user_id: Uuid,
        },
        Group {
            group_id: Uuid,
        },
        Email {
            email: String,
        },
    }

    impl PartialSchema for super::Recipient {
        fn schema() -> RefOr<Schema> {
            match Recipient::schema() {
                RefOr::T(Schema::OneOf(one)) => RefOr::T(Schema::AnyOf(
                    one.items
                        .into_iter()
                        .fold(AnyOfBuilder::new(), |any, item| any.item(item))
                        .description(one.description)
                        .build(),
                )),
                other => other,
            }
        }
    }

    impl ToSchema for super::Recipient {
        fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
            Recipient::schemas(schemas)
        }
    }
}
