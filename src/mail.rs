//! The SMTP transport (lettre), pooled and built once per process. It sends
//! one rendered message and says whether a failure is worth retrying; what to
//! send, to whom and how often is `notify`'s business (R32–R34).
//!
//! A plain `smtp://host:port` relay (the usual local MTA) goes through
//! `NoDelayPool`: lettre's own connections, opened on a TCP socket we make
//! with `TCP_NODELAY` (`AsyncSmtpConnection::connect_with_transport`). lettre
//! 0.11 never sets it, so each SMTP command waited for the peer's delayed ACK
//! (~40 ms a message on loopback). URLs with TLS or credentials use lettre's
//! pooled transport unchanged.

use lettre::message::{header::ContentType, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::client::AsyncSmtpConnection;
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::sync::Arc;
use std::time::Duration;

#[derive(Clone)]
pub struct Mailer {
    transport: Transport,
    from: Mailbox,
    timeout: Duration,
}

#[derive(Clone)]
enum Transport {
    Lettre(AsyncSmtpTransport<Tokio1Executor>),
    NoDelay(Arc<NoDelayPool>),
    /// No relay configured (outside production): `.eml` files in a
    /// directory, one per message (lettre's file transport).
    Files(lettre::AsyncFileTransport<Tokio1Executor>),
}

/// Idle SMTP connections to a plain relay, at most `permits` in use.
struct NoDelayPool {
    addr: String,
    hello: ClientId,
    idle: tokio::sync::Mutex<Vec<AsyncSmtpConnection>>,
    permits: tokio::sync::Semaphore,
    /// Each SMTP step (connecting, sending one message) gives up after this.
    timeout: Duration,
}

impl NoDelayPool {
    async fn connect(&self) -> Result<AsyncSmtpConnection, MailError> {
        let transient = |e: String| MailError::Transient(format!("smtp: {e}"));
        let stream = tokio::time::timeout(self.timeout, tokio::net::TcpStream::connect(&self.addr))
            .await
            .map_err(|_| transient(format!("connecting to {} timed out", self.addr)))?
            .map_err(|e| transient(format!("connecting to {}: {e}", self.addr)))?;
        stream
            .set_nodelay(true)
            .map_err(|e| transient(format!("TCP_NODELAY: {e}")))?;
        tokio::time::timeout(
            self.timeout,
            AsyncSmtpConnection::connect_with_transport(Box::new(stream), &self.hello),
        )
        .await
        .map_err(|_| transient("greeting timed out".into()))?
        .map_err(|e| classify(&e))
    }

    async fn send(
        &self,
        envelope: &lettre::address::Envelope,
        raw: &[u8],
    ) -> Result<(), MailError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| MailError::Transient("mailer closed".into()))?;
        let idle = self.idle.lock().await.pop();
        let mut conn = match idle {
            Some(c) if !c.has_broken() => c,
            _ => self.connect().await?,
        };
        match tokio::time::timeout(self.timeout, conn.send(envelope, raw)).await {
            Ok(Ok(_)) => {
                self.idle.lock().await.push(conn);
                Ok(())
            }
            Ok(Err(e)) => {
                // A refused message leaves a usable connection; a broken one is dropped.
                if !conn.has_broken() && e.is_permanent() {
                    self.idle.lock().await.push(conn);
                }
                Err(classify(&e))
            }
            Err(_) => Err(MailError::Transient("smtp: sending timed out".into())),
        }
    }
}

fn classify(e: &lettre::transport::smtp::Error) -> MailError {
    if e.is_permanent() {
        MailError::Permanent(format!("smtp: {e}"))
    } else {
        MailError::Transient(format!("smtp: {e}"))
    }
}

/// `smtp://host:port` with nothing else: a plain relay.
fn plain_relay(url: &str) -> Option<String> {
    let rest = url.strip_prefix("smtp://")?;
    if rest.contains('@') || rest.contains('?') || rest.contains('/') && !rest.ends_with('/') {
        return None;
    }
    let hostport = rest.trim_end_matches('/');
    if hostport.is_empty() {
        return None;
    }
    Some(
        if hostport
            .rsplit_once(':')
            .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
        {
            hostport.to_string()
        } else {
            format!("{hostport}:25")
        },
    )
}

