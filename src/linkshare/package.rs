//! Writing a link share's package (R40): a ZIP (stored, not compressed:
//! evidence media is compressed already) or an ISO 9660 image with Joliet
//! names. Both stream every file from the content store, re-hash it on the
//! way and compare with the recorded SHA-256, and end with `manifest.json`
//! listing every file's path, size and SHA-256.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use utoipa::ToSchema;
use uuid::Uuid;

use super::iso9660;
use crate::content::store::{ContentStore, InOrder, Object};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, sqlx::Type)]
#[serde(rename_all = "lowercase")]
#[sqlx(type_name = "text", rename_all = "lowercase")]
pub enum Package {
    Zip,
    /// ISO 9660 with Joliet names.
    Iso,
}

impl Package {
    pub fn as_str(self) -> &'static str {
        match self {
            Package::Zip => "zip",
            Package::Iso => "iso",
        }
    }

    /// The file name extension of the download.
    pub fn extension(self) -> &'static str {
        self.as_str()
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Package::Zip => "application/zip",
            Package::Iso => "application/x-iso9660-image",
        }
    }
}

/// What goes into the package, gathered from the database before any file is
/// touched (no connection is held while the package is written).
pub struct Plan {
    pub link_share_id: Uuid,
    pub case_id: Uuid,
    pub package: Package,
    pub store: ContentStore,
    /// Where the package is written.
    pub output: PathBuf,
    pub evidence: Vec<PlannedEvidence>,
    /// Attachments: (path in the archive, bytes).
    pub extras: Vec<(String, Vec<u8>)>,
}

pub struct PlannedEvidence {
    pub id: Uuid,
    pub title: String,
    pub path: String,
    /// The recorded SHA-256 when the content is in the store.
    pub stored_sha256: Option<String>,
    /// The recorded size of the stored content.
    pub stored_size: Option<u64>,
}

pub enum BuildError {
    /// The package cannot be built from what is stored: the link share fails.
    Content {
        evidence_id: Option<Uuid>,
        reason: String,
    },
    Io(io::Error),
}

impl From<io::Error> for BuildError {
    fn from(e: io::Error) -> Self {
        BuildError::Io(e)
    }
}

impl From<zip::result::ZipError> for BuildError {
    fn from(e: zip::result::ZipError) -> Self {
        match e {
            zip::result::ZipError::Io(e) => BuildError::Io(e),
            other => BuildError::Io(io::Error::other(other)),
        }
    }
}

pub struct Built {
    pub manifest_sha256: String,
    pub size_bytes: u64,
    /// The files of the package as its manifest lists them (`[{path,
    /// size_bytes, sha256}]`), for the recipient's landing page.
    pub files: serde_json::Value,
}

/// A file of the package as the manifest lists it.
#[derive(Clone, Serialize)]
struct FileEntry {
    path: String,
    size_bytes: u64,
    sha256: String,
}

/// Write the package to `plan.output` (removed again on failure).
pub fn build(plan: &Plan) -> Result<Built, BuildError> {
    let result = match plan.package {
        Package::Zip => write_zip(plan),
        Package::Iso => write_iso(plan),
    };
    if result.is_err() {
        let _ = std::fs::remove_file(&plan.output);
    }
    result
}

/// A reader that hashes and counts what passes through it.
struct Hashing<R> {
    inner: R,
    hasher: Sha256,
    bytes: u64,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
}

fn content_error(ev: &PlannedEvidence, what: String) -> BuildError {
    BuildError::Content {
        evidence_id: Some(ev.id),
        reason: format!("the content of evidence {:?} ({}) {what}", ev.title, ev.id),
    }
}

/// Open the stored content of `ev`, the next one of `readers`: the reader
/// and its size.
fn open_content(
    readers: &mut InOrder,
    ev: &PlannedEvidence,
) -> Result<(Box<dyn Read>, u64), BuildError> {
    readers
        .open(ev.id)
        .map_err(|e| content_error(ev, format!("cannot be read from the store: {e}")))
}

/// The evidence with stored content, in package order.
fn stored_ids(plan: &Plan) -> Vec<Uuid> {
    plan.evidence
        .iter()
        .filter(|ev| ev.stored_sha256.is_some())
        .map(|ev| ev.id)
        .collect()
}

