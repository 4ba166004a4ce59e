//! Fixtures shared by Casewire's tests and benchmarks (never by the product): guide-shaped
//! events, backlogs written in few transactions, a tansu Kafka broker process and an anvil EVM
//! node.
#![deny(missing_docs)]
#![allow(clippy::unwrap_used)]

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub mod anvil;
pub mod netns;
pub mod secure_kafka;

use casewire_events::{Event, EventType, Metadata};
use casewire_outbox::{Error, Outbox};
use serde_json::json;

/// The guide's `evidence.uploaded` example, numbered `n`, spread over 1,000 cases, with a valid
/// wallet and full metadata: about 560 bytes of JSON.
pub fn guide_event(n: usize) -> Event {
    let data = json!({
        "evidenceId": format!("66d4a2b8c9e1234567{n:06}"),
        "caseId": format!("CASE-2024-{:03}", n % 1_000),
        "wallet": "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
        "reporter": "investigator@fraud.com",
        "filename": "transaction.png",
        "fileSize": 245_760,
        "storageHash": "a665a45920422f9d417e4867efdc4fb8a04a1f3fff1fa07e998e86f7f7a27ae3",
        "riskLevel": "high"
    });
    Event::new(
        EventType::EvidenceUploaded,
        data.as_object().cloned().unwrap(),
        Metadata {
            source: Some("fraud-evidence-backend".into()),
            version: Some("1.0.0".into()),
            environment: Some("production".into()),
            user_id: Some("investigator@fraud.com".into()),
            ip_address: Some("192.168.1.100".into()),
            ..Metadata::default()
        },
        chrono::Utc::now(),
        &mut rand::rng(),
    )
}

/// A copy of `template` with a new id and time, as a caller creates them: the benchmarks that
/// time enqueues measure the outbox, not the building of JSON maps (validation and
/// serialisation still happen in `enqueue`).
pub fn fresh_copy(template: &Event) -> Event {
    let mut event = template.clone();
    let now = chrono::Utc::now();
    event.timestamp = now;
    event.event_id = casewire_events::EventId::generate(now.timestamp_millis(), &mut rand::rng());
    event
}

/// A small `case.updated` event of `case`, numbered `n`, from `source`.
pub fn case_event(case: &str, n: usize, source: &str) -> Event {
    Event::new(
        EventType::CaseUpdated,
        json!({"caseId": case, "n": n})
            .as_object()
            .cloned()
            .unwrap(),
        Metadata {
            source: Some(source.into()),
            ..Metadata::default()
        },
        chrono::Utc::now(),
        &mut rand::rng(),
    )
}

/// The key file of this test process's encrypted data directories: one per process, outside
/// every data directory, so tests never touch the account's own key file.
pub fn test_key_file() -> PathBuf {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("casewire-test-keys-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        dir
    })
    .join("data.key")
}

/// The settings of a test's environment: `pairs`, and the process's key file.
pub fn test_env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
    let mut env: std::collections::HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    env.entry("CASEWIRE_KEY_FILE".into())
        .or_insert_with(|| test_key_file().display().to_string());
    move |key| env.get(key).cloned()
}

/// Shows logs in a failing test's output (info, librdkafka's warnings; `RUST_LOG` tunes them).
/// Safe to call from every test: only the first call installs the subscriber.
pub fn test_logging() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,librdkafka=warn".into()),
        )
        .with_test_writer()
        .try_init();
}

/// Queues `events` durably, 5,000 per transaction.
pub fn fill(outbox: &Outbox, events: &[Event]) {
    for chunk in events.chunks(5_000) {
        let chunk = chunk.to_vec();
        outbox
            .write(move |tx| {
                chunk.iter().try_for_each(|e| tx.enqueue(e))?;
                Ok::<_, Error>(())
            })
            .wait()
            .unwrap();
    }
}

