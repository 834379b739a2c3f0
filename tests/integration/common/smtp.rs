//! A real SMTP server on loopback for tests: it speaks enough SMTP for lettre,
//! stores every accepted message, and can be told to answer 4xx or 5xx to
//! the next messages so that retries and failures are exercised for real.

use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

#[derive(Debug, Clone)]
pub struct Mail {
    pub to: Vec<String>,
    pub data: String,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Mode {
    Accept,
    /// Answer `451` to DATA for the next n messages, then accept.
    Transient(u32),
    /// Answer `550` to RCPT TO for every message.
    Permanent,
    /// Take each message's data, then answer nothing until the client goes
    /// away: a sender caught mid-send (to be killed there). Nothing is
    /// recorded as accepted; [`SmtpSink::held`] counts them.
    Hold,
}

#[derive(Clone)]
pub struct SmtpSink {
    pub port: u16,
    mails: Arc<Mutex<Vec<Mail>>>,
    mode: Arc<Mutex<Mode>>,
    rejected: Arc<Mutex<u32>>,
    held: Arc<Mutex<u32>>,
}

impl SmtpSink {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind smtp sink");
        let port = listener.local_addr().unwrap().port();
        let sink = SmtpSink {
            port,
            mails: Arc::default(),
            mode: Arc::new(Mutex::new(Mode::Accept)),
            rejected: Arc::default(),
            held: Arc::default(),
        };
        let s = sink.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let s = s.clone();
                tokio::spawn(async move {
                    let _ = s.session(stream).await;
                });
            }
        });
        sink
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    pub fn set_mode(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }

    pub fn mails(&self) -> Vec<Mail> {
        self.mails.lock().unwrap().clone()
    }

    /// How many messages were accepted so far (cheaper than `mails().len()`).
    pub fn count(&self) -> usize {
        self.mails.lock().unwrap().len()
    }

    pub fn rejected(&self) -> u32 {
        *self.rejected.lock().unwrap()
    }

    /// How many messages were held unanswered ([`Mode::Hold`]).
    pub fn held(&self) -> u32 {
        *self.held.lock().unwrap()
    }

    async fn session(&self, stream: tokio::net::TcpStream) -> std::io::Result<()> {
        let (r, mut w) = stream.into_split();
        let mut lines = BufReader::new(r);
        w.write_all(b"220 sink ESMTP ready\r\n").await?;
        let mut to = Vec::new();
        let mut line = String::new();
        loop {
            line.clear();
            if lines.read_line(&mut line).await? == 0 {
                return Ok(());
            }
            let cmd = line.trim_end().to_string();
            let upper = cmd.to_uppercase();
            if upper.starts_with("EHLO") || upper.starts_with("HELO") {
                w.write_all(b"250-sink\r\n250-PIPELINING\r\n250 8BITMIME\r\n")
                    .await?;
            } else if upper.starts_with("MAIL FROM:") {
                to.clear();
                w.write_all(b"250 ok\r\n").await?;
            } else if upper.starts_with("RCPT TO:") {
                if *self.mode.lock().unwrap() == Mode::Permanent {
                    *self.rejected.lock().unwrap() += 1;
                    w.write_all(b"550 5.1.1 mailbox unavailable\r\n").await?;
                } else {
                    to.push(
                        cmd[8..]
                            .trim()
                            .trim_matches(|c| c == '<' || c == '>')
                            .to_string(),
                    );
                    w.write_all(b"250 ok\r\n").await?;
                }
            } else if upper == "DATA" {
                w.write_all(b"354 go ahead\r\n").await?;
                let mut data = String::new();
                loop {
                    line.clear();
                    if lines.read_line(&mut line).await? == 0 {
                        return Ok(());
                    }
                    if line == ".\r\n" || line == ".\n" {
                        break;
                    }
                    data.push_str(
                        line.strip_prefix('.')
                            .filter(|_| line.starts_with(".."))
                            .unwrap_or(&line),
                    );
                }
                if *self.mode.lock().unwrap() == Mode::Hold {
                    *self.held.lock().unwrap() += 1;
                    // No answer, ever: wait for the sender to go away.
                    while lines.read_line(&mut line).await? != 0 {
                        line.clear();
                    }
                    return Ok(());
                }
                let transient = {
                    let mut mode = self.mode.lock().unwrap();
                    match *mode {
                        Mode::Transient(n) if n > 0 => {
                            *mode = if n == 1 {
                                Mode::Accept
                            } else {
                                Mode::Transient(n - 1)
                            };
                            true
                        }
                        _ => false,
                    }
                };
                if transient {
                    *self.rejected.lock().unwrap() += 1;
                    w.write_all(b"451 4.3.0 try again later\r\n").await?;
                } else {
                    self.mails.lock().unwrap().push(Mail {
                        to: to.clone(),
                        data,
                    });
                    w.write_all(b"250 2.0.0 queued\r\n").await?;
                }
            } else if upper == "RSET" || upper == "NOOP" {
                w.write_all(b"250 ok\r\n").await?;
            } else if upper == "QUIT" {
                w.write_all(b"221 bye\r\n").await?;
                return Ok(());
            } else {
                w.write_all(b"502 command not implemented\r\n").await?;
            }
        }
    }
}
