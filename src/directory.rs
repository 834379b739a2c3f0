//! Recipient lookup (R56): how a user finds whom to name in a share (R47) by
//! what the seed says a user types, "a user or group name, email address, or
//! badge ID". In the caller's own org: users by a prefix of their name, email
//! address or badge ID and groups by a prefix of their name, ignoring case,
//! paged. In a partner org: only a user whose email address or badge ID is
//! exactly the text (ignoring case), never a group and never a prefix, so
//! that a partner's staff cannot be listed. Any other org answers as a
//! missing one does (404), so that a lookup tells nothing of which orgs exist.
//!
//! Each statement reads one org's range of the indexes of migration 0019
//! (`lower(..) text_pattern_ops`). A prefix is written as the byte-wise range
//! `[lower(q), successor)` (`~>=~`, `~<~`) with both bounds bound as
//! parameters: `LIKE $2 || '%'` gets an index range only from a constant
//! pattern, so under a generic plan (a prepared statement after five runs)
//! it reads the whole org. A range also takes `%`, `_` and `\` literally,
//! with nothing to escape. The plan is in the README ("Recipient directory").

use serde::Serialize;
use sqlx::PgConnection;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::principal::UserPrincipal;

/// The longest search text, in characters.
pub const MAX_QUERY: usize = 200;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema, sqlx::Type)]
#[serde(rename_all = "lowercase")]
#[sqlx(type_name = "text", rename_all = "lowercase")]
pub enum EntryKind {
    User,
    Group,
}

impl EntryKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EntryKind::User => "user",
            EntryKind::Group => "group",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "user" => Some(EntryKind::User),
            "group" => Some(EntryKind::Group),
            _ => None,
        }
    }
}

/// A user or group a share can name.
#[derive(Debug, Serialize, sqlx::FromRow, ToSchema)]
pub struct DirectoryEntry {
    pub kind: EntryKind,
    pub id: Uuid,
    pub name: String,
    /// Users only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Users with a badge ID only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub badge_id: Option<String>,
}

/// What the user typed: 1 to 200 characters.
#[derive(Debug)]
pub struct SearchText(String);

