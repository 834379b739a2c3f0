//! Length limits of every text field a client sends (issue "Hardening"):
//! refused with 422 `validation` naming the field and the limit, before
//! anything is written. Counted in characters, not bytes.

use crate::error::{Error, Result};

/// Names: orgs, users, groups, policies, folders.
pub const NAME: usize = 200;
/// Case numbers, titles, badge IDs, email addresses.
pub const SHORT: usize = 500;
/// Descriptions, messages, one note.
pub const TEXT: usize = 10_000;
/// Transcripts.
pub const LONG: usize = 1_000_000;
/// Entries of a list field (notes, tags, categories).
pub const LIST: usize = 200;

/// `value` has at most `max` characters.
pub fn text(field: &str, value: &str, max: usize) -> Result<()> {
    if value.chars().count() > max {
        return Err(Error::validation(format!(
            "{field} is longer than {max} characters"
        )));
    }
    Ok(())
}

/// A list of at most `LIST` entries of at most `max` characters each.
pub fn list<S: AsRef<str>>(field: &str, values: &[S], max: usize) -> Result<()> {
    if values.len() > LIST {
        return Err(Error::validation(format!(
            "{field} has more than {LIST} entries"
        )));
    }
    for (i, v) in values.iter().enumerate() {
        text(&format!("{field}[{i}]"), v.as_ref(), max)?;
    }
    Ok(())
}

/// Like `text` for an optional field.
pub fn opt(field: &str, value: Option<&str>, max: usize) -> Result<()> {
    value.map_or(Ok(()), |v| text(field, v, max))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_name_the_field() {
        assert!(text("title", "abc", 3).is_ok());
        let e = text("title", "abcd", 3).unwrap_err().to_string();
        assert!(e.contains("title") && e.contains('3'), "{e}");
        let e = list("tags", &["ok", "too long"], 3)
            .unwrap_err()
            .to_string();
        assert!(e.contains("tags[1]"), "{e}");
        assert!(list("tags", &vec!["x"; LIST + 1], 3).is_err());
    }
}
