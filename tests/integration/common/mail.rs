//! Reading the mails the SMTP sink accepted as a mail client would show
//! them: headers unfolded, MIME parts decoded (7bit, quoted-printable or
//! base64), so that assertions see the text and not its transfer encoding.

use super::smtp::Mail;
use super::{SmtpSink, TestApp};

/// Split an entity into its header block and its body.
fn split_entity(entity: &str) -> (&str, &str) {
    if let Some(i) = entity.find("\r\n\r\n") {
        (&entity[..i], &entity[i + 4..])
    } else if let Some(i) = entity.find("\n\n") {
        (&entity[..i], &entity[i + 2..])
    } else {
        (entity, "")
    }
}

/// Header fields of a block, continuation lines unfolded.
fn header_fields(block: &str) -> Vec<(String, String)> {
    let mut fields: Vec<(String, String)> = Vec::new();
    for line in block.lines() {
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = fields.last_mut() {
                value.push(' ');
                value.push_str(line.trim());
            }
        } else if let Some((name, value)) = line.split_once(':') {
            fields.push((name.trim().to_string(), value.trim().to_string()));
        }
    }
    fields
}

fn field(fields: &[(String, String)], name: &str) -> Option<String> {
    fields
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.clone())
}

/// A top-level header of a mail, e.g. `Message-ID`.
pub fn header(mail: &Mail, name: &str) -> Option<String> {
    field(&header_fields(split_entity(&mail.data).0), name)
}

/// A parameter of a header value, e.g. the `boundary` of a Content-Type.
fn param(value: &str, name: &str) -> Option<String> {
    value.split(';').skip(1).find_map(|p| {
        let (k, v) = p.trim().split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().trim_matches('"').to_string())
    })
}

fn decode_quoted_printable(body: &str) -> String {
    let joined = body.replace("=\r\n", "").replace("=\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'=' {
            if let Some(b) = joined
                .get(i + 1..i + 3)
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
            {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn decode_base64(body: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in body.bytes() {
        let Some(v) = ALPHABET.iter().position(|a| *a == c) else {
            continue; // line breaks and padding
        };
        acc = (acc << 6) | v as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The decoded bodies of an entity and, recursively, of its parts.
fn decode_entity(entity: &str) -> String {
    let (head, body) = split_entity(entity);
    let fields = header_fields(head);
    let content_type = field(&fields, "Content-Type").unwrap_or_default();
    if content_type.to_ascii_lowercase().starts_with("multipart/") {
        let boundary = param(&content_type, "boundary").expect("multipart boundary");
        let delimiter = format!("--{boundary}");
        let mut out = String::new();
        for part in body.split(delimiter.as_str()).skip(1) {
            if part.starts_with("--") {
                break; // the closing delimiter
            }
            let part = part
                .strip_prefix("\r\n")
                .or_else(|| part.strip_prefix('\n'))
                .unwrap_or(part);
            out.push_str(&decode_entity(part));
            out.push('\n');
        }
        return out;
    }
    match field(&fields, "Content-Transfer-Encoding")
        .map(|e| e.to_ascii_lowercase())
        .as_deref()
    {
        Some("quoted-printable") => decode_quoted_printable(body),
        Some("base64") => decode_base64(body),
        _ => body.to_string(),
    }
}

/// Everything a reader of the mail sees: the unfolded headers and the decoded
/// text and HTML bodies.
pub fn readable(mail: &Mail) -> String {
    let headers = header_fields(split_entity(&mail.data).0)
        .into_iter()
        .map(|(n, v)| format!("{n}: {v}\n"))
        .collect::<String>();
    format!("{headers}\n{}", decode_entity(&mail.data))
}

pub fn subject(mail: &Mail) -> String {
    header(mail, "Subject").unwrap_or_default()
}

/// The mails the sink accepted for `address`.
pub fn mails_to(app: &TestApp, address: &str) -> Vec<Mail> {
    sink(app)
        .mails()
        .into_iter()
        .filter(|m| m.to.iter().any(|t| t.eq_ignore_ascii_case(address)))
        .collect()
}

pub fn sink(app: &TestApp) -> &SmtpSink {
    app.smtp.as_ref().expect("the harness runs an SMTP sink")
}

/// The View link of a mail's text body.
pub fn view_link(text: &str) -> Option<String> {
    let start = text.find("http://caseshare.test/cases/")?;
    Some(
        text[start..]
            .split(|c: char| c.is_whitespace() || c == '"' || c == '<')
            .next()
            .unwrap_or_default()
            .to_string(),
    )
}
