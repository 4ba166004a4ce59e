//! `casewire`: serve the API with its outbox and relay, manage users and the event queue.
//!
//! Configuration comes from the environment (the guide's variables keep their names):
//! `CASEWIRE_DATA_DIR`, `CASEWIRE_LISTEN`, `RETRY_INTERVAL`, `MAX_RETRIES`, `QUEUE_PERSIST`, and
//! the relay's `KAFKA_*` settings, then from a configuration file ([`settings`]), which also
//! takes librdkafka properties. Without `KAFKA_BROKERS` events are queued and not relayed.

use std::io::Read;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use casewire_core::{App, JsonFileStore, KeyStore, Role, Settings};
use casewire_outbox::Page;
use casewire_server::{ServerState, Setup};
use clap::{Parser, Subcommand};

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
    /// The first line of standard input is the passphrase that guards the data key
    /// (`CASEWIRE_KEY_STORE=passphrase`), read before anything else.
    #[arg(long, global = true)]
    passphrase_stdin: bool,
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
    /// Print the HTTP API's OpenAPI document (what `GET /api/openapi.json` serves).
    Openapi,
    /// Manage the key that guards the data key (encryption at rest).
    Key {
        #[command(subcommand)]
        command: KeyCommand,
    },
    /// Import the guide's pending_events.json into the queue (once; the file is renamed).
    Import {
        /// The queue file.
        file: PathBuf,
    },
    /// Check evidence files' anchor proofs (the JSON documents of GET
    /// /api/evidence/{id}/anchor/proof) against any JSON-RPC endpoint of their chain, with
    /// nothing else: no data directory, no key. Prints one JSON line per proof. Exits 0 when
    /// every proof holds, 1 when one is refuted (the reason is printed), 2 when one could not
    /// be checked (the node unreachable or answering errors, a proof or evidence file
    /// unreadable).
    VerifyProof {
        /// The proof files.
        #[arg(required = true)]
        proofs: Vec<PathBuf>,
        /// The chain's JSON-RPC endpoint, http or https.
        #[arg(long)]
        rpc: String,
        /// The evidence files themselves, one per proof and in the same order: each one's
        /// SHA-256 must be its proof's.
        #[arg(long)]
        evidence: Vec<PathBuf>,
        /// The confirmations that count as anchored: fewer is refuted.
        #[arg(long, default_value_t = 1)]
        confirmations: u64,
    },
    /// Check a case's timeline against its hash chain and its head last anchored on chain
    /// (asking the configured chain whether that head is there): prints what was found, and
    /// exits with status 1 when an event was edited, deleted, inserted or moved outside Casewire.
    VerifyCase {
        /// The case, e.g. CASE-2026-001.
        case_id: String,
    },
}

