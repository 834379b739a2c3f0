//! The content store (R40): evidence content and built link-share packages.
//!
//! Two backends, chosen by `content_store`:
//! - `local`: files under `content_dir` (evidence at `<dir>/<evidence id>`,
//!   packages at `<dir>/packages/<key>`), the embedded default;
//! - `s3`: an S3-compatible bucket through `object_store` (objects
//!   `evidence/<id>` and `packages/<key>`), for production. `content_dir` is
//!   then only the scratch space where packages are assembled before upload.
//!
//! Writes are all-or-nothing: a local upload goes to a temporary file that is
//! renamed into place, an S3 upload is a multipart upload that is completed
//! only on `commit` (and aborted otherwise), so a refused upload leaves nothing.
//!
//! This file holds the store and its operations; `objects` the object being
//! written (`Upload`), the evidence read in order for a package (`InOrder`)
//! and the private files and directories of the local store.

mod objects;

pub(crate) use objects::{private_dir_all, private_file, private_file_sync};
pub use objects::{InOrder, Upload};

use axum::body::Bytes;
use futures_util::{Stream, StreamExt};
use object_store::{ObjectStore, ObjectStoreExt};
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use crate::config::{Settings, StoreKind};

/// An object of the store.
#[derive(Debug, Clone, Copy)]
pub enum Object<'a> {
    /// The content of an evidence item.
    Evidence(uuid::Uuid),
    /// A built package, by its key (unique per build).
    Package(&'a str),
    /// Verified bytes by their SHA-256 (hex), kept once however many
    /// copies hold them (R53; the local store's copies are links to it).
    Blob(&'a str),
}

#[derive(Clone)]
pub enum ContentStore {
    Local {
        dir: PathBuf,
    },
    S3 {
        store: Arc<dyn ObjectStore>,
        scratch: PathBuf,
    },
}

impl std::fmt::Debug for ContentStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ContentStore::Local { dir } => write!(f, "local store at {}", dir.display()),
            ContentStore::S3 { store, .. } => write!(f, "{store}"),
        }
    }
}

pub type ByteStream = Pin<Box<dyn Stream<Item = io::Result<Bytes>> + Send>>;

pub(super) fn s3_error(e: object_store::Error) -> io::Error {
    match e {
        object_store::Error::NotFound { .. } => io::Error::new(io::ErrorKind::NotFound, e),
        other => io::Error::other(other),
    }
}

impl ContentStore {
    pub fn from_settings(settings: &Settings) -> anyhow::Result<ContentStore> {
        Ok(match settings.content_store {
            StoreKind::Local => ContentStore::Local {
                dir: settings.content_dir.clone(),
            },
            StoreKind::S3 => {
                // Credentials, region etc. may also come from the usual AWS_*
                // variables; the caseshare settings win where they are set.
                // Bounded: a request gives up after a few retries within 30 s
                // and the job's own retry (backoff queues) takes over, rather
                // than a worker slot hanging for minutes on an outage.
                let retry = object_store::RetryConfig {
                    backoff: object_store::BackoffConfig::default(),
                    max_retries: 3,
                    retry_timeout: std::time::Duration::from_secs(30),
                };
                let client = object_store::ClientOptions::new()
                    .with_connect_timeout(std::time::Duration::from_secs(5))
                    .with_timeout(std::time::Duration::from_secs(300));
                let mut b = object_store::aws::AmazonS3Builder::from_env()
                    .with_bucket_name(&settings.s3_bucket)
                    .with_region(&settings.s3_region)
                    .with_retry(retry)
                    .with_client_options(client);
                if !settings.s3_endpoint.is_empty() {
                    b = b
                        .with_endpoint(&settings.s3_endpoint)
                        .with_allow_http(settings.s3_endpoint.starts_with("http://"));
                }
                if !settings.s3_access_key_id.is_empty() {
                    b = b
                        .with_access_key_id(&settings.s3_access_key_id)
                        .with_secret_access_key(&settings.s3_secret_access_key);
                }
                ContentStore::S3 {
                    store: Arc::new(b.build()?),
                    scratch: settings.content_dir.clone(),
                }
            }
        })
    }

    /// A local directory for temporary files (uploads, packages being built).
    pub fn scratch_dir(&self) -> &Path {
        match self {
            ContentStore::Local { dir } => dir,
            ContentStore::S3 { scratch, .. } => scratch,
        }
    }

