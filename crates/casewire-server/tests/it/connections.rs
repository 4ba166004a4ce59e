//! What a slow or silent client may hold: a connection that sends nothing, headers sent a byte
//! at a time, a body that stalls, and more connections than the cap. Short limits, so nothing
//! here waits long; every wait is bounded.

use std::time::{Duration, Instant};

use casewire_server::ServeLimits;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{Server, server_with_limits};

const TIMEOUT: Duration = Duration::from_millis(400);

fn limits() -> ServeLimits {
    ServeLimits {
        timeout: TIMEOUT,
        max_connections: 4,
        ..ServeLimits::default()
    }
}

async fn connect(s: &Server) -> TcpStream {
    TcpStream::connect(s.base.trim_start_matches("http://"))
        .await
        .expect("connect")
}

/// Reads until the server closes the connection; returns what it sent and when it closed.
async fn until_closed(stream: &mut TcpStream, started: Instant) -> (String, Duration) {
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer)).await;
    assert!(
        read.is_ok(),
        "the server still holds the connection after 10 s"
    );
    (
        String::from_utf8_lossy(&answer).into_owned(),
        started.elapsed(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_sends_nothing_is_closed_after_the_timeout() {
    let s = server_with_limits(limits()).await;
    let started = Instant::now();
    let mut silent = connect(&s).await;
    let (_, closed_after) = until_closed(&mut silent, started).await;
    assert!(
        closed_after >= TIMEOUT,
        "closed before the timeout: {closed_after:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_sent_a_byte_at_a_time_are_cut_off_at_the_timeout() {
    let s = server_with_limits(limits()).await;
    let started = Instant::now();
    let mut slow = connect(&s).await;
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .await
        .expect("write");
    // A header byte every 50 ms, for up to 10 s: a slowloris never finishing its headers.
    let mut closed = false;
    for _ in 0..200 {
        if slow.write_all(b"X").await.is_err() {
            closed = true;
            break;
        }
        let mut probe = [0u8; 1];
        if let Ok(Ok(0)) =
            tokio::time::timeout(Duration::from_millis(50), slow.read(&mut probe)).await
        {
            closed = true;
            break;
        }
    }
    let elapsed = started.elapsed();
    assert!(closed, "still open after {elapsed:?}");
    assert!(
        elapsed >= TIMEOUT && elapsed < TIMEOUT * 5,
        "closed after {elapsed:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_stalls_ends_the_request() {
    let s = server_with_limits(limits()).await;
    let started = Instant::now();
    let mut slow = connect(&s).await;
    slow.write_all(
        b"POST /api/auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n{\"username\":",
    )
    .await
    .expect("write");
    let (answer, elapsed) = until_closed(&mut slow, started).await;
    assert!(
        elapsed >= TIMEOUT,
        "answered before the body stalled long enough: {elapsed:?}"
    );
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 4"),
        "a stalled body is refused, not served: {answer}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_cap_a_connection_waits_for_a_slot_and_is_then_served() {
    let s = server_with_limits(limits()).await;
    let started = Instant::now();
    // Four silent connections take every slot.
    let mut silent = Vec::new();
    for _ in 0..4 {
        silent.push(connect(&s).await);
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    let answer = tokio::time::timeout(
        Duration::from_secs(10),
        s.client.get(s.url("/healthz")).send(),
    )
    .await
    .expect("served within 10 s")
    .expect("answered");
    assert_eq!(answer.status(), reqwest::StatusCode::OK);
    assert!(
        started.elapsed() >= TIMEOUT,
        "served at once although every slot was taken ({:?})",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_past_its_time_is_answered_408_in_the_error_envelope() {
    let s = server_with_limits(ServeLimits {
        timeout: Duration::from_secs(10),
        request: Duration::from_millis(500),
        ..ServeLimits::default()
    })
    .await;
    let mut slow = connect(&s).await;
    slow.write_all(
        b"POST /api/auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n",
    )
    .await
    .expect("write");
    // A byte every 100 ms: never idle long enough for the body timeout, too slow for the
    // request's.
    let started = Instant::now();
    let mut answer = Vec::new();
    for _ in 0..100 {
        let _ = slow.write_all(b" ").await;
        let mut chunk = [0u8; 4096];
        if let Ok(Ok(n)) =
            tokio::time::timeout(Duration::from_millis(100), slow.read(&mut chunk)).await
        {
            answer.extend_from_slice(&chunk[..n]);
            if n == 0 || answer.windows(4).any(|w| w == b"\r\n\r\n") {
                break;
            }
        }
    }
    let (rest, _) = until_closed(&mut slow, started).await;
    let answer = String::from_utf8_lossy(&answer).into_owned() + &rest;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        answer.contains(r#""code":"request_timeout""#),
        "408 in the envelope: {answer}"
    );
}

/// An upload form of `size` zero bytes, as raw HTTP, with the length declared or chunked.
fn oversized_upload(token: &str, size: usize, declared: bool, expect: bool) -> (Vec<u8>, Vec<u8>) {
    let mut body = b"--X\r\nContent-Disposition: form-data; name=\"caseId\"\r\n\r\nCASE-2024-001\r\n--X\r\nContent-Disposition: form-data; name=\"evidenceFile\"; filename=\"big.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n".to_vec();
    body.resize(body.len() + size, 0);
    body.extend_from_slice(b"\r\n--X--\r\n");
    let framing = if declared {
        format!("Content-Length: {}\r\n", body.len())
    } else {
        "Transfer-Encoding: chunked\r\n".to_owned()
    };
    let head = format!(
        "POST /api/evidence/upload HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: multipart/form-data; boundary=X\r\n{framing}{}\r\n",
        if expect {
            "Expect: 100-continue\r\n"
        } else {
            ""
        }
    );
    if declared {
        return (head.into_bytes(), body);
    }
    let mut chunked = Vec::new();
    for chunk in body.chunks(64 * 1024) {
        chunked.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        chunked.extend_from_slice(chunk);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    (head.into_bytes(), chunked)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_far_past_the_limit_is_answered_413_not_reset_while_it_is_sent() {
    let s = server_with_limits(ServeLimits::default()).await;
    let token = s.token("investigator").await;
    // 16 MiB against the test server's 64 KiB: 256 times the limit, with its length declared
    // and chunked. The whole body is sent, as browsers and simple clients do, and the answer
    // read after it.
    for declared in [true, false] {
        let (head, body) = oversized_upload(&token, 16 * 1024 * 1024, declared, false);
        let mut upload = connect(&s).await;
        upload.write_all(&head).await.expect("headers");
        let sent = tokio::time::timeout(Duration::from_secs(30), upload.write_all(&body))
            .await
            .expect("sent within 30 s");
        assert!(
            sent.is_ok(),
            "declared {declared}: the connection was cut while the body was sent: {sent:?}"
        );
        let (answer, _) = until_closed(&mut upload, Instant::now()).await;
        assert!(
            answer.starts_with("HTTP/1.1 413"),
            "declared {declared}: {answer}"
        );
        assert!(answer.contains(r#""code":"too_large""#), "{answer}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_declared_past_the_limit_is_refused_before_its_body_is_asked_for() {
    let s = server_with_limits(ServeLimits::default()).await;
    let token = s.token("investigator").await;
    let (head, _) = oversized_upload(&token, 16 * 1024 * 1024, true, true);
    let mut upload = connect(&s).await;
    upload.write_all(&head).await.expect("headers");
    // No body is sent: a client that waits for 100 Continue gets the refusal instead.
    let (answer, _) = until_closed(&mut upload, Instant::now()).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(!answer.contains("100 Continue"), "{answer}");
}
