//! `casewire`: serve the API with its outbox and relay, manage users and the event queue.
//!
//! Configuration comes from the environment (the guide's variables keep their names):
//! `CASEWIRE_DATA_DIR`, `CASEWIRE_LISTEN`, `RETRY_INTERVAL`, `MAX_RETRIES`, `QUEUE_PERSIST`, and
//! the relay's `KAFKA_*` settings, then from a configuration file ([`settings`]), which also
//! takes librdkafka properties. Without `KAFKA_BROKERS` events are queued and not relayed.

mod settings;

use std::io::Read;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use casewire_core::{Auth, AuthPolicy, EvidenceStore, Role};
use casewire_outbox::{Outbox, OutboxConfig, Page, RetryPolicy, SystemClock};
use casewire_relay::{Relay, RelayConfig};
use casewire_server::ServerState;
use clap::{Parser, Subcommand};
use settings::Settings;

#[derive(Parser)]
#[command(
    name = "casewire",
    version,
    about = "Evidence and case actions, delivered to Kafka through any outage"
)]
struct Cli {
    /// Where the database and evidence files live.
    #[arg(long, env = "CASEWIRE_DATA_DIR", global = true)]
    data_dir: Option<PathBuf>,
    /// A TOML configuration file (default: casewire.toml in the data directory, if present).
    #[arg(long, env = "CASEWIRE_CONFIG", global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the HTTP API, with the relay when KAFKA_BROKERS is set.
    Serve {
        /// Address to listen on (default 127.0.0.1:5050); loopback unless you mean otherwise.
        #[arg(long, env = "CASEWIRE_LISTEN")]
        listen: Option<SocketAddr>,
    },
    /// Manage local users.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Look at and manage the event queue.
    Queue {
        #[command(subcommand)]
        command: QueueCommand,
    },
    /// Import the guide's pending_events.json into the queue (once; the file is renamed).
    Import {
        /// The queue file.
        file: PathBuf,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Add a user; the password is read from standard input.
    Add {
        /// The login name.
        #[arg(long)]
        username: String,
        /// user, analyst, admin or superadmin.
        #[arg(long)]
        role: String,
        /// Read the password from standard input (required: never pass it as an argument).
        #[arg(long, required = true)]
        password_stdin: bool,
    },
}

#[derive(Subcommand)]
enum QueueCommand {
    /// The guide's queue statistics, as JSON.
    Stats,
    /// Events that will not be retried unless replayed.
    DeadLetters {
        #[command(subcommand)]
        command: DeadLetterCommand,
    },
}

#[derive(Subcommand)]
enum DeadLetterCommand {
    /// List them, as JSON.
    List,
    /// Put them back into the queue.
    Replay {
        /// Event ids.
        #[arg(required = true)]
        event_ids: Vec<String>,
    },
    /// Delete them for good (recorded).
    Discard {
        /// Event ids.
        #[arg(required = true)]
        event_ids: Vec<String>,
    },
}

fn data_dir(cli: &Cli) -> anyhow::Result<PathBuf> {
    let dir = match &cli.data_dir {
        Some(dir) => dir.clone(),
        None => dirs::data_dir()
            .context("no data directory for this user: set CASEWIRE_DATA_DIR")?
            .join("casewire"),
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

fn open_outbox(dir: &std::path::Path, settings: &Settings) -> anyhow::Result<Arc<Outbox>> {
    let persist = match settings.get("QUEUE_PERSIST").as_deref() {
        Some("false") => false,
        Some("true") | None => true,
        Some(other) => bail!("QUEUE_PERSIST={other:?} must be true or false"),
    };
    let retry = RetryPolicy::from_interval(
        Duration::from_millis(settings.number("RETRY_INTERVAL", 10_000)?),
        u32::try_from(settings.number("MAX_RETRIES", 10)?).context("MAX_RETRIES is too large")?,
    );
    let mut config = if persist {
        OutboxConfig::file(dir.join("outbox.db"))
    } else {
        OutboxConfig::memory()
    };
    config.retry = retry;
    config.legacy_queue_file = Some(dir.join("pending_events.json"));
    let outbox = Arc::new(Outbox::open(config)?);
    casewire_core::migrate(&outbox)?;
    Ok(outbox)
}

fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(value)?;
    let mut out = std::io::stdout().lock();
    std::io::Write::write_all(&mut out, text.as_bytes())?;
    std::io::Write::write_all(&mut out, b"\n")?;
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,librdkafka=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let dir = data_dir(&cli)?;
    let settings = Settings::load(cli.config.as_deref(), &dir)?;
    let outbox = open_outbox(&dir, &settings)?;
    match cli.command {
        Command::Serve { listen } => {
            let listen = match listen {
                Some(listen) => listen,
                None => settings
                    .get("CASEWIRE_LISTEN")
                    .as_deref()
                    .unwrap_or("127.0.0.1:5050")
                    .parse()
                    .context("CASEWIRE_LISTEN must be an address such as 127.0.0.1:5050")?,
            };
            serve(outbox, dir, listen, settings).await
        }
        Command::User {
            command:
                UserCommand::Add {
                    username,
                    role,
                    password_stdin: _,
                },
        } => {
            let role: Role = role.parse()?;
            let mut password = String::new();
            std::io::stdin()
                .read_to_string(&mut password)
                .context("reading the password from standard input")?;
            let password = password.trim_end_matches(['\r', '\n']);
            let auth = Auth::new(outbox, Arc::new(SystemClock), AuthPolicy::default());
            let user = auth.add_user(&username, role, password)?;
            print_json(&user)
        }
        Command::Queue {
            command: QueueCommand::Stats,
        } => print_json(
            &serde_json::json!({"success": true, "queue": outbox.stats(Page::first(50))?}),
        ),
        Command::Queue {
            command: QueueCommand::DeadLetters { command },
        } => {
            let actor = format!(
                "cli:{}",
                std::env::var("USER").unwrap_or_else(|_| "unknown".into())
            );
            match command {
                DeadLetterCommand::List => print_json(&outbox.dead_letters(Page::first(1_000))?),
                DeadLetterCommand::Replay { event_ids } => print_json(
                    &serde_json::json!({"replayed": outbox.replay(event_ids, actor).await?}),
                ),
                DeadLetterCommand::Discard { event_ids } => print_json(
                    &serde_json::json!({"discarded": outbox.discard(event_ids, actor).await?}),
                ),
            }
        }
        Command::Import { file } => {
            let report = outbox.import_legacy(&file)?;
            print_json(&serde_json::json!({
                "entries": report.entries,
                "imported": report.imported,
                "duplicates": report.duplicates,
                "renamedTo": report.renamed_to,
            }))
        }
    }
}

async fn serve(
    outbox: Arc<Outbox>,
    data_dir: PathBuf,
    listen: SocketAddr,
    settings: Settings,
) -> anyhow::Result<()> {
    let relay = if settings.get("KAFKA_BROKERS").is_some() {
        let config = RelayConfig::from_settings(|k| settings.get(k), settings.librdkafka.clone())?;
        Some(Relay::start(outbox.clone(), config)?)
    } else {
        tracing::warn!("KAFKA_BROKERS is not set: events are queued locally and not relayed");
        None
    };
    let auth = Arc::new(Auth::new(
        outbox.clone(),
        Arc::new(SystemClock),
        AuthPolicy::default(),
    ));
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("listening on {listen}"))?;
    let local = listener.local_addr()?;
    let max_bytes = settings.number("CASEWIRE_MAX_EVIDENCE_BYTES", 100 * 1024 * 1024)?;
    let evidence = Arc::new(EvidenceStore::open(
        outbox.clone(),
        Arc::new(SystemClock),
        &data_dir,
        max_bytes,
    )?);
    let mut state = ServerState::loopback(
        outbox.clone(),
        auth,
        Arc::new(SystemClock),
        evidence,
        local.port(),
    );
    state.relay_configured = relay.is_some();
    let state = Arc::new(state);
    tracing::info!("casewire listening on http://{local}");
    casewire_server::serve(listener, state, shutdown_signal()).await?;
    tracing::info!("stopped accepting requests; stopping the relay");
    if let Some(relay) = relay {
        relay.shutdown().await;
    }
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(
            tokio::signal::unix::SignalKind::terminate(),
        ) {
            Ok(term) => term,
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM; only Ctrl-C stops the server");
                let _ = interrupt.await;
                return;
            }
        };
        tokio::select! {
            _ = interrupt => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}