/// Copy the stored content of `ev` into `out`, hashing it on the way, and
/// check it against the recorded SHA-256 (and, for a laid-out image, the
/// size it was given). Returns the SHA-256 and the size.
fn copy_verified(
    file: Box<dyn Read>,
    ev: &PlannedEvidence,
    expected_sha256: &str,
    expected_size: Option<u64>,
    out: &mut dyn Write,
) -> Result<(String, u64), BuildError> {
    let mut reader = Hashing {
        inner: io::BufReader::with_capacity(256 * 1024, file),
        hasher: Sha256::new(),
        bytes: 0,
    };
    match expected_size {
        // Never more than laid out, so a grown file cannot shift the image.
        Some(size) => io::copy(&mut (&mut reader).take(size), out)?,
        None => io::copy(&mut reader, out)?,
    };
    if let Some(size) = expected_size {
        // Nothing may be left after the laid-out size.
        if reader.bytes != size || !io::BufRead::fill_buf(&mut reader.inner)?.is_empty() {
            return Err(content_error(
                ev,
                format!("changed size while the package was built (expected {size} bytes)"),
            ));
        }
    }
    let actual = hex::encode(reader.hasher.finalize());
    if !actual.eq_ignore_ascii_case(expected_sha256) {
        return Err(content_error(
            ev,
            format!("in the store has SHA-256 {actual}, not the recorded {expected_sha256}"),
        ));
    }
    Ok((actual, reader.bytes))
}

/// `manifest.json`: every file of the package, and every evidence item in
/// scope with the file it became (or `null` when it has no stored content).
fn manifest(
    plan: &Plan,
    evidence: &[Option<FileEntry>],
    extras: &[FileEntry],
) -> io::Result<Vec<u8>> {
    let files: Vec<&FileEntry> = evidence.iter().flatten().chain(extras).collect();
    let listed: Vec<serde_json::Value> = plan
        .evidence
        .iter()
        .zip(evidence)
        .map(|(ev, entry)| serde_json::json!({ "evidence_id": ev.id, "title": ev.title, "content": entry }))
        .collect();
    serde_json::to_vec_pretty(&serde_json::json!({
        "link_share_id": plan.link_share_id,
        "case_id": plan.case_id,
        "package": plan.package.as_str(),
        "files": files,
        "evidence": listed,
    }))
    .map_err(io::Error::other)
}

fn extra_entries(plan: &Plan, paths: impl Fn(usize) -> String) -> Vec<FileEntry> {
    plan.extras
        .iter()
        .enumerate()
        .map(|(i, (_, bytes))| FileEntry {
            path: paths(i),
            size_bytes: bytes.len() as u64,
            sha256: hex::encode(Sha256::digest(bytes)),
        })
        .collect()
}

fn finish(file: std::fs::File, manifest: &[u8]) -> Result<Built, BuildError> {
    file.sync_all()?;
    let files = serde_json::from_slice::<serde_json::Value>(manifest)
        .map(|mut m| m["files"].take())
        .map_err(io::Error::other)?;
    Ok(Built {
        manifest_sha256: hex::encode(Sha256::digest(manifest)),
        size_bytes: file.metadata()?.len(),
        files,
    })
}

fn create(path: &Path) -> io::Result<io::BufWriter<std::fs::File>> {
    Ok(io::BufWriter::with_capacity(
        256 * 1024,
        crate::content::store::private_file_sync(path)?,
    ))
}

fn write_zip(plan: &Plan) -> Result<Built, BuildError> {
    use zip::write::SimpleFileOptions;
    use zip::CompressionMethod;
    let stored = |len: u64| {
        SimpleFileOptions::default()
            .compression_method(CompressionMethod::Stored)
            .large_file(len >= u32::MAX as u64)
    };
    let mut zip = zip::ZipWriter::new(create(&plan.output)?);
    let mut readers = plan.store.evidence_in_order(stored_ids(plan));
    let mut evidence = Vec::with_capacity(plan.evidence.len());
    for ev in &plan.evidence {
        let Some(expected) = &ev.stored_sha256 else {
            evidence.push(None);
            continue;
        };
        let (file, len) = open_content(&mut readers, ev)?;
        zip.start_file(ev.path.as_str(), stored(len))?;
        let (sha256, size_bytes) = copy_verified(file, ev, expected, None, &mut zip)?;
        evidence.push(Some(FileEntry {
            path: ev.path.clone(),
            size_bytes,
            sha256,
        }));
    }
    for (path, bytes) in &plan.extras {
        zip.start_file(path.as_str(), stored(bytes.len() as u64))?;
        zip.write_all(bytes)?;
    }
    let extras = extra_entries(plan, |i| plan.extras[i].0.clone());
    let manifest = manifest(plan, &evidence, &extras)?;
    zip.start_file("manifest.json", stored(manifest.len() as u64))?;
    zip.write_all(&manifest)?;
    let file = zip.finish()?.into_inner().map_err(|e| e.into_error())?;
    finish(file, &manifest)
}

