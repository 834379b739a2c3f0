//! Pagination of lists (API.md, second release): `?limit=` (default 100,
//! max 1,000) and an opaque `?cursor=`; the answer carries `next_cursor`,
//! null on the last page. A cursor names the last item of the page before
//! (by its id), so a page boundary stays put when items are added anywhere
//! in the list; a cursor whose item left the list is refused (422).

use serde::Deserialize;

use crate::error::{Error, Result};

pub const DEFAULT_LIMIT: usize = 100;
pub const MAX_LIMIT: usize = 1_000;

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
pub struct PageQuery {
    /// Items per page: 1 to 1,000 (default 100).
    pub limit: Option<u32>,
    /// `next_cursor` of the page before.
    pub cursor: Option<String>,
}

impl PageQuery {
    pub fn limit(&self) -> Result<usize> {
        match self.limit {
            None => Ok(DEFAULT_LIMIT),
            Some(n) if (1..=MAX_LIMIT as u32).contains(&n) => Ok(n as usize),
            Some(_) => Err(Error::validation(format!(
                "limit must be between 1 and {MAX_LIMIT}"
            ))),
        }
    }

    /// The cursor's item as the key of a list paged by keyset in SQL (a
    /// uuid, or an audit entry's number).
    pub fn after_key<K: std::str::FromStr>(&self) -> Result<Option<K>> {
        self.after()?
            .map(|a| {
                a.parse::<K>()
                    .map_err(|_| Error::validation("cursor is not a cursor of this list"))
            })
            .transpose()
    }

    /// The id of the last item of the page before, if any.
    pub fn after(&self) -> Result<Option<String>> {
        self.cursor
            .as_deref()
            .map(|c| {
                hex::decode(c)
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .and_then(|s| s.strip_prefix("v1:").map(str::to_string))
                    .ok_or_else(|| Error::validation("cursor is not a cursor of this list"))
            })
            .transpose()
    }
}

/// The cursor that continues after the item `id`.
pub fn cursor(id: &str) -> String {
    hex::encode(format!("v1:{id}"))
}

/// A cursor whose item is no longer in the list.
pub fn stale_cursor() -> Error {
    Error::validation("cursor names an item no longer in this list")
}

/// The page in `rows`, read with one row more than `limit` (as the keyset
/// queries do), and the cursor of the next page (none on the last page).
pub fn next_page<T>(
    mut rows: Vec<T>,
    limit: usize,
    id: impl Fn(&T) -> String,
) -> (Vec<T>, Option<String>) {
    let next = (rows.len() > limit).then(|| {
        rows.truncate(limit);
        cursor(&id(&rows[limit - 1]))
    });
    (rows, next)
}

/// One page of an ordered list, and the cursor of the next (none on the
/// last page). `id` names each item.
pub fn page<T>(
    items: Vec<T>,
    q: &PageQuery,
    id: impl Fn(&T) -> String,
) -> Result<(Vec<T>, Option<String>)> {
    let limit = q.limit()?;
    let start = match q.after()? {
        None => 0,
        Some(after) => {
            items
                .iter()
                .position(|item| id(item) == after)
                .ok_or_else(stale_cursor)?
                + 1
        }
    };
    let rest: Vec<T> = items.into_iter().skip(start).collect();
    Ok(next_page(rest, limit, id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_follow_each_other_and_end_with_no_cursor() {
        let items: Vec<u32> = (0..250).collect();
        let q = |cursor: Option<String>| PageQuery {
            limit: Some(100),
            cursor,
        };
        let (p1, c1) = page(items.clone(), &q(None), |i| i.to_string()).unwrap();
        assert_eq!((p1.len(), p1[0]), (100, 0));
        let (p2, c2) = page(items.clone(), &q(c1), |i| i.to_string()).unwrap();
        assert_eq!(p2[0], 100);
        let (p3, c3) = page(items.clone(), &q(c2), |i| i.to_string()).unwrap();
        assert_eq!((p3.len(), c3), (50, None));
        assert!(page(items.clone(), &q(Some("zz".into())), |i| i.to_string()).is_err());
        assert!(PageQuery {
            limit: Some(1001),
            cursor: None
        }
        .limit()
        .is_err());
        assert!(PageQuery {
            limit: Some(0),
            cursor: None
        }
        .limit()
        .is_err());
    }
}
