//! `cargo bench -p casewire --bench api`: `POST /api/cases` against a real `casewire serve`
//! (release build, durable SQLite, the relay running) from 32 concurrent clients, with the
//! Kafka broker (tansu) down and up. Rounds alternate down, up, down, up so drift on a shared
//! machine falls on both. Prints a table, then one JSON line.
//!
//! Settings (environment): `API_BENCH_ROUND_SECONDS` (default 4), `API_BENCH_ROUNDS` (per
//! condition, default 2), `API_BENCH_CLIENTS` (default 32), `API_BENCH_OUTAGE`: `killed` (the
//! default: the broker is stopped, connections are refused) or `blackholed` (the broker runs in
//! a network namespace of its own and every packet to it is dropped: a partition the relay only
//! learns of by waiting; needs root).
#![allow(clippy::print_stdout)] // A benchmark reports on stdout.

use std::time::{Duration, Instant};

use casewire_testkit::Tansu;
use casewire_testkit::netns::Link;
use serde_json::{Value, json};

#[path = "../tests/support/mod.rs"]
mod support;

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Latencies of one condition, over all its rounds.
#[derive(Default)]
struct Sample {
    latencies: Vec<Duration>,
    elapsed: Duration,
}

impl Sample {
    fn quantile_ms(&mut self, q: f64) -> f64 {
        self.latencies.sort_unstable();
        let i = ((self.latencies.len() as f64 * q).ceil() as usize).saturating_sub(1);
        self.latencies[i.min(self.latencies.len() - 1)].as_secs_f64() * 1e3
    }

    fn rps(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64()
    }
}

/// `clients` loops creating cases for `seconds`; the first half second is warm-up, not
/// counted.
async fn round(
    client: &reqwest::Client,
    base: &str,
    tokens: &[String],
    seconds: u64,
    sample: &mut Sample,
) {
    let warm = Instant::now() + Duration::from_millis(500);
    let end = warm + Duration::from_secs(seconds);
    let tasks: Vec<_> = tokens
        .iter()
        .enumerate()
        .map(|(n, token)| {
            let (client, url, token) = (client.clone(), format!("{base}/api/cases"), token.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut i = 0u64;
                loop {
                    let start = Instant::now();
                    if start >= end {
                        break latencies;
                    }
                    let response = client
                        .post(&url)
                        .bearer_auth(&token)
                        .json(&json!({"title": format!("Bench case {n}-{i}")}))
                        .send()
                        .await
                        .expect("request");
                    let status = response.status();
                    let body: Value = response.json().await.expect("json");
                    assert_eq!(status, reqwest::StatusCode::CREATED, "{body}");
                    if start >= warm {
                        latencies.push(start.elapsed());
                    }
                    i += 1;
                }
            })
        })
        .collect();
    for task in tasks {
        sample.latencies.extend(task.await.expect("client"));
    }
    sample.elapsed += Duration::from_secs(seconds);
}

fn main() {
    let seconds = setting("API_BENCH_ROUND_SECONDS", 4);
    let rounds = setting("API_BENCH_ROUNDS", 2);
    let clients = setting("API_BENCH_CLIENTS", 32) as usize;
    let blackholed = match std::env::var("API_BENCH_OUTAGE").as_deref() {
        Ok("blackholed") => true,
        Ok("killed") | Err(_) => false,
        Ok(other) => panic!("API_BENCH_OUTAGE is killed or blackholed, not {other:?}"),
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let link = blackholed.then(Link::new);
    let mut tansu = match &link {
        Some(link) => {
            let mut tansu = Tansu::behind(link);
            tansu.start();
            tansu
        }
        None => Tansu::stopped(),
    };
    assert!(
        support::add_user(dir.path(), "bench", "admin")
            .status
            .success()
    );
    let (server, base) = support::serve(
        support::casewire(dir.path(), Some(&tansu.brokers()))
            .env("RUST_LOG", "info,librdkafka=off,casewire_relay=warn"),
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(clients)
        .build()
        .expect("client");
    let tokens: Vec<String> = rt.block_on(async {
        let mut tokens = Vec::new();
        for _ in 0..clients {
            tokens.push(support::login(&client, &base, "bench").await);
        }
        tokens
    });
    let (mut down, mut up) = (Sample::default(), Sample::default());
    for _ in 0..rounds {
        match &link {
            Some(link) => link.cut(),
            None => tansu.kill(),
        }
        rt.block_on(round(&client, &base, &tokens, seconds, &mut down));
        match &link {
            Some(link) => link.restore(),
            None => {
                tansu.start();
            }
        }
        // The backlog of the outage goes out first: measure the healthy path, not the drain.
        let deadline = Instant::now() + Duration::from_secs(120);
        while rt.block_on(support::queue_size(&client, &base, &tokens[0])) > 0 {
            assert!(Instant::now() < deadline, "the backlog never drained");
            std::thread::sleep(Duration::from_millis(100));
        }
        rt.block_on(round(&client, &base, &tokens, seconds, &mut up));
    }
    let queued_up = rt.block_on(support::queue_size(&client, &base, &tokens[0]));
    support::stop(server);

    let (p50_down, p99_down) = (down.quantile_ms(0.50), down.quantile_ms(0.99));
    let (p50_up, p99_up) = (up.quantile_ms(0.50), up.quantile_ms(0.99));
    let outage = if blackholed { "blackholed" } else { "killed" };
    println!(
        "POST /api/cases, {clients} clients, {rounds} × {seconds} s per condition, broker {outage} when down (queue after the last up round: {queued_up})"
    );
    println!("broker | requests |    req/s |  p50 ms |  p99 ms");
    for (name, sample, p50, p99) in [
        ("down", &down, p50_down, p99_down),
        ("up", &up, p50_up, p99_up),
    ] {
        println!(
            "{name:>6} | {:>8} | {:>8.0} | {p50:>7.2} | {p99:>7.2}",
            sample.latencies.len(),
            sample.rps()
        );
    }
    println!(
        "{}",
        json!({
            "clients": clients,
            "outage": outage,
            "api_p50_ms_up": p50_up,
            "api_p99_ms_up": p99_up,
            "api_p50_ms_down": p50_down,
            "api_p99_ms_down": p99_down,
            "api_rps_up": up.rps(),
            "api_rps_down": down.rps(),
            "p99_down_over_up": p99_down / p99_up,
        })
    );
}
