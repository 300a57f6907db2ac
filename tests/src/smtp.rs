//! A small SMTP server that accepts every message and keeps it, so tests
//! see exactly what Ferry sent over the wire.

use base64::Engine;
use std::sync::{Arc, Mutex, PoisonError};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// One message received.
#[derive(Debug, Clone)]
pub struct CapturedMail {
    /// MAIL FROM.
    pub from: String,
    /// RCPT TO (one per recipient).
    pub to: Vec<String>,
    /// The Subject header.
    pub subject: String,
    /// The body, transfer-decoded (of a multipart message: its plain-text
    /// part).
    pub body: String,
    /// The HTML part of a multipart message, transfer-decoded.
    pub html: Option<String>,
    /// The raw DATA.
    pub raw: String,
}

impl CapturedMail {
    /// The first URL in the body containing `needle`.
    pub fn link_containing(&self, needle: &str) -> Option<String> {
        self.body
            .split_whitespace()
            .find(|w| w.starts_with("http") && w.contains(needle))
            .map(str::to_owned)
    }
}

/// The running server.
#[derive(Clone)]
pub struct SmtpSink {
    port: u16,
    messages: Arc<Mutex<Vec<CapturedMail>>>,
}

impl SmtpSink {
    /// Listens on a free loopback port.
    pub async fn start() -> std::io::Result<Self> {
        Self::start_on(0).await
    }

    /// Listens on `port` of the loopback (0: a free one), e.g. a server
    /// that comes back after being down.
    pub async fn start_on(port: u16) -> std::io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", port)).await?;
        let port = listener.local_addr()?.port();
        let messages = Arc::new(Mutex::new(Vec::new()));
        let store = messages.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let store = store.clone();
                tokio::spawn(async move {
                    let _ = serve(socket, store).await;
                });
            }
        });
        Ok(Self { port, messages })
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Everything received so far.
    pub fn messages(&self) -> Vec<CapturedMail> {
        self.messages
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

async fn serve(
    socket: tokio::net::TcpStream,
    store: Arc<Mutex<Vec<CapturedMail>>>,
) -> std::io::Result<()> {
    let (read, mut write) = socket.into_split();
    let mut lines = BufReader::new(read);
    write.write_all(b"220 sink.test ESMTP ready\r\n").await?;
    let (mut from, mut to) = (String::new(), Vec::new());
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let upper = line.to_ascii_uppercase();
        if upper.starts_with("EHLO") {
            write
                .write_all(b"250-sink.test\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n")
                .await?;
        } else if upper.starts_with("HELO") {
            write.write_all(b"250 sink.test\r\n").await?;
        } else if upper.starts_with("MAIL FROM:") {
            from = address(&line);
            to.clear();
            write.write_all(b"250 OK\r\n").await?;
        } else if upper.starts_with("RCPT TO:") {
            to.push(address(&line));
            write.write_all(b"250 OK\r\n").await?;
        } else if upper.starts_with("DATA") {
            write.write_all(b"354 go ahead\r\n").await?;
            let mut raw = String::new();
            loop {
                line.clear();
                if lines.read_line(&mut line).await? == 0 {
                    return Ok(());
                }
                if line == ".\r\n" || line == ".\n" {
                    break;
                }
                raw.push_str(
                    line.strip_prefix('.')
                        .filter(|_| line.starts_with(".."))
                        .unwrap_or(&line),
                );
            }
            let (subject, body, html) = parse(&raw);
            store
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(CapturedMail {
                    from: from.clone(),
                    to: to.clone(),
                    subject,
                    body,
                    html,
                    raw,
                });
            write.write_all(b"250 OK queued\r\n").await?;
        } else if upper.starts_with("QUIT") {
            write.write_all(b"221 bye\r\n").await?;
            return Ok(());
        } else if upper.starts_with("RSET") || upper.starts_with("NOOP") {
            write.write_all(b"250 OK\r\n").await?;
        } else {
            write.write_all(b"502 not implemented\r\n").await?;
        }
    }
}

fn address(line: &str) -> String {
    let start = line.find('<').map_or(0, |i| i + 1);
    let end = line.rfind('>').unwrap_or(line.len());
    line.get(start..end).unwrap_or("").trim().to_owned()
}

/// Decodes RFC 2047 encoded words (`=?utf-8?b?…?=`, `=?utf-8?q?…?=`).
fn decode_words(value: &str) -> String {
    let mut out = String::new();
    let mut rest = value;
    while let Some(start) = rest.find("=?") {
        let (before, word) = rest.split_at(start);
        // Whitespace between two encoded words is not part of the text.
        if !before.trim().is_empty() || out.is_empty() {
            out.push_str(before);
        }
        let parts: Vec<&str> = word[2..].splitn(3, '?').collect();
        let Some(end) = parts.get(2).and_then(|p| p.find("?=")) else {
            out.push_str(word);
            return out;
        };
        let text = &parts[2][..end];
        let decoded = match parts[1].to_ascii_lowercase().as_str() {
            "b" => base64::engine::general_purpose::STANDARD
                .decode(text)
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default(),
            _ => quoted_printable::decode(
                text.replace('_', " ").as_bytes(),
                quoted_printable::ParseMode::Robust,
            )
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default(),
        };
        out.push_str(&decoded);
        rest = &parts[2][end + 2..];
    }
    out.push_str(rest);
    out
}

fn transfer_decode(encoding: &str, body: &str) -> String {
    match encoding.to_ascii_lowercase().as_str() {
        "quoted-printable" => {
            quoted_printable::decode(body.as_bytes(), quoted_printable::ParseMode::Robust)
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_else(|_| body.to_owned())
        }
        "base64" => base64::engine::general_purpose::STANDARD
            .decode(body.split_whitespace().collect::<String>())
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_else(|_| body.to_owned()),
        _ => body.to_owned(),
    }
}

/// A part's headers (unfolded) and its body.
fn split_part(raw: &str) -> (String, &str) {
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((raw, ""));
    (head.replace("\r\n ", " ").replace("\r\n\t", " "), body)
}

fn header(head: &str, name: &str) -> String {
    head.lines()
        .find(|l| l.to_ascii_lowercase().starts_with(&format!("{name}:")))
        .map(|l| l.split_once(':').map_or("", |(_, v)| v).trim().to_owned())
        .unwrap_or_default()
}

fn parse(raw: &str) -> (String, String, Option<String>) {
    let (head, body) = split_part(raw);
    let subject = decode_words(&header(&head, "subject"));
    let content_type = header(&head, "content-type");
    if content_type.to_ascii_lowercase().starts_with("multipart/") {
        let boundary = content_type
            .split(';')
            .find_map(|p| p.trim().strip_prefix("boundary="))
            .unwrap_or("")
            .trim_matches('"')
            .to_owned();
        let (mut text, mut html) = (String::new(), None);
        for part in body.split(&format!("--{boundary}")) {
            let part = part.trim_start_matches("\r\n");
            let (h, b) = split_part(part);
            let kind = header(&h, "content-type").to_ascii_lowercase();
            let decoded =
                transfer_decode(&header(&h, "content-transfer-encoding"), b).replace("\r\n", "\n");
            if kind.starts_with("text/plain") {
                text = decoded;
            } else if kind.starts_with("text/html") {
                html = Some(decoded);
            }
        }
        return (subject, text, html);
    }
    let body = transfer_decode(&header(&head, "content-transfer-encoding"), body);
    (subject, body.replace("\r\n", "\n"), None)
}
