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
