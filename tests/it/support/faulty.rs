//! A scripted HTTP server on loopback for the faults a real service will not produce on
//! demand (503 bursts, 429 with `Retry-After`, dropped connections). It answers each
//! request with the next scripted response and records what it was asked.

use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// One scripted answer.
#[derive(Clone, Debug)]
pub enum Answer {
    /// A status, extra headers and a body.
    Status(u16, Vec<(&'static str, String)>, String),
    /// Close the connection without answering.
    Drop,
    /// A 200 JSON answer whose body is cut after its first half (the connection closes
    /// before `Content-Length` bytes came).
    Truncated(String),
}

/// A running scripted server.
pub struct Faulty {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// `METHOD PATH` of each request received.
    pub seen: Arc<Mutex<Vec<String>>>,
}

/// Starts a server that gives `answers` in order, then 500s.
pub async fn serve(answers: Vec<Answer>) -> Faulty {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let script = Arc::new(Mutex::new(answers.into_iter()));
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut buffer = vec![0u8; 65536];
            let mut read = 0;
            // Read the head and a Content-Length body.
            loop {
                let n = stream.read(&mut buffer[read..]).await.unwrap_or(0);
                if n == 0 {
                    break;
                }
                read += n;
                let text = String::from_utf8_lossy(&buffer[..read]).into_owned();
                if let Some(end) = text.find("\r\n\r\n") {
                    let length = text[..end]
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                        })
                        .unwrap_or(0);
                    if read >= end + 4 + length {
                        break;
                    }
                }
            }
            let head = String::from_utf8_lossy(&buffer[..read]).into_owned();
            let line = head.lines().next().unwrap_or_default().to_owned();
            let request: Vec<&str> = line.split(' ').take(2).collect();
            log.lock().unwrap().push(request.join(" "));
            let answer = script.lock().unwrap().next().unwrap_or(Answer::Status(
                500,
                vec![],
                "script exhausted".into(),
            ));
            match answer {
                Answer::Drop => drop(stream),
                Answer::Truncated(body) => {
                    let response = format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n{}",
                        body.len(),
                        &body[..body.len() / 2]
                    );
                    let _ = stream.write_all(response.as_bytes()).await;
                    let _ = stream.shutdown().await;
                }
                Answer::Status(status, headers, body) => {
                    let mut response = format!(
                        "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nContent-Type: application/json\r\nConnection: close\r\n",
                        body.len()
                    );
                    for (k, v) in headers {
                        response.push_str(&format!("{k}: {v}\r\n"));
                    }
                    response.push_str("\r\n");
                    response.push_str(&body);
                    let _ = stream.write_all(response.as_bytes()).await;
                    let _ = stream.shutdown().await;
                }
            }
        }
    });
    Faulty { url, seen }
}
