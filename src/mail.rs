//! The SMTP transport (lettre), pooled and built once per process. It sends
//! one rendered message and says whether a failure is worth retrying; what to
//! send, to whom and how often is `notify`'s business (R32–R34).

use lettre::message::{header::ContentType, Mailbox, MultiPart, SinglePart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
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
    /// connections are reused, not reopened.
    pub fn new(smtp_url: &str, from: &str, pool_size: u32) -> anyhow::Result<Self> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(smtp_url)?
            .timeout(Some(std::time::Duration::from_secs(15)))
            .pool_config(lettre::transport::smtp::PoolConfig::new().max_size(pool_size))
            .build();
        Ok(Self {
            transport,
            from: from.parse()?,
        })
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
        match self.transport.send(message).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_permanent() => Err(MailError::Permanent(format!("smtp: {e}"))),
            Err(e) => Err(MailError::Transient(format!("smtp: {e}"))),
        }
    }
}
