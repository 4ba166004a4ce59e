//! A Kafka broker that demands SASL/SCRAM over TLS on loopback (`../shared/KAFKA-AUTH.md`):
//! tansu built with SQL storage (`scripts/bootstrap` caches it), which keeps SCRAM credentials,
//! behind stunnel, which terminates TLS with a certificate from a CA made for the test.
//!
//! ```text
//! client ──TLS──► stunnel 127.0.0.1:tls_port ──TCP──► tansu 127.0.0.1:plain_port (--authentication)
//! ```
//!
//! The users are made, and the topic created, by a short-lived broker without authentication on
//! the same storage (tansu's CLI speaks neither SASL nor TLS); then the real one starts.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::free_port;

/// The user with a SCRAM-SHA-512 credential.
pub const USER_512: &str = "casewire";
/// The user with a SCRAM-SHA-256 credential.
pub const USER_256: &str = "casewire256";
/// Both users' password.
pub const PASSWORD: &str = "s3cret-Scram-pass";

/// Where `scripts/bootstrap` builds tansu with SQL storage; `TANSU_SQL_BIN` overrides.
pub fn tansu_sql_bin() -> PathBuf {
    crate::cached_tool("TANSU_SQL_BIN", "tansu-sql/bin/tansu")
}

/// The running broker and its TLS front.
pub struct SecureKafka {
    dir: tempfile::TempDir,
    /// tansu's own port: plaintext TCP, still demanding SASL.
    pub plain_port: u16,
    /// stunnel's: TLS, then tansu.
    pub tls_port: u16,
    tansu: Option<Child>,
    stunnel: Option<Child>,
}

fn run(command: &mut Command, what: &str) {
    let output = command.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        output.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Waits, at most 30 s, for something to listen on loopback `port`.
pub(crate) fn wait_listening(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "{what} did not start listening");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A CA and a certificate for `localhost` and 127.0.0.1 signed by it, in `dir`, named
/// `<name>-ca.pem`, `<name>-server.pem` and `<name>-server.key`.
fn certificates(dir: &Path, name: &str) {
    let file = |f: &str| dir.join(format!("{name}-{f}")).display().to_string();
    let openssl = || {
        let mut command = Command::new("openssl");
        command.current_dir(dir);
        command
    };
    run(
        openssl().args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            &format!("/CN=Casewire test CA {name}"),
            "-keyout",
            &file("ca.key"),
            "-out",
            &file("ca.pem"),
        ]),
        "openssl CA",
    );
    run(
        openssl().args([
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=localhost",
            "-keyout",
            &file("server.key"),
            "-out",
            &file("server.csr"),
        ]),
        "openssl CSR",
    );
    std::fs::write(
        dir.join(format!("{name}-san.ext")),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\n",
    )
    .unwrap();
    run(
        openssl().args([
            "x509",
            "-req",
            "-in",
            &file("server.csr"),
            "-CA",
            &file("ca.pem"),
            "-CAkey",
            &file("ca.key"),
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            &file("san.ext"),
            "-out",
            &file("server.pem"),
        ]),
        "openssl sign",
    );
}

impl SecureKafka {
    /// A broker with the users [`USER_512`] and [`USER_256`] and the topic `fraud.events`,
    /// listening with TLS on `tls_port`.
    pub fn start() -> SecureKafka {
        let dir = tempfile::tempdir().unwrap();
        certificates(dir.path(), "good");
        certificates(dir.path(), "other");
        let mut kafka = SecureKafka {
            plain_port: free_port(),
            tls_port: free_port(),
            tansu: None,
            stunnel: None,
            dir,
        };
        // Users and the topic, through a broker without authentication on the same storage.
        let mut setup = kafka.spawn_tansu(false);
        wait_listening(kafka.plain_port, "tansu (set-up)");
        let broker = format!("tcp://127.0.0.1:{}", kafka.plain_port);
        for (user, mechanism) in [(USER_512, "scram512"), (USER_256, "scram256")] {
            run(
                Command::new(tansu_sql_bin()).args([
                    "user",
                    "create",
                    "--broker",
                    &broker,
                    "--mechanism",
                    mechanism,
                    user,
                    PASSWORD,
                ]),
                "tansu user create",
            );
        }
        run(
            Command::new(tansu_sql_bin()).args([
                "topic",
                "create",
                "--broker",
                &broker,
                "--partitions",
                "3",
                "fraud.events",
            ]),
            "tansu topic create",
        );
        let _ = Command::new("kill")
            .args(["-TERM", &setup.id().to_string()])
            .status();
        let _ = setup.wait();
        kafka.tansu = Some(kafka.spawn_tansu(true));
        wait_listening(kafka.plain_port, "tansu");
        let config = kafka.dir.path().join("stunnel.conf");
        std::fs::write(
            &config,
            format!(
                "foreground = yes\npid =\n[kafka]\naccept = 127.0.0.1:{}\nconnect = 127.0.0.1:{}\ncert = {}\nkey = {}\n",
                kafka.tls_port,
                kafka.plain_port,
                kafka.file("good-server.pem").display(),
                kafka.file("good-server.key").display(),
            ),
        )
        .unwrap();
        kafka.stunnel = Some(
            Command::new("stunnel4")
                .arg(&config)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .or_else(|_| {
                    Command::new("stunnel")
                        .arg(&config)
                        .stdout(Stdio::null())
                        .stderr(Stdio::null())
                        .spawn()
                })
                .expect("spawn stunnel (Debian's stunnel4)"),
        );
        wait_listening(kafka.tls_port, "stunnel");
        kafka
    }