    /// A path for a temporary file named `name` in the scratch space's
    /// `.tmp` directory (on the local store's filesystem, so it can be
    /// renamed into place). What a crash leaves there is removed by
    /// [`ContentStore::sweep_temp`].
    pub async fn temp_path(&self, name: &str) -> io::Result<PathBuf> {
        let dir = self.scratch_dir().join(".tmp");
        private_dir_all(&dir).await?;
        Ok(dir.join(name))
    }

    /// Remove temporary files older than `age` (left by a crash during an
    /// upload or a package build). Returns how many were removed.
    pub async fn sweep_temp(&self, age: std::time::Duration) -> io::Result<u64> {
        let mut entries = match tokio::fs::read_dir(self.scratch_dir().join(".tmp")).await {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(e),
        };
        let mut removed = 0;
        while let Some(entry) = entries.next_entry().await? {
            let modified = entry.metadata().await?.modified()?;
            if modified.elapsed().unwrap_or_default() > age
                && tokio::fs::remove_file(entry.path()).await.is_ok()
            {
                removed += 1;
            }
        }
        Ok(removed)
    }

    fn local_path(dir: &Path, object: Object<'_>) -> PathBuf {
        match object {
            Object::Evidence(id) => dir.join(id.to_string()),
            Object::Package(key) => dir.join("packages").join(key),
            Object::Blob(sha256) => dir.join("blobs").join(sha256),
        }
    }

    fn s3_path(object: Object<'_>) -> object_store::path::Path {
        match object {
            Object::Evidence(id) => format!("evidence/{id}").into(),
            Object::Package(key) => format!("packages/{key}").into(),
            Object::Blob(sha256) => format!("blobs/{sha256}").into(),
        }
    }

    /// Start writing `object`; nothing is visible until [`Upload::commit`].
    pub async fn upload(&self, object: Object<'_>) -> io::Result<Upload> {
        match self {
            ContentStore::Local { dir } => {
                let dest = Self::local_path(dir, object);
                if let Some(parent) = dest.parent() {
                    private_dir_all(parent).await?;
                }
                let tmp = self
                    .temp_path(&format!("upload-{}", uuid::Uuid::new_v4()))
                    .await?;
                let file = private_file(&tmp).await?;
                Ok(Upload::Local { file, tmp, dest })
            }
            ContentStore::S3 { store, .. } => {
                let upload = store
                    .put_multipart(&Self::s3_path(object))
                    .await
                    .map_err(s3_error)?;
                Ok(Upload::S3(
                    object_store::WriteMultipart::new_with_chunk_size(upload, 8 * 1024 * 1024),
                ))
            }
        }
    }

    /// Move a finished local file (e.g. a built package) into the store.
    pub async fn put_file(&self, file: &Path, object: Object<'_>) -> io::Result<()> {
        match self {
            ContentStore::Local { dir } => {
                let dest = Self::local_path(dir, object);
                if let Some(parent) = dest.parent() {
                    private_dir_all(parent).await?;
                }
                tokio::fs::rename(file, dest).await
            }
            ContentStore::S3 { .. } => {
                let mut upload = self.upload(object).await?;
                let mut source = tokio::fs::File::open(file).await?;
                let mut buf = vec![0u8; 1024 * 1024];
                let result = async {
                    loop {
                        let n = source.read(&mut buf).await?;
                        if n == 0 {
                            break;
                        }
                        upload.write(&buf[..n]).await?;
                    }
                    Ok::<(), io::Error>(())
                }
                .await;
                match result {
                    Ok(()) => upload.commit().await?,
                    Err(e) => {
                        upload.abort().await;
                        return Err(e);
                    }
                }
                tokio::fs::remove_file(file).await
            }
        }
    }

