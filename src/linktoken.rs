//! R60: a link share's download token and the two addresses built from it,
//! the recipient's landing page and the download. The token is recomputed
//! from the share's id under a secret key, never stored; this small module
//! sits below `notify` (whose emails link to the page) and `linkshare` (whose
//! views show both), so neither reaches into the other for it.

use uuid::Uuid;

use crate::config::Settings;

/// A link share's download token: HMAC-SHA256 of its id under a key
/// derived from `CASESHARE_DOWNLOAD_KEY`, a secret of its own (configured,
/// or generated per installation, R60), in hex: knowing every id and every
/// non-secret setting does not give it. It is not stored anywhere:
/// the service recomputes it for emails and for the sharer's view, and the
/// database holds only [`token_hash`], as for user tokens. Whoever can read
/// the database cannot download; rotating the key invalidates every link.
pub fn token(settings: &Settings, id: Uuid) -> String {
    hex::encode(
        settings
            .download_key()
            .derive("link share download token")
            .tag(id.as_bytes()),
    )
}

/// What the table keeps of a download token: its SHA-256.
pub fn token_hash(token: &str) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(token.as_bytes()).into()
}

/// The page a recipient lands on (#22): who sent what, until when, and the
/// download button. Emails link here.
pub fn page_url(settings: &Settings, id: Uuid) -> String {
    format!(
        "{}/links/{}",
        settings.public_url.trim_end_matches('/'),
        token(settings, id)
    )
}

/// The URL a recipient downloads a link share's package from.
pub fn download_url(settings: &Settings, id: Uuid) -> String {
    format!(
        "{}/v1/downloads/{}",
        settings.public_url.trim_end_matches('/'),
        token(settings, id)
    )
}