/// One message: a text and an HTML alternative under a stable Message-ID.
pub struct Email {
    pub to: String,
    pub subject: String,
    pub message_id: String,
    pub text: String,
    pub html: String,
}

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// The address or the message cannot be sent, or the server answered 5xx.
    #[error("{0}")]
    Permanent(String),
    /// A connection problem or a 4xx answer: try again later.
    #[error("{0}")]
    Transient(String),
}

impl Mailer {
    /// `pool_size`: as many pooled connections as messages in flight, so
    /// connections are reused, not reopened. `timeout` bounds each step
    /// (connecting, sending one message).
    pub fn new(
        smtp_url: &str,
        from: &str,
        pool_size: u32,
        timeout: Duration,
    ) -> anyhow::Result<Self> {
        let transport = match plain_relay(smtp_url) {
            _ if smtp_url.is_empty() => {
                anyhow::bail!("no SMTP relay: use Mailer::to_files")
            }
            Some(addr) => Transport::NoDelay(Arc::new(NoDelayPool {
                addr,
                hello: ClientId::default(),
                idle: tokio::sync::Mutex::new(Vec::new()),
                permits: tokio::sync::Semaphore::new(pool_size.max(1) as usize),
                timeout,
            })),
            None => Transport::Lettre(
                AsyncSmtpTransport::<Tokio1Executor>::from_url(smtp_url)?
                    .timeout(Some(timeout))
                    .pool_config(lettre::transport::smtp::PoolConfig::new().max_size(pool_size))
                    .build(),
            ),
        };
        Ok(Self {
            transport,
            from: from.parse()?,
            timeout,
        })
    }

    /// Without a relay (outside production): each message is written as an
    /// `.eml` file to `dir`, created if missing.
    /// `timeout` bounds nothing here (no server to wait for) but sets the
    /// notices' lease, as with a relay.
    pub fn to_files(dir: &std::path::Path, from: &str, timeout: Duration) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir)?;
        Ok(Self {
            transport: Transport::Files(lettre::AsyncFileTransport::<Tokio1Executor>::new(dir)),
            from: from.parse()?,
            timeout,
        })
    }

    /// How long a notice being sent stays claimed by its worker: connecting
    /// and sending, each bounded by the timeout, and rendering. A claim left
    /// by a killed worker ends this soon.
    pub fn send_lease(&self) -> Duration {
        Self::lease_for(self.timeout)
    }

    /// The send lease of a mailer whose SMTP steps time out after `timeout`.
    pub fn lease_for(timeout: Duration) -> Duration {
        2 * timeout + Duration::from_secs(5)
    }

    pub async fn send(&self, email: Email) -> Result<(), MailError> {
        let to: Mailbox = email
            .to
            .parse()
            .map_err(|e| MailError::Permanent(format!("invalid recipient address: {e}")))?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(email.subject)
            .message_id(Some(email.message_id))
            .multipart(
                MultiPart::alternative()
                    .singlepart(
                        SinglePart::builder()
                            .header(ContentType::TEXT_PLAIN)
                            .body(email.text),
                    )
                    .singlepart(
                        SinglePart::builder()
                            .header(ContentType::TEXT_HTML)
                            .body(email.html),
                    ),
            )
            .map_err(|e| MailError::Permanent(format!("cannot build email: {e}")))?;
        match &self.transport {
            Transport::Lettre(t) => t.send(message).await.map(|_| ()).map_err(|e| classify(&e)),
            Transport::NoDelay(pool) => pool.send(message.envelope(), &message.formatted()).await,
            Transport::Files(t) => t
                .send(message)
                .await
                .map(|_| ())
                .map_err(|e| MailError::Transient(format!("writing the .eml file: {e}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::plain_relay;

    #[test]
    fn only_plain_relays_take_the_no_delay_path() {
        assert_eq!(
            plain_relay("smtp://127.0.0.1:2525").as_deref(),
            Some("127.0.0.1:2525")
        );
        assert_eq!(
            plain_relay("smtp://mail.local").as_deref(),
            Some("mail.local:25")
        );
        assert_eq!(plain_relay("smtp://user:pw@mail.local:587"), None);
        assert_eq!(plain_relay("smtp://mail.local:587?tls=required"), None);
        assert_eq!(plain_relay("smtps://mail.local"), None);
    }
}
