//! Objects of the content store (R40, R52, R53) in motion: one being
//! written all-or-nothing (`Upload`), the evidence of a package read in the
//! order it is packaged (`InOrder`), and the local store's private files
//! (mode 0600) and directories (0700).

use futures_util::TryStreamExt;
use std::io;
use std::path::{Path, PathBuf};
use tokio::io::AsyncWriteExt;

use super::{s3_error, ContentStore, Object};

/// An object being written.
pub enum Upload {
    Local {
        file: tokio::fs::File,
        tmp: PathBuf,
        dest: PathBuf,
    },
    S3(object_store::WriteMultipart),
}

impl Upload {
    pub async fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self {
            Upload::Local { file, .. } => file.write_all(bytes).await,
            Upload::S3(w) => {
                // Bounded memory: at most a few parts in flight.
                w.wait_for_capacity(4).await.map_err(s3_error)?;
                w.write(bytes);
                Ok(())
            }
        }
    }

    /// Make the object visible (durably, for the local store).
    pub async fn commit(self) -> io::Result<()> {
        match self {
            Upload::Local { file, tmp, dest } => {
                let result = async {
                    file.sync_all().await?;
                    drop(file);
                    tokio::fs::rename(&tmp, &dest).await
                }
                .await;
                if result.is_err() {
                    let _ = tokio::fs::remove_file(&tmp).await;
                }
                result
            }
            Upload::S3(w) => w.finish().await.map(|_| ()).map_err(s3_error),
        }
    }

    /// Drop what was written; nothing becomes visible.
    pub async fn abort(self) {
        match self {
            Upload::Local { file, tmp, .. } => {
                drop(file);
                let _ = tokio::fs::remove_file(&tmp).await;
            }
            Upload::S3(w) => {
                if let Err(e) = w.abort().await {
                    tracing::warn!(error = %e, "cannot abort a multipart upload");
                }
            }
        }
    }
}

/// See [`ContentStore::evidence_in_order`].
pub enum InOrder {
    /// The local store's directory.
    Local(PathBuf),
    S3 {
        rx: tokio::sync::mpsc::Receiver<(
            uuid::Uuid,
            object_store::Result<object_store::GetResult>,
        )>,
        handle: tokio::runtime::Handle,
    },
}

impl InOrder {
    /// The reader and size of the next evidence, which must be `id`.
    pub fn open(&mut self, id: uuid::Uuid) -> io::Result<(Box<dyn io::Read>, u64)> {
        match self {
            InOrder::Local(dir) => {
                let file =
                    std::fs::File::open(ContentStore::local_path(dir, Object::Evidence(id)))?;
                let len = file.metadata()?.len();
                Ok((Box::new(file), len))
            }
            InOrder::S3 { rx, handle } => {
                let Some((got_id, got)) = rx.blocking_recv() else {
                    return Err(io::Error::other("the content prefetch stopped"));
                };
                if got_id != id {
                    return Err(io::Error::other(format!(
                        "content prefetch out of order: expected {id}, got {got_id}"
                    )));
                }
                let result = got.map_err(s3_error)?;
                let len = result.meta.size;
                let reader =
                    tokio_util::io::StreamReader::new(result.into_stream().map_err(s3_error));
                Ok((
                    Box::new(tokio_util::io::SyncIoBridge::new_with_handle(
                        reader,
                        handle.clone(),
                    )),
                    len,
                ))
            }
        }
    }
}

/// Evidence is for the service alone: directories `0700`, files `0600`
/// (whatever the process umask), on Unix.
pub(crate) async fn private_dir_all(path: &Path) -> io::Result<()> {
    let mut builder = tokio::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    builder.mode(0o700);
    builder.create(path).await
}

/// Create (truncate) a file readable and writable by the service only.
pub(crate) async fn private_file(path: &Path) -> io::Result<tokio::fs::File> {
    let mut options = tokio::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    options.mode(0o600);
    options.open(path).await
}

/// The blocking twin of [`private_file`], for the package writers.
pub(crate) fn private_file_sync(path: &Path) -> io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}