/// Queues `n` guide-shaped events ([`guide_event`]), built 10,000 at a time so a million never
/// sit in memory.
pub fn fill_guide(outbox: &Outbox, n: usize) {
    for start in (0..n).step_by(10_000) {
        let events: Vec<Event> = (start..n.min(start + 10_000)).map(guide_event).collect();
        fill(outbox, &events);
    }
}

/// A test tool `scripts/bootstrap` caches at `~/.cache/casewire/<relative>`, or what the
/// environment variable `overridden_by` names.
pub fn cached_tool(overridden_by: &str, relative: &str) -> PathBuf {
    if let Some(path) = std::env::var_os(overridden_by) {
        return PathBuf::from(path);
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    let path = home.join(".cache/casewire").join(relative);
    assert!(
        path.exists(),
        "{relative} not found at {}: run scripts/bootstrap",
        path.display()
    );
    path
}

/// Where `scripts/bootstrap` puts the tansu broker; `TANSU_BIN` overrides.
pub fn tansu_bin() -> PathBuf {
    cached_tool("TANSU_BIN", "bin/tansu")
}

/// A free loopback port.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A tansu broker process on a fixed port, with in-memory storage: killed, it forgets
/// everything. On loopback, or inside a [`netns::Link`]'s namespace.
pub struct Tansu {
    /// The port it listens on (chosen before it first starts).
    pub port: u16,
    /// The address it listens on.
    host: std::net::Ipv4Addr,
    /// The namespace it runs in, if not the test's.
    ns: Option<String>,
    child: Option<Child>,
}

impl Tansu {
    /// A broker that is not running yet: its port is chosen, nothing listens on it.
    pub fn stopped() -> Tansu {
        Tansu {
            port: free_port(),
            host: std::net::Ipv4Addr::LOCALHOST,
            ns: None,
            child: None,
        }
    }

    /// A broker not running yet, at the far end of `link`, inside its namespace.
    pub fn behind(link: &netns::Link) -> Tansu {
        Tansu {
            port: 9092,
            host: link.far_ip,
            ns: Some(link.ns.clone()),
            child: None,
        }
    }

    /// A running broker.
    pub fn started() -> Tansu {
        let mut t = Tansu::stopped();
        t.start();
        t
    }

    /// `<host>:<port>`: `127.0.0.1:<port>` on loopback.
    pub fn brokers(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// Starts the broker; returns once it accepts connections, with that moment.
    pub fn start(&mut self) -> Instant {
        assert!(self.child.is_none(), "tansu already running");
        let url = format!("tcp://{}:{}", self.host, self.port);
        let mut command = match &self.ns {
            Some(ns) => netns::in_namespace(ns, &tansu_bin()),
            None => Command::new(tansu_bin()),
        };
        let child = command
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
            ])
            .args(["--storage-engine", "memory://tansu/"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn tansu");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if TcpStream::connect((self.host, self.port)).is_ok() {
                return Instant::now();
            }
            assert!(Instant::now() < deadline, "tansu did not start listening");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// SIGKILLs the broker.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Every event queued in the outbox file `db`, in order, read by a connection of its own (so
/// reading claims nothing and can be repeated while the outbox is open). Rows of delivered
/// events awaiting deletion are not queued.
pub fn queued_events(db: &Path) -> Vec<Event> {
    queued_events_in(&rusqlite::Connection::open(db).expect("open the outbox file"))
}

/// [`queued_events`], read on `db` (an encrypted outbox's own reader, for one).
pub fn queued_events_in(db: &rusqlite::Connection) -> Vec<Event> {
    let delivered = casewire_outbox::Delivered::load(db).expect("delivered marks");
    let mut stmt = db
        .prepare("SELECT seq, payload FROM outbox_events ORDER BY seq")
        .expect("query");
    stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?)))
        .expect("rows")
        .map(|row| row.expect("row"))
        .filter(|(seq, _)| !delivered.contains(*seq))
        .map(|(_, payload)| Event::from_json(&payload).expect("parses"))
        .collect()
}
