//! A real S3-compatible server on loopback for the tests of the `s3` content
//! store: `s3s-fs` (the S3 protocol over a local directory, with SigV4
//! authentication), served in-process by hyper. Each test gets its own root
//! directory and bucket; the server stops when the test's runtime ends.

use s3s::auth::SimpleAuth;
use s3s::service::S3ServiceBuilder;
use std::path::PathBuf;

pub const ACCESS_KEY: &str = "caseshare-test";
pub const SECRET_KEY: &str = "caseshare-test-secret";
pub const BUCKET: &str = "evidence";

pub struct S3Server {
    pub endpoint: String,
    /// The directory the server keeps its objects in: `<root>/<bucket>/<key>`.
    pub root: PathBuf,
    task: tokio::task::JoinHandle<()>,
}

impl S3Server {
    pub async fn start() -> S3Server {
        let root = std::env::temp_dir().join(format!("caseshare-s3-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(root.join(BUCKET)).unwrap();
        let fs = s3s_fs::FileSystem::new(&root).expect("s3s-fs root");
        let service = {
            let mut b = S3ServiceBuilder::new(fs);
            b.set_auth(SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY));
            b.build().into_shared()
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let http =
                hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
            // Connections are owned by this task: stopping it closes them all.
            let mut connections = tokio::task::JoinSet::new();
            while let Ok((socket, _)) = listener.accept().await {
                let conn = http
                    .serve_connection(hyper_util::rt::TokioIo::new(socket), service.clone())
                    .into_owned();
                connections.spawn(async move {
                    let _ = conn.await;
                });
                while connections.try_join_next().is_some() {}
            }
        });
        S3Server {
            endpoint,
            root,
            task,
        }
    }

    /// Take the server down: the listener and every open connection close.
    pub async fn stop(&self) {
        self.task.abort();
        while !self.task.is_finished() {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }

    /// Where the server keeps the object `key` of the bucket.
    pub fn object_path(&self, key: &str) -> PathBuf {
        self.root.join(BUCKET).join(key)
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_dir_all(&self.root);
    }
}