    fn spawn_tansu(&self, authentication: bool) -> Child {
        let listener = format!("tcp://127.0.0.1:{}", self.plain_port);
        // Clients reconnect to what the broker advertises: the TLS front.
        let advertised = format!("tcp://localhost:{}", self.tls_port);
        let mut command = Command::new(tansu_sql_bin());
        command
            .current_dir(self.dir.path())
            .args(["broker", "--listener-url", &listener])
            .args(["--advertised-listener-url", &advertised])
            .args(["--storage-engine", "sqlite://tansu.db"]);
        if authentication {
            command.arg("--authentication");
        }
        command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn tansu with SQL storage")
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `localhost:<tls_port>`, the bootstrap address for TLS clients.
    pub fn tls_brokers(&self) -> String {
        format!("localhost:{}", self.tls_port)
    }

    /// The CA that signed the broker's certificate.
    pub fn ca(&self) -> PathBuf {
        self.file("good-ca.pem")
    }

    /// A CA that did not.
    pub fn other_ca(&self) -> PathBuf {
        self.file("other-ca.pem")
    }

    /// librdkafka's settings for a client that authenticates as `user` with `password` over
    /// TLS, trusting `ca`.
    pub fn client_settings(
        &self,
        user: &str,
        password: &str,
        ca: &Path,
    ) -> Vec<(&'static str, String)> {
        let mechanism = if user == USER_256 {
            "SCRAM-SHA-256"
        } else {
            "SCRAM-SHA-512"
        };
        vec![
            ("bootstrap.servers", self.tls_brokers()),
            ("security.protocol", "sasl_ssl".into()),
            ("sasl.mechanism", mechanism.into()),
            ("sasl.username", user.into()),
            ("sasl.password", password.into()),
            ("ssl.ca.location", ca.display().to_string()),
        ]
    }
}

impl Drop for SecureKafka {
    fn drop(&mut self) {
        for child in [self.stunnel.take(), self.tansu.take()]
            .into_iter()
            .flatten()
        {
            let mut child = child;
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A plaintext tansu broker on loopback whose storage (SQLite, in a directory of its own)
/// survives its restarts, SIGKILL included, with the topic `fraud.events` in 3 partitions.
pub struct DurableKafka {
    dir: tempfile::TempDir,
    /// The port it listens on.
    pub port: u16,
    child: Option<Child>,
}

impl DurableKafka {
    /// A running broker with the topic made.
    pub fn start() -> DurableKafka {
        let mut kafka = DurableKafka {
            dir: tempfile::tempdir().unwrap(),
            port: free_port(),
            child: None,
        };
        kafka.restart();
        run(
            Command::new(tansu_sql_bin()).args([
                "topic",
                "create",
                "--broker",
                &format!("tcp://127.0.0.1:{}", kafka.port),
                "--partitions",
                "3",
                "fraud.events",
            ]),
            "tansu topic create",
        );
        kafka.index_headers();
        kafka
    }

    /// Gives the storage's record headers the index tansu 0.6.0 leaves out. Its SQLite schema
    /// keys `header` by nothing, so fetching a record scans every header of the topic: with
    /// the relay's seven headers an event, a fetch of a few thousand records from a topic of
    /// 30,000 events outlasts librdkafka's request timeout, and the consumer reads nothing,
    /// silently (the crash soak's first long runs). The broker is stopped for it and started
    /// again; what it stores and serves is unchanged.
    fn index_headers(&mut self) {
        self.kill();
        rusqlite::Connection::open(self.dir.path().join("tansu.db"))
            .and_then(|db| {
                db.execute_batch(
                    "CREATE INDEX IF NOT EXISTS casewire_header_record \
                     ON header (topition, offset_id)",
                )
            })
            .expect("index the broker's record headers");
        self.restart();
    }

    /// `127.0.0.1:<port>`.
    pub fn brokers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Starts the broker again on the same storage (SIGKILLing it first if it runs); returns
    /// once it listens.
    pub fn restart(&mut self) {
        self.kill();
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("broker.log"))
            .expect("broker log");
        self.child = Some(
            Command::new(tansu_sql_bin())
                .current_dir(self.dir.path())
                .args(["broker", "--listener-url", &url])
                .args(["--advertised-listener-url", &url])
                .args(["--storage-engine", "sqlite://tansu.db"])
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("spawn tansu with SQL storage"),
        );
        wait_listening(self.port, "tansu with SQL storage");
    }

    /// Keeps the broker's directory (its storage `tansu.db` and its log `broker.log`) after the
    /// broker is dropped, for a post-mortem; returns where it is.
    pub fn keep(&mut self) -> PathBuf {
        self.dir.disable_cleanup(true);
        self.dir.path().to_owned()
    }

    /// SIGKILLs the broker; its storage stays.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for DurableKafka {
    fn drop(&mut self) {
        self.kill();
    }
}