impl SearchText {
    pub fn parse(q: &str) -> Result<Self> {
        let chars = q.chars().count();
        if chars == 0 || chars > MAX_QUERY {
            return Err(Error::validation(format!(
                "q must be 1 to {MAX_QUERY} characters"
            )));
        }
        if q.contains('\0') {
            return Err(Error::validation("q must not contain NUL characters"));
        }
        // No text is greater than every text beginning with U+10FFFF…, so a
        // prefix made of it alone has no upper bound (`prefix_end`). It is a
        // noncharacter: nobody types it.
        if q.chars().all(|c| c == char::MAX) {
            return Err(Error::validation(
                "q must hold a character other than U+10FFFF",
            ));
        }
        Ok(SearchText(q.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Where a lookup reads.
enum Scope {
    /// The caller's own org: prefixes of users and groups.
    Own(Uuid),
    /// A partner org: exact email addresses and badge IDs of users.
    Partner(Uuid),
}

/// The caller's own org when `org_id` is none or names it, a partner of it,
/// and otherwise `not_found`, whether the org exists or not.
async fn scope(db: &mut PgConnection, user: &UserPrincipal, org_id: Option<Uuid>) -> Result<Scope> {
    match org_id {
        None => Ok(Scope::Own(user.org_id)),
        Some(org) if org == user.org_id => Ok(Scope::Own(org)),
        Some(org) if crate::orgs::are_partners(db, user.org_id, org).await? => {
            Ok(Scope::Partner(org))
        }
        Some(_) => Err(Error::NotFound("organization")),
    }
}

/// The least text above every text that starts with `prefix`, in code point
/// order, which is the byte order of UTF-8 and so the order of
/// `text_pattern_ops`: `prefix` with its last character replaced by the next
/// one, once trailing U+10FFFF (which has no next) are dropped. None when
/// `prefix` is made of U+10FFFF alone.
pub fn prefix_end(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = match last {
            // The surrogates are not characters.
            '\u{D7FF}' => Some('\u{E000}'),
            c => char::from_u32(c as u32 + 1),
        };
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

/// An own-org user matching the prefix [$2, $3) of org $1 by name, email or badge ID.
const OWN_USER: &str = "u.org_id = $1
    AND (   (lower(u.name) ~>=~ $2 AND lower(u.name) ~<~ $3)
         OR (lower(u.email) ~>=~ $2 AND lower(u.email) ~<~ $3)
         OR (lower(u.badge_id) ~>=~ $2 AND lower(u.badge_id) ~<~ $3))";
/// An own-org group matching the prefix [$2, $3) of org $1 by name.
const OWN_GROUP: &str = "g.org_id = $1 AND lower(g.name) ~>=~ $2 AND lower(g.name) ~<~ $3";
/// A partner's user whose email address or badge ID is $2 (lowercase).
const PARTNER_USER: &str = "u.org_id = $1 AND (lower(u.email) = $2 OR lower(u.badge_id) = $2)";

/// One page of what `q` finds for `user` in `org_id` (none: the user's own
/// org), ordered by kind (groups first), lowercase name (byte-wise) and id,
/// after the entry `after`, at most `limit + 1` entries (`http::page`
/// convention). `Ok(None)`: `after` is not an entry of this list.
pub async fn search(
    db: &mut PgConnection,
    user: &UserPrincipal,
    org_id: Option<Uuid>,
    q: &SearchText,
    after: Option<(EntryKind, Uuid)>,
    limit: usize,
) -> Result<Option<Vec<DirectoryEntry>>> {
    let scope = scope(db, user, org_id).await?;
    // PostgreSQL's lower(), as the indexes hold it (it can differ from
    // Rust's for some characters and collations).
    let q: String = sqlx::query_scalar("SELECT lower($1)")
        .bind(q.as_str())
        .fetch_one(&mut *db)
        .await?;
    match scope {
        Scope::Own(org) => {
            let end = prefix_end(&q).ok_or_else(|| Error::validation("q has no prefix range"))?;
            own(db, org, &q, &end, after, limit).await
        }
        Scope::Partner(org) => partner(db, org, &q, after, limit).await,
    }
}

async fn own(
    db: &mut PgConnection,
    org: Uuid,
    start: &str,
    end: &str,
    after: Option<(EntryKind, Uuid)>,
    limit: usize,
) -> Result<Option<Vec<DirectoryEntry>>> {
    // The sort key of the cursor's entry, if it is still in the list.
    let after = match after {
        None => None,
        Some((kind, id)) => {
            let sql = match kind {
                EntryKind::User => {
                    format!("SELECT lower(u.name) FROM users u WHERE {OWN_USER} AND u.id = $4")
                }
                EntryKind::Group => {
                    format!("SELECT lower(g.name) FROM groups g WHERE {OWN_GROUP} AND g.id = $4")
                }
            };
            let key: Option<String> = sqlx::query_scalar(&sql)
                .bind(org)
                .bind(start)
                .bind(end)
                .bind(id)
                .fetch_optional(&mut *db)
                .await?;
            match key {
                Some(key) => Some((kind, key, id)),
                None => return Ok(None),
            }
        }
    };
    // Each branch keeps its own page (a top-N sort), then the two are
    // merged. Groups come before users: past a user cursor the groups
    // branch is skipped whole (a one-time filter on $4).
    let rows = sqlx::query_as(&format!(
        r#"(SELECT 'group' COLLATE "C" AS kind, g.id, g.name, NULL::text AS email, NULL::text AS badge_id,
                   lower(g.name) COLLATE "C" AS key
              FROM groups g
             WHERE {OWN_GROUP}
               AND ($4::text IS NULL OR $4 = 'group')
               AND ($4 IS NULL OR (lower(g.name) COLLATE "C", g.id) > ($5 COLLATE "C", $6))
             ORDER BY lower(g.name) COLLATE "C", g.id LIMIT $7)
           UNION ALL
           (SELECT 'user', u.id, u.name, u.email, u.badge_id, lower(u.name) COLLATE "C"
              FROM users u
             WHERE {OWN_USER}
               AND ($4 IS NULL OR $4 = 'group' OR (lower(u.name) COLLATE "C", u.id) > ($5 COLLATE "C", $6))
             ORDER BY lower(u.name) COLLATE "C", u.id LIMIT $7)
           ORDER BY kind, key, id LIMIT $7"#
    ))
    .bind(org)
    .bind(start)
    .bind(end)
    .bind(after.as_ref().map(|(kind, _, _)| kind.as_str()))
    .bind(after.as_ref().map(|(_, key, _)| key.as_str()))
    .bind(after.as_ref().map(|(_, _, id)| *id))
    .bind(limit as i64 + 1)
    .fetch_all(&mut *db)
    .await?;
    Ok(Some(rows))
}

async fn partner(
    db: &mut PgConnection,
    org: Uuid,
    q: &str,
    after: Option<(EntryKind, Uuid)>,
    limit: usize,
) -> Result<Option<Vec<DirectoryEntry>>> {
    let after = match after {
        None => None,
        Some((EntryKind::Group, _)) => return Ok(None),
        Some((EntryKind::User, id)) => {
            let key: Option<String> = sqlx::query_scalar(&format!(
                "SELECT lower(u.name) FROM users u WHERE {PARTNER_USER} AND u.id = $3"
            ))
            .bind(org)
            .bind(q)
            .bind(id)
            .fetch_optional(&mut *db)
            .await?;
            match key {
                Some(key) => Some((key, id)),
                None => return Ok(None),
            }
        }
    };
    let rows = sqlx::query_as(&format!(
        r#"SELECT 'user' AS kind, u.id, u.name, u.email, u.badge_id
             FROM users u
            WHERE {PARTNER_USER}
              AND ($3::text IS NULL OR (lower(u.name) COLLATE "C", u.id) > ($3 COLLATE "C", $4))
            ORDER BY lower(u.name) COLLATE "C", u.id LIMIT $5"#
    ))
    .bind(org)
    .bind(q)
    .bind(after.as_ref().map(|(key, _)| key.as_str()))
    .bind(after.as_ref().map(|(_, id)| *id))
    .bind(limit as i64 + 1)
    .fetch_all(&mut *db)
    .await?;
    Ok(Some(rows))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prefix_ends_before_the_next_character() {
        assert_eq!(prefix_end("smi").as_deref(), Some("smj"));
        assert_eq!(prefix_end("a%").as_deref(), Some("a&"));
        assert_eq!(prefix_end("z").as_deref(), Some("{"));
        assert_eq!(prefix_end("é").as_deref(), Some("ê"));
        assert_eq!(prefix_end("a\u{D7FF}").as_deref(), Some("a\u{E000}"));
        assert_eq!(prefix_end("ab\u{10FFFF}").as_deref(), Some("ac"));
        assert_eq!(prefix_end("\u{10FFFF}\u{10FFFF}"), None);
        assert_eq!(prefix_end(""), None);
    }

    #[test]
    fn every_text_with_the_prefix_is_inside_its_range() {
        let prefix = "ab";
        let end = prefix_end(prefix).unwrap();
        for s in ["ab", "ab\u{10FFFF}x", "ab\u{0}", "abé", "ab~"] {
            assert!(
                s.as_bytes() >= prefix.as_bytes() && s.as_bytes() < end.as_bytes(),
                "{s:?}"
            );
        }
        for s in ["a", "aa\u{10FFFF}", "ac", "b", "a\u{10FFFF}"] {
            assert!(
                !(s.as_bytes() >= prefix.as_bytes() && s.as_bytes() < end.as_bytes()),
                "{s:?}"
            );
        }
    }

    #[test]
    fn search_text_is_one_to_two_hundred_characters() {
        assert!(SearchText::parse("").is_err());
        assert!(SearchText::parse(&"é".repeat(200)).is_ok());
        assert!(SearchText::parse(&"é".repeat(201)).is_err());
        assert!(SearchText::parse("a\0").is_err());
        assert!(SearchText::parse("\u{10FFFF}").is_err());
        assert!(SearchText::parse("%_\\").is_ok());
    }
}