#[derive(Subcommand)]
enum KeyCommand {
    /// Re-wrap the data key with a new key (the data is not rewritten): in a new key file, a
    /// new keyring entry, or under a new passphrase (the next line of standard input).
    Rotate {
        /// Where the new key is kept: file, keyring or passphrase.
        #[arg(long)]
        to: String,
        /// The new key file, for `--to file`: a path where no file is yet.
        #[arg(long)]
        key_file: Option<PathBuf>,
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
    casewire_core::private::create_dir(&dir)
        .with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(value)?;
    let mut out = std::io::stdout().lock();
    std::io::Write::write_all(&mut out, text.as_bytes())?;
    std::io::Write::write_all(&mut out, b"\n")?;
    Ok(())
}

/// One line of standard input, without its line ending; refused when empty.
fn read_line(
    input: &mut impl std::io::BufRead,
    what: &str,
) -> anyhow::Result<zeroize::Zeroizing<String>> {
    let mut line = zeroize::Zeroizing::new(String::new());
    input.read_line(&mut line)?;
    let trimmed = zeroize::Zeroizing::new(line.trim_end_matches(['\r', '\n']).to_owned());
    anyhow::ensure!(!trimmed.is_empty(), "{what} was expected on standard input");
    Ok(trimmed)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    casewire_core::private::private_by_default();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,librdkafka=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    if let Command::VerifyProof {
        proofs,
        rpc,
        evidence,
        confirmations,
    } = &cli.command
    {
        let code = verify_proofs(proofs, rpc, evidence, *confirmations).await?;
        std::process::exit(code);
    }
    let dir = data_dir(&cli)?;
    let settings = Settings::load(|k| std::env::var(k).ok(), cli.config.as_deref(), &dir)?;
    let mut input = std::io::stdin().lock();
    let passphrase = if cli.passphrase_stdin {
        Some(read_line(&mut input, "the passphrase")?)
    } else {
        None
    };
    let unlock = casewire_core::Unlock {
        passphrase,
        ..casewire_core::Unlock::default()
    };
    if let Command::Key {
        command: KeyCommand::Rotate { to, key_file },
    } = &cli.command
    {
        let to = match to.as_str() {
            "keyring" => KeyStore::Keyring,
            "file" => KeyStore::File(key_file.clone().ok_or_else(|| {
                anyhow::anyhow!(
                    "--to file needs --key-file: a new file (an existing one may guard other data directories)"
                )
            })?),
            "passphrase" => KeyStore::Passphrase(read_line(&mut input, "the new passphrase")?),
            other => anyhow::bail!("--to {other:?}: say file, keyring or passphrase"),
        };
        casewire_core::rotate_key(&dir, &settings, unlock, to)?;
        eprintln!("the data key is re-wrapped; the data was not rewritten");
        return Ok(());
    }
    drop(input);
    // The settings screen's values for a headless server: settings.json in the data directory.
    let app = Arc::new(App::open_with(
        &dir,
        settings,
        Arc::new(JsonFileStore::in_dir(&dir)),
        unlock,
    )?);
    let outbox = app.outbox.clone();
    match cli.command {
        Command::Serve { listen } => {
            let listen = match listen {
                Some(listen) => listen,
                None => app
                    .settings()
                    .get("CASEWIRE_LISTEN")
                    .as_deref()
                    .unwrap_or("127.0.0.1:5050")
                    .parse()
                    .context("CASEWIRE_LISTEN must be an address such as 127.0.0.1:5050")?,
            };
            serve(app, listen).await
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
            let user = app.auth.add_user(&username, role, password)?;
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
        // Rotated or checked above, before the app opened.
        Command::Key { .. } | Command::VerifyProof { .. } => Ok(()),
        Command::Openapi => print_json(&casewire_server::openapi(&ServerState::for_app(app, 0))),
        Command::VerifyCase { case_id } => {
            let mut check = app.cases.check_timeline(&case_id)?;
            casewire_core::confirm_anchored_head(&mut check, app.chain()?.as_ref()).await;
            print_json(&check)?;
            if let Some(anchored) = &check.anchored_head {
                eprintln!(
                    "{case_id}: compared with its head anchored on chain at event {} (block {}, transaction {}): {}",
                    anchored.sequence,
                    anchored.block_number,
                    anchored.tx_hash,
                    anchored.on_chain.message
                );
            } else {
                eprintln!(
                    "{case_id}: its head was never anchored on chain; the check stands on this database alone"
                );
            }
            if check.intact {
                eprintln!(
                    "{case_id}: the timeline is intact ({} chained events{})",
                    check.events,
                    if check.unchained > 0 {
                        format!(
                            ", {} recorded before timelines were chained",
                            check.unchained
                        )
                    } else {
                        String::new()
                    }
                );
                Ok(())
            } else {
                for problem in &check.problems {
                    eprintln!("{case_id}: {}", problem.message);
                }
                anyhow::bail!(
                    "the timeline of {case_id} was changed outside Casewire ({} problems found)",
                    check.problems.len()
                )
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

/// `casewire verify-proof`: one JSON line per proof on stdout and a sentence on stderr;
/// returns the exit status (0 all hold, 1 one is refuted, 2 one could not be checked).
async fn verify_proofs(
    proofs: &[PathBuf],
    rpc: &str,
    evidence: &[PathBuf],
    confirmations: u64,
) -> anyhow::Result<i32> {
    use casewire_chain::rpc::{Endpoint, Rpc};

    if !evidence.is_empty() && evidence.len() != proofs.len() {
        anyhow::bail!(
            "{} proofs and {} evidence files: give one --evidence per proof, in the same order, or none",
            proofs.len(),
            evidence.len()
        );
    }
    // Not the URL itself in the message: a provider's API key may be in it.
    let endpoint =
        Endpoint::parse(rpc).map_err(|reason| anyhow::anyhow!("--rpc is not usable: {reason}"))?;
    let rpc = Rpc::new(endpoint);
    let mut status = 0;
    for (i, path) in proofs.iter().enumerate() {
        let (mut line, sentence, outcome) = match read_proof(path, evidence.get(i)) {
            Ok((proof, file_hash)) => {
                let (line, sentence, outcome) =
                    check_proof(&rpc, &proof, file_hash, confirmations).await;
                (line, format!("{}: {sentence}", proof.name()), outcome)
            }
            Err(error) => (
                serde_json::json!({"holds": null, "code": "unreadable", "reason": format!("{error:#}")}),
                format!("not checked: {error:#}"),
                2,
            ),
        };
        line["proof"] = serde_json::json!(path);
        println_json(&line)?;
        eprintln!("{}: {sentence}", path.display());
        status = match (status, outcome) {
            (1, _) | (_, 1) => 1,
            (2, _) | (_, 2) => 2,
            _ => 0,
        };
    }
    Ok(status)
}

/// A proof `casewire verify-proof` reads: a file's, or a case timeline's head.
enum AnyProof {
    File(casewire_chain::proof::Proof),
    CaseHead(casewire_chain::proof::CaseHeadProof),
}

impl AnyProof {
    fn on_chain(&self) -> &casewire_chain::proof::OnChain {
        match self {
            AnyProof::File(p) => &p.on_chain,
            AnyProof::CaseHead(p) => &p.on_chain,
        }
    }

    /// What it proves, for the JSON line.
    fn subject(&self) -> serde_json::Value {
        match self {
            AnyProof::File(p) => {
                serde_json::json!({"evidenceId": p.evidence_id, "fileHash": p.file_hash})
            }
            AnyProof::CaseHead(p) => {
                serde_json::json!({"caseId": p.case_id, "sequence": p.sequence, "head": p.head})
            }
        }
    }

    /// What it proves, for a person.
    fn name(&self) -> String {
        match self {
            AnyProof::File(p) => format!("{} ({})", p.evidence_id, p.file_hash),
            AnyProof::CaseHead(p) => format!(
                "the timeline of {} up to event {} (head {})",
                p.case_id, p.sequence, p.head
            ),
        }
    }
}

/// A proof file and, when given, the SHA-256 of its evidence file.
fn read_proof(
    path: &std::path::Path,
    evidence: Option<&PathBuf>,
) -> anyhow::Result<(AnyProof, Option<casewire_chain::B256>)> {
    use casewire_chain::proof::CASE_HEAD_PROOF_FORMAT;

    let text = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let document: serde_json::Value = serde_json::from_slice(&text)
        .with_context(|| format!("{} is not an anchor proof", path.display()))?;
    let proof = if document["format"] == CASE_HEAD_PROOF_FORMAT {
        if evidence.is_some() {
            anyhow::bail!(
                "{} is the proof of a case's timeline, which has no evidence file: give --evidence for files' proofs only",
                path.display()
            );
        }
        AnyProof::CaseHead(
            serde_json::from_value(document)
                .with_context(|| format!("{} is not a case-head proof", path.display()))?,
        )
    } else {
        AnyProof::File(
            serde_json::from_value(document)
                .with_context(|| format!("{} is not an anchor proof", path.display()))?,
        )
    };
    let file_hash = evidence
        .map(|file| {
            std::fs::File::open(file)
                .and_then(casewire_chain::proof::sha256_of)
                .with_context(|| format!("reading {}", file.display()))
        })
        .transpose()?;
    Ok((proof, file_hash))
}

/// One proof's check: its JSON line, a sentence, and 0 (holds), 1 (refuted) or 2 (not checked).
async fn check_proof(
    rpc: &casewire_chain::rpc::Rpc,
    proof: &AnyProof,
    file_hash: Option<casewire_chain::B256>,
    confirmations: u64,
) -> (serde_json::Value, String, i32) {
    use casewire_chain::proof::{VerifyError, verify_case_head, verify_proof};
    use serde_json::json;

    let checked = match proof {
        AnyProof::File(p) => verify_proof(rpc, p, file_hash).await,
        AnyProof::CaseHead(p) => verify_case_head(rpc, p).await,
    };
    let on_chain = proof.on_chain();
    let (mut line, sentence, outcome) = match checked {
        Ok(found) if found.confirmations >= confirmations => (
            json!({
                "holds": true,
                "root": on_chain.root,
                "chainId": on_chain.chain_id,
                "txHash": on_chain.tx_hash,
                // Who anchored it: a reader compares them with the keys and contracts it trusts.
                "sender": on_chain.sender,
                "contractAddress": on_chain.contract_address,
                "blockNumber": found.block_number,
                "blockHash": found.block_hash,
                "confirmations": found.confirmations,
            }),
            format!(
                "anchored by {} in block {} of chain {}, {} confirmations{}",
                on_chain.sender,
                found.block_number,
                on_chain.chain_id,
                found.confirmations,
                match (proof, file_hash) {
                    (AnyProof::CaseHead(_), _) => "",
                    (_, Some(_)) => "; the file matches",
                    (_, None) => "; the file itself was not given",
                }
            ),
            0,
        ),
        Ok(found) => (
            json!({
                "holds": false,
                "code": "not_enough_confirmations",
                "confirmations": found.confirmations,
            }),
            format!(
                "in block {} with {} confirmations, fewer than the {confirmations} asked for",
                found.block_number, found.confirmations
            ),
            1,
        ),
        Err(VerifyError::Refused(refusal)) => (
            json!({
                "holds": false,
                "code": refusal.code(),
                "reason": refusal.to_string(),
            }),
            format!("the proof does not hold: {refusal}"),
            1,
        ),
        Err(error) => (
            json!({
                "holds": null,
                "code": "not_checked",
                "reason": error.to_string(),
            }),
            format!("not checked: {error}"),
            2,
        ),
    };
    if let (Some(line), serde_json::Value::Object(subject)) =
        (line.as_object_mut(), proof.subject())
    {
        line.extend(subject);
    }
    if outcome == 0 && matches!(proof, AnyProof::File(_)) {
        line["fileChecked"] = json!(file_hash.is_some());
    }
    (line, sentence, outcome)
}

/// `value` as one line of JSON on stdout.
fn println_json(value: &serde_json::Value) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer(&mut out, value)?;
    std::io::Write::write_all(&mut out, b"\n")?;
    Ok(())
}

async fn serve(app: Arc<App>, listen: SocketAddr) -> anyhow::Result<()> {
    app.start_relay().await?;
    tokio::spawn(app.housekeeping());
    if let Some((address, worker)) = app.anchoring_worker()? {
        tracing::info!(%address, "anchoring on chain with this address: keep it funded with gas");
        tokio::spawn(worker);
    }
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("listening on {listen}"))?;
    let local = listener.local_addr()?;
    let mut state = ServerState::for_app(app.clone(), local.port());
    state.setup = Setup::random_code();
    if let Setup::Code(code) = &state.setup {
        let auth = app.auth.clone();
        if tokio::task::spawn_blocking(move || auth.needs_setup()).await?? {
            // Printed, never logged to a file: whoever reads this terminal may create the
            // first superadmin, in the browser at the address below.
            tracing::warn!(
                "no user yet: open http://{local}/ to create the first superadmin; setup code: {code}"
            );
        }
    }
    let state = Arc::new(state);
    let shutdown = shutdown_signal();
    tracing::info!("casewire listening on http://{local}");
    let limits = casewire_server::ServeLimits::from_settings(&app.settings())?;
    casewire_server::serve_with(listener, state, shutdown, limits).await?;
    tracing::info!("stopped serving; stopping the relay");
    if tokio::time::timeout(RELAY_STOP_BOUND, app.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            "the relay did not settle within {RELAY_STOP_BOUND:?}; its events stay queued"
        );
    }
    Ok(())
}

/// How long a stop waits for the relay to settle what it has in flight.
const RELAY_STOP_BOUND: std::time::Duration = std::time::Duration::from_secs(10);

/// A future that resolves on SIGINT or SIGTERM. The handlers are installed at the call, not at
/// the first poll: a stop sent the moment the server says it listens must not kill it outright.
fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let handlers = signal(SignalKind::terminate())
            .and_then(|term| Ok((term, signal(SignalKind::interrupt())?)));
        async move {
            match handlers {
                Ok((mut term, mut interrupt)) => {
                    tokio::select! {
                        _ = term.recv() => {}
                        _ = interrupt.recv() => {}
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "cannot listen for SIGTERM; only Ctrl-C stops the server");
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
