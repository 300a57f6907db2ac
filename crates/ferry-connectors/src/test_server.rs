//! Tiny local servers for unit tests: an HTTP server that answers every
//! request the same way, and a scripted SMTP server.

use std::net::SocketAddr;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// What the HTTP server answers.
#[derive(Clone)]
pub enum Answer {
    /// These exact bytes (status line, headers, body).
    Raw(Vec<u8>),
    /// 200 with a chunked body that never ends (until the client hangs up).
    EndlessChunked,
}

/// A JSON answer with `status`.
pub fn json(status: u16, body: &str) -> Answer {
    Answer::Raw(
        format!(
            "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
        .into_bytes(),
    )
}

/// Serves `answer` to every request on 127.0.0.1; returns the address.
pub async fn http(answer: Answer) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let answer = answer.clone();
            tokio::spawn(async move {
                let mut reader = BufReader::new(stream);
                // Read the head and any body, so closing does not reset.
                let mut length = 0usize;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap_or(0);
                    }
                    if line == "\r\n" {
                        break;
                    }
                }
                let mut body = vec![0; length];
                let _ = reader.read_exact(&mut body).await;
                let mut stream = reader.into_inner();
                match answer {
                    Answer::Raw(bytes) => {
                        let _ = stream.write_all(&bytes).await;
                    }
                    Answer::EndlessChunked => {
                        let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n";
                        if stream.write_all(head.as_bytes()).await.is_err() {
                            return;
                        }
                        let chunk = format!("10000\r\n{}\r\n", "x".repeat(0x10000));
                        while stream.write_all(chunk.as_bytes()).await.is_ok() {}
                    }
                }
                let _ = stream.shutdown().await;
            });
        }
    });
    addr
}

/// A plain SMTP server on 127.0.0.1 that greets, accepts EHLO, NOOP, RSET
/// and QUIT, and answers anything else with 502.
pub async fn smtp() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut reader = BufReader::new(stream);
                if reader
                    .get_mut()
                    .write_all(b"220 test ESMTP\r\n")
                    .await
                    .is_err()
                {
                    return;
                }
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
                    let reply: &[u8] = match verb.as_str() {
                        "EHLO" | "HELO" => b"250 test\r\n",
                        "NOOP" | "RSET" => b"250 OK\r\n",
                        "QUIT" => b"221 bye\r\n",
                        _ => b"502 unknown\r\n",
                    };
                    if reader.get_mut().write_all(reply).await.is_err() || verb == "QUIT" {
                        return;
                    }
                }
            });
        }
    });
    addr
}