/// A SHA-256 as long as a real one, for sizing the manifest before any file
/// is hashed (every hex SHA-256 has 64 characters).
const PLACEHOLDER_SHA256: &str = "0000000000000000000000000000000000000000000000000000000000000000";

fn write_iso(plan: &Plan) -> Result<Built, BuildError> {
    // Lay the image out first: names, then sizes (from the store).
    // (index in plan.evidence, evidence, recorded SHA-256) of stored content.
    let stored: Vec<(usize, &PlannedEvidence, &String)> = plan
        .evidence
        .iter()
        .enumerate()
        .filter_map(|(i, ev)| ev.stored_sha256.as_ref().map(|sha| (i, ev, sha)))
        .collect();
    let split = |p: &str| p.split('/').map(String::from).collect::<Vec<_>>();
    let mut paths: Vec<Vec<String>> = stored.iter().map(|(_, ev, _)| split(&ev.path)).collect();
    paths.extend(plan.extras.iter().map(|(p, _)| split(p)));
    paths.push(vec!["manifest.json".into()]);
    let volume_id = format!(
        "CASESHARE {}",
        &plan.link_share_id.simple().to_string()[..8]
    );
    let image = iso9660::Image::new(&volume_id, &paths).map_err(|e| BuildError::Content {
        evidence_id: None,
        reason: format!("the package cannot be laid out: {e}"),
    })?;
    // The sizes recorded at upload; what the store then yields is checked
    // against them while it is copied.
    let mut sizes = Vec::with_capacity(paths.len());
    for (_, ev, _) in &stored {
        let size = match ev.stored_size {
            Some(size) => size,
            None => plan
                .store
                .size_blocking(Object::Evidence(ev.id))
                .map_err(|e| content_error(ev, format!("cannot be read from the store: {e}")))?,
        };
        sizes.push(size);
    }
    sizes.extend(plan.extras.iter().map(|(_, b)| b.len() as u64));

    // The manifest's size is known before any hash is: hashes have a fixed length.
    let mut entries = stored.iter().enumerate().map(|(i, _)| FileEntry {
        path: image.path(i),
        size_bytes: sizes[i],
        sha256: PLACEHOLDER_SHA256.into(),
    });
    let mut evidence: Vec<Option<FileEntry>> = plan
        .evidence
        .iter()
        .map(|ev| ev.stored_sha256.as_ref().and_then(|_| entries.next()))
        .collect();
    let extras = extra_entries(plan, |i| image.path(stored.len() + i));
    let manifest_len = manifest(plan, &evidence, &extras)?.len() as u64;
    sizes.push(manifest_len);

    let manifest_index = paths.len() - 1;
    let mut failure: Option<BuildError> = None;
    let mut final_manifest = Vec::new();
    let mut out = create(&plan.output)?;
    let mut readers = plan.store.evidence_in_order(stored_ids(plan));
    let written = image.write(&sizes, &mut out, |i, w| {
        let result = if i < stored.len() {
            let (slot, ev, expected) = stored[i];
            open_content(&mut readers, ev)
                .and_then(|(file, _)| copy_verified(file, ev, expected, Some(sizes[i]), w))
                .map(|(sha256, _)| {
                    if let Some(entry) = &mut evidence[slot] {
                        entry.sha256 = sha256;
                    }
                })
        } else if i < manifest_index {
            w.write_all(&plan.extras[i - stored.len()].1)
                .map_err(BuildError::Io)
        } else {
            manifest(plan, &evidence, &extras)
                .map_err(BuildError::Io)
                .and_then(|m| {
                    if m.len() as u64 != manifest_len {
                        return Err(BuildError::Io(io::Error::other(
                            "the manifest changed size after layout",
                        )));
                    }
                    w.write_all(&m)?;
                    final_manifest = m;
                    Ok(())
                })
        };
        result.map_err(|e| {
            let message = match &e {
                BuildError::Content { reason, .. } => reason.clone(),
                BuildError::Io(e) => e.to_string(),
            };
            failure = Some(e);
            io::Error::other(message)
        })
    });
    if let Some(e) = failure {
        return Err(e);
    }
    written?;
    let file = out.into_inner().map_err(|e| e.into_error())?;
    finish(file, &final_manifest)
}
