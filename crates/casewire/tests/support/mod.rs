//! Running the real `casewire` binary: its environment, `user add`, `serve` until it says where
//! it listens, a graceful stop, and logging in over HTTP. Shared by the CLI tests, the guide's
//! scenarios and the API benchmark.
#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub const PASSWORD: &str = "correct horse battery";

/// The binary, with its data directory; `brokers` sets `KAFKA_BROKERS` (none: no relay).
pub fn casewire(data: &Path, brokers: Option<&str>) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_casewire"));
    command
        .env("CASEWIRE_DATA_DIR", data)
        .env("CASEWIRE_KEY_FILE", casewire_testkit::test_key_file())
        .env("RETRY_INTERVAL", "200")
        .env("RUST_LOG", "info,librdkafka=off");
    match brokers {
        Some(brokers) => command.env("KAFKA_BROKERS", brokers),
        None => command.env_remove("KAFKA_BROKERS"),
    };
    command
}

/// `casewire user add` with [`PASSWORD`] on stdin.
pub fn add_user(data: &Path, username: &str, role: &str) -> Output {
    let mut child = casewire(data, None)
        .args(["user", "add", "--username", username, "--role", role])
        .arg("--password-stdin")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(format!("{PASSWORD}\n").as_bytes())
        .expect("password");
    child.wait_with_output().expect("run")
}

/// Starts `casewire serve` on a free port; returns the process and its base URL once it
/// listens. Its log keeps being read so it never blocks on a full pipe.
pub fn serve(command: &mut Command) -> (Child, String) {
    let (child, base, _) = serve_logged(command);
    (child, base)
}

/// [`serve`], also returning the log lines it wrote before it listened.
pub fn serve_logged(command: &mut Command) -> (Child, String, Vec<String>) {
    let mut child = command
        .arg("serve")
        .env("CASEWIRE_LISTEN", "127.0.0.1:0")
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn serve");
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut before = Vec::new();
    let base = loop {
        assert!(
            Instant::now() < deadline,
            "serve never said where it listens"
        );
        let line = lines.next().expect("a log line").expect("utf-8");
        if let Some((_, url)) = line.split_once("casewire listening on ") {
            break url.trim().to_owned();
        }
        before.push(line);
    };
    // Its warnings and errors go to the test's output, which the harness shows when the test
    // fails (the thread inherits the test's capture); `CASEWIRE_TEST_LOG=1` shows every line.
    let everything = std::env::var_os("CASEWIRE_TEST_LOG").is_some();
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            if everything || line.contains("WARN") || line.contains("ERROR") {
                eprintln!("serve: {line}");
            }
        }
    });
    (child, base, before)
}

/// SIGTERM, and the process must stop cleanly.
pub fn stop(mut child: Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    assert!(child.wait().expect("stops").success());
}

/// A bearer token for `user` (with [`PASSWORD`]).
pub async fn login(client: &reqwest::Client, base: &str, user: &str) -> String {
    let body: Value = client
        .post(format!("{base}/api/auth/login"))
        .json(&json!({"username": user, "password": PASSWORD}))
        .send()
        .await
        .expect("login")
        .json()
        .await
        .expect("json");
    body["token"].as_str().expect("token").to_owned()
}

/// The guide's queue statistics (`GET /api/queue/stats`), as JSON.
pub async fn queue_stats(client: &reqwest::Client, base: &str, token: &str) -> Value {
    client
        .get(format!("{base}/api/queue/stats"))
        .bearer_auth(token)
        .send()
        .await
        .expect("stats")
        .json()
        .await
        .expect("json")
}

/// How many events wait in the queue.
pub async fn queue_size(client: &reqwest::Client, base: &str, token: &str) -> u64 {
    queue_stats(client, base, token).await["queue"]["queueSize"]
        .as_u64()
        .expect("queueSize")
}

/// The events on the topic `fraud.events`, read from the beginning of every partition by a
/// consumer with `settings` (`bootstrap.servers` and any security), until `enough` holds of
/// what was read or `patience` runs out. Events of different keys sit in different partitions,
/// so they come in any order across keys.
pub fn topic_events(
    settings: &[(&str, &str)],
    enough: impl Fn(&[Value]) -> bool,
    patience: Duration,
) -> Vec<Value> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::message::Message;
    use rdkafka::{ClientConfig, Offset, TopicPartitionList};

    let mut config = ClientConfig::new();
    for (key, value) in settings {
        config.set(*key, *value);
    }
    let consumer: BaseConsumer = config
        .set("group.id", "casewire-tests")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let metadata = consumer
        .fetch_metadata(Some("fraud.events"), Duration::from_secs(15))
        .expect("metadata");
    let mut tpl = TopicPartitionList::new();
    for p in 0..metadata.topics()[0].partitions().len() as i32 {
        tpl.add_partition_offset("fraud.events", p, Offset::Beginning)
            .expect("offset");
    }
    consumer.assign(&tpl).expect("assign");
    let mut events = Vec::new();
    let deadline = Instant::now() + patience;
    let mut errors = 0;
    // `enough` looks at every event read, so asking it after each one is quadratic: the crash
    // soak's 25,000 events took longer than its five minutes of patience to "read". It is asked
    // when the consumer has nothing new for a moment, and every thousand events.
    let mut unasked = 0;
    while Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(message)) => {
                events
                    .push(serde_json::from_slice(message.payload().expect("value")).expect("json"));
                unasked += 1;
                if unasked < 1000 {
                    continue;
                }
            }
            Some(Err(error)) => {
                errors += 1;
                if errors <= 10 {
                    eprintln!("topic_events: the consumer reports {error}");
                }
            }
            None => {}
        }
        unasked = 0;
        if enough(&events) {
            break;
        }
    }
    if !enough(&events) {
        // What the broker says it holds, beside what was read, for the failing test's output.
        for p in 0..tpl.count() as i32 {
            let marks = consumer.fetch_watermarks("fraud.events", p, Duration::from_secs(5));
            eprintln!("topic_events: partition {p}: watermarks {marks:?}");
        }
        eprintln!(
            "topic_events: {} events read, {errors} errors",
            events.len()
        );
    }
    events
}
