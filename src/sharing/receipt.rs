//! The receipt of a share (R54) as its readers may see it: the sharer's
//! users who see the share and the receiver's who see its collaboration.
//! Custody signs and stores receipts; who may read one is the share's
//! question, so it is asked here, above custody.

use sqlx::PgConnection;
use uuid::Uuid;

use crate::custody::{self, Receipt};
use crate::error::{Error, Result};

/// The receipt of `share_id` for `user` (R54): the sharer's users who see
/// the share, and the receiver's who see its collaboration; 404 for anyone
/// else, and for a share without a receipt (yet).
pub async fn receipt_for(
    db: &mut PgConnection,
    user: &crate::principal::UserPrincipal,
    share_id: Uuid,
) -> Result<Receipt> {
    let not_found = || Error::NotFound("receipt");
    let share = super::load(db, share_id).await.map_err(|_| not_found())?;
    let allowed = if share.org_id == user.org_id {
        super::load_owned(db, user, share_id).await.is_ok()
    } else if share.target_org_id == Some(user.org_id) {
        match share.received_id {
            Some(received_id) => crate::access::sees_received_id(db, user, received_id).await?,
            None => false,
        }
    } else {
        false
    };
    if !allowed {
        return Err(not_found());
    }
    custody::receipt(db, share_id).await?.ok_or_else(not_found)
}