    /// Make `dest` hold the bytes of the finished local file `file`, whose
    /// SHA-256 (hex) the caller has checked to be `sha256` (R53). The local
    /// store keeps the bytes once per SHA-256 (`blobs/<sha256>`) and makes
    /// `dest` a hard link to them, so copies of the same file share one, and
    /// each copy outlives the sender's own object; S3 uploads `file` as
    /// `dest`. Idempotent: a `dest` already there is kept. `file` is gone
    /// afterwards.
    pub async fn put_verified(
        &self,
        file: &Path,
        sha256: &str,
        dest: Object<'_>,
    ) -> io::Result<()> {
        match self {
            ContentStore::Local { dir } => {
                let blob = Self::local_path(dir, Object::Blob(sha256));
                let target = Self::local_path(dir, dest);
                for parent in [blob.parent(), target.parent()].into_iter().flatten() {
                    private_dir_all(parent).await?;
                }
                if tokio::fs::try_exists(&blob).await? {
                    tokio::fs::remove_file(file).await?;
                } else {
                    // Two copies at once rename the same bytes: either wins.
                    tokio::fs::rename(file, &blob).await?;
                }
                match tokio::fs::hard_link(&blob, &target).await {
                    Err(e) if e.kind() != io::ErrorKind::AlreadyExists => Err(e),
                    _ => Ok(()),
                }
            }
            ContentStore::S3 { .. } => self.put_file(file, dest).await,
        }
    }

    /// Readers of the evidence `ids`, to be opened in this order from
    /// blocking code. On S3 the requests run ahead (a few at a time, in
    /// order), so the latency of each GET overlaps the copying of the objects
    /// before it instead of adding up; locally each file is opened when asked.
    pub fn evidence_in_order(&self, ids: Vec<uuid::Uuid>) -> InOrder {
        match self {
            ContentStore::Local { dir } => InOrder::Local(dir.clone()),
            ContentStore::S3 { store, .. } => {
                const AHEAD: usize = 4;
                let (tx, rx) = tokio::sync::mpsc::channel(AHEAD);
                let store = store.clone();
                let handle = tokio::runtime::Handle::current();
                handle.spawn(async move {
                    let mut gets = futures_util::stream::iter(ids)
                        .map(|id| {
                            let store = store.clone();
                            async move {
                                let got = store.get(&Self::s3_path(Object::Evidence(id))).await;
                                (id, got)
                            }
                        })
                        .buffered(AHEAD);
                    while let Some(got) = gets.next().await {
                        if tx.send(got).await.is_err() {
                            break; // the builder stopped: drop what is in flight
                        }
                    }
                });
                InOrder::S3 { rx, handle }
            }
        }
    }

    /// The size of `object`, from blocking code.
    pub fn size_blocking(&self, object: Object<'_>) -> io::Result<u64> {
        match self {
            ContentStore::Local { dir } => {
                Ok(std::fs::metadata(Self::local_path(dir, object))?.len())
            }
            ContentStore::S3 { .. } => {
                tokio::runtime::Handle::current().block_on(self.size(object))
            }
        }
    }

    /// The size of `object` (`NotFound` when absent).
    pub async fn size(&self, object: Object<'_>) -> io::Result<u64> {
        match self {
            ContentStore::Local { dir } => Ok(tokio::fs::metadata(Self::local_path(dir, object))
                .await?
                .len()),
            ContentStore::S3 { store, .. } => Ok(store
                .head(&Self::s3_path(object))
                .await
                .map_err(s3_error)?
                .size),
        }
    }

    /// Stream `len` bytes of `object` from `start`.
    pub async fn read_range(
        &self,
        object: Object<'_>,
        start: u64,
        len: u64,
    ) -> io::Result<ByteStream> {
        match self {
            ContentStore::Local { dir } => {
                let mut file = tokio::fs::File::open(Self::local_path(dir, object)).await?;
                if start > 0 {
                    file.seek(io::SeekFrom::Start(start)).await?;
                }
                Ok(Box::pin(tokio_util::io::ReaderStream::with_capacity(
                    file.take(len),
                    1024 * 1024,
                )))
            }
            ContentStore::S3 { store, .. } => {
                if len == 0 {
                    return Ok(Box::pin(futures_util::stream::empty()));
                }
                let options = object_store::GetOptions {
                    range: Some((start..start + len).into()),
                    ..Default::default()
                };
                let result = store
                    .get_opts(&Self::s3_path(object), options)
                    .await
                    .map_err(s3_error)?;
                Ok(Box::pin(result.into_stream().map(|r| r.map_err(s3_error))))
            }
        }
    }

    /// Delete `object`; an absent object is not an error.
    pub async fn delete(&self, object: Object<'_>) -> io::Result<()> {
        let result = match self {
            ContentStore::Local { dir } => {
                tokio::fs::remove_file(Self::local_path(dir, object)).await
            }
            ContentStore::S3 { store, .. } => {
                store.delete(&Self::s3_path(object)).await.map_err(s3_error)
            }
        };
        match result {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}
