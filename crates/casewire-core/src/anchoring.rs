//! Anchoring evidence on an EVM chain, queued like every event and done when a node answers.
//!
//! Asking to anchor a file ([`Anchoring::request`]) commits an anchor request, with a random
//! leaf salt, in the same transaction as its event; offline it just waits. The [`Worker`],
//! while the chain is reachable, takes the waiting requests in batches and moves each batch
//! through these states, every one of them committed before the next step is taken:
//!
//! 1. `signed`: the batch's Merkle root ([`casewire_chain::merkle`]) is in one EIP-1559
//!    transaction, signed and saved, and its requests are the batch's leaves. Nothing has left
//!    the machine: a crash here leaves the saved transaction to broadcast, never a second one to
//!    sign for the same nonce.
//! 2. `pending`: broadcast (a node answering "already known" or "nonce too low" has it too).
//!    The saved transaction is broadcast again on every look until it is mined.
//! 3. `included`: mined in block N, counting confirmations. A reorganisation that drops the
//!    block sends it back to `pending`, and the saved transaction goes out again.
//! 4. `anchored`: at the configured depth. Each file gets its proof ([`casewire_chain::proof`])
//!    and its `evidence.anchored` event (high), with the Merkle root and the chain id.
//!
//! The heads of case timelines ([`crate::custody`]) ride with the files: a batch holds, after
//! its files, a leaf for each case whose head moved since it was last put in a batch, and once
//! anchored each such case gets a case-head proof and a `system.info` event (`anchor.case_head`)
//! that carries it downstream. A timeline's check then compares the timeline with its last
//! anchored head.
//!
//! A transaction that reverted, or whose nonce another transaction of the key took, ends its
//! batch as `failed` and its requests wait again for the next one. One transaction is in flight
//! per key. A node that cannot be reached spends no attempt; any other failure is counted and
//! backed off exponentially, like the relay's retries. Each move of a batch is a `system.info`
//! event on the timeline of every case it holds files of.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use casewire_chain::merkle::{Tree, leaf};
use casewire_chain::proof::{
    CASE_HEAD_PROOF_FORMAT, CaseHeadProof, OnChain, Proof, case_head_digest,
};
use casewire_chain::rpc::{BlockTag, Endpoint, Rpc, RpcError};
use casewire_chain::tx::{AnchorKey, SignedTx};
use casewire_chain::{Address, B256, Bytes};
use casewire_events::{Event, EventType, Metadata};
use casewire_outbox::{Clock, Outbox, WriteTx};
use rand::RngCore;
use rusqlite::{OptionalExtension, params};
use serde::Serialize;
use serde_json::{Value, json};
use zeroize::Zeroizing;

use crate::settings::Settings;
use crate::{CoreError, RequestInfo, User};

/// The most files one transaction anchors.
pub const BATCH_MAX: usize = 10_000;

/// Evidence ids named by one timeline event of a batch (events stay far below their size cap).
const IDS_PER_EVENT: usize = 500;

/// The longest a failing batch waits between attempts.
const BACKOFF_MAX: Duration = Duration::from_secs(300);

/// Where an anchor stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AnchorState {
    /// Requested; waiting for the chain (offline, or behind the transaction in flight).
    Waiting,
    /// In a signed transaction that is saved and not yet broadcast.
    Signed,
    /// Broadcast, not yet mined.
    Pending,
    /// Mined, not yet at the configured depth.
    Included,
    /// At the configured depth: its proof holds.
    Anchored,
}

impl AnchorState {
    fn of_batch(state: &str) -> Option<AnchorState> {
        match state {
            "signed" => Some(AnchorState::Signed),
            "pending" => Some(AnchorState::Pending),
            "included" => Some(AnchorState::Included),
            "anchored" => Some(AnchorState::Anchored),
            _ => None,
        }
    }
}

/// An evidence file's anchoring, as the API and the evidence screen show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AnchorStatus {
    /// The evidence.
    pub evidence_id: String,
    /// Where it stands.
    pub state: AnchorState,
    /// Who asked.
    pub requested_by: String,
    /// When, Unix ms.
    pub requested_at: i64,
    /// The chain (EIP-155 id), once in a transaction.
    pub chain_id: Option<u64>,
    /// The transaction carrying its batch's root, once signed.
    pub tx_hash: Option<String>,
    /// The batch's Merkle root, once signed.
    pub merkle_root: Option<String>,
    /// The block holding the transaction, once mined.
    pub block_number: Option<u64>,
    /// How deep that block is (1 when it is the head).
    pub confirmations: u64,
    /// The depth that counts as anchored, once in a transaction.
    pub confirmations_required: Option<u64>,
    /// Files in the same transaction.
    pub batch_size: Option<u64>,
    /// Why the last attempt at its batch failed, if it did, in words.
    pub last_error: Option<String>,
}

/// How anchoring stands, for an admin: the chain, the address to fund, what waits and what
/// is in flight.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AnchoringView {
    /// Whether a chain is set up (`CASEWIRE_CHAIN_RPC_URL`): without one, requests wait.
    pub configured: bool,
    /// The chain's EIP-155 id (`CASEWIRE_CHAIN_ID`).
    pub chain_id: Option<u64>,
    /// The node, without the path or query where providers put keys.
    pub endpoint: Option<String>,
    /// The anchoring contract, if one is set.
    pub contract: Option<String>,
    /// The depth that counts as anchored.
    pub confirmations: Option<u64>,
    /// The address that signs the anchoring transactions and pays their gas: the one to fund.
    pub address: Option<String>,
    /// Its balance in wei, in decimal, when the node answered.
    pub balance_wei: Option<String>,
    /// Why the balance could not be read, when it could not.
    pub balance_error: Option<String>,
    /// Files waiting for a batch.
    pub waiting: u64,
    /// Why the last attempt before a batch was signed failed, if it did.
    pub waiting_error: Option<String>,
    /// The batch in flight, if one is.
    pub in_flight: Option<BatchView>,
    /// The batch anchored last, if any.
    pub last_anchored: Option<BatchView>,
}

/// One anchoring transaction, for an admin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BatchView {
    /// Where it stands.
    pub state: AnchorState,
    /// The transaction.
    pub tx_hash: String,
    /// Its nonce.
    pub nonce: u64,
    /// Files in it.
    pub files: u64,
    /// Case timelines' heads in it.
    pub case_heads: u64,
    /// Its block, once mined.
    pub block_number: Option<u64>,
    /// That block's depth.
    pub confirmations: u64,
    /// Failed looks at it since it last moved.
    pub attempts: u64,
    /// Why the last look failed, if it did.
    pub last_error: Option<String>,
    /// When it last moved, Unix ms.
    pub updated_at: i64,
}

/// The chain anchoring talks to, from the settings.
#[derive(Debug, Clone)]
pub struct ChainSettings {
    /// The node (`CASEWIRE_CHAIN_RPC_URL`; shown without path or query).
    pub endpoint: Endpoint,
    /// The chain's EIP-155 id (`CASEWIRE_CHAIN_ID`), checked against the node's.
    pub chain_id: u64,
    /// The anchoring contract (`CASEWIRE_ANCHOR_CONTRACT`), else a transaction to the key's own
    /// address carries the root.
    pub contract: Option<Address>,
    /// The depth that counts as anchored (`CASEWIRE_ANCHOR_CONFIRMATIONS`).
    pub confirmations: u64,
    /// How often a transaction in flight is looked at (`CASEWIRE_ANCHOR_POLL_MS`).
    pub poll: Duration,
    /// The signing key's file (`CASEWIRE_ANCHOR_KEY_FILE`), else the OS keyring.
    pub key_file: Option<PathBuf>,
}

impl ChainSettings {
    /// The chain settings, `None` when no node is configured (`CASEWIRE_CHAIN_RPC_URL` unset):
    /// anchoring requests then wait. Refuses a wrong value naming the setting.
    pub fn from_settings(settings: &Settings) -> Result<Option<ChainSettings>, CoreError> {
        let Some(url) = settings
            .get("CASEWIRE_CHAIN_RPC_URL")
            .filter(|u| !u.is_empty())
        else {
            return Ok(None);
        };
        let endpoint = Endpoint::parse(&url)
            .map_err(|e| CoreError::Config(format!("CASEWIRE_CHAIN_RPC_URL: {e}")))?;
        let chain_id = match settings.get("CASEWIRE_CHAIN_ID") {
            Some(id) => id.trim().parse::<u64>().ok().filter(|id| *id > 0).ok_or_else(|| {
                CoreError::Config(format!(
                    "CASEWIRE_CHAIN_ID={id:?} must be the chain's positive EIP-155 id (1 for Ethereum)"
                ))
            })?,
            None => {
                return Err(CoreError::Config(
                    "CASEWIRE_CHAIN_ID must be set with CASEWIRE_CHAIN_RPC_URL: the chain's EIP-155 id, which the node must report".into(),
                ));
            }
        };
        let contract = match settings
            .get("CASEWIRE_ANCHOR_CONTRACT")
            .filter(|c| !c.is_empty())
        {
            Some(text) => {
                casewire_events::validate_evm_address(&text)
                    .map_err(|e| CoreError::Config(format!("CASEWIRE_ANCHOR_CONTRACT: {e}")))?;
                Some(
                    Address::from_str(&text)
                        .map_err(|e| CoreError::Config(format!("CASEWIRE_ANCHOR_CONTRACT: {e}")))?,
                )
            }
            None => None,
        };
        let confirmations = settings.number("CASEWIRE_ANCHOR_CONFIRMATIONS", 12)?;
        if confirmations == 0 {
            return Err(CoreError::Config(
                "CASEWIRE_ANCHOR_CONFIRMATIONS must be at least 1 (1: anchored once mined)".into(),
            ));
        }
        let poll =
            Duration::from_millis(settings.number("CASEWIRE_ANCHOR_POLL_MS", 5_000)?.max(10));
        let key_file = settings
            .get("CASEWIRE_ANCHOR_KEY_FILE")
            .filter(|f| !f.is_empty())
            .map(PathBuf::from);
        Ok(Some(ChainSettings {
            endpoint,
            chain_id,
            contract,
            confirmations,
            poll,
            key_file,
        }))
    }
}

/// The keyring's service name for the anchoring key.
const KEYRING_SERVICE: &str = "org.casewire.anchor-key";

/// The anchoring key: from `key_file` when given (made if missing, refused if other accounts
/// may read it), else from the OS keyring under the data directory's name (made on first use).
/// A new key has no funds: the log names its address, never the key.
pub fn anchoring_key(key_file: Option<&Path>, data_dir: &Path) -> Result<AnchorKey, CoreError> {
    let parse = |text: &str, from: &str| {
        AnchorKey::from_hex(text.trim()).map_err(|e| {
            CoreError::Config(format!(
                "{from} does not hold an anchoring key (a secp256k1 private key, 64 hexadecimal digits): {e}"
            ))
        })
    };
    if let Some(path) = key_file {
        let from = format!("the anchoring key file {}", path.display());
        if let Some(text) = crate::keys::read_private_file(path)? {
            return parse(&text, &from);
        }
        let key = AnchorKey::generate();
        crate::keys::create_private_file(path, key.to_hex().as_str())?;
        tracing::warn!(
            key_file = %path.display(),
            address = %key.address(),
            "made a new anchoring key: send this address gas (a small amount of the chain's coin) before anchoring can go on chain"
        );
        return Ok(key);
    }
    let id = data_dir.display().to_string();
    let entry = keyring::Entry::new(KEYRING_SERVICE, &id).map_err(|e| keyring_error(&e))?;
    match entry.get_password() {
        Ok(text) => parse(&Zeroizing::new(text), "the OS keyring's anchoring key"),
        Err(keyring::Error::NoEntry) => {
            let key = AnchorKey::generate();
            entry
                .set_password(key.to_hex().as_str())
                .map_err(|e| keyring_error(&e))?;
            tracing::warn!(
                address = %key.address(),
                "made a new anchoring key in the OS keyring: send this address gas (a small amount of the chain's coin) before anchoring can go on chain"
            );
            Ok(key)
        }
        Err(e) => Err(keyring_error(&e)),
    }
}

fn keyring_error(e: &keyring::Error) -> CoreError {
    CoreError::Config(format!(
        "the OS keyring cannot keep the anchoring key ({e}): unlock it, or keep the key in a file readable by this account alone (CASEWIRE_ANCHOR_KEY_FILE)"
    ))
}

/// Anchor requests and their batches, in the outbox's database.
pub struct Anchoring {
    outbox: Arc<Outbox>,
    clock: Arc<dyn Clock>,
    wake: tokio::sync::Notify,
}

impl std::fmt::Debug for Anchoring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Anchoring").finish_non_exhaustive()
    }
}

/// A batch as saved.
#[derive(Debug, Clone)]
struct Batch {
    id: i64,
    chain_id: u64,
    sender: Address,
    nonce: u64,
    contract: Option<Address>,
    root: B256,
    tx_hash: B256,
    raw: Bytes,
    state: String,
    block_number: Option<u64>,
    block_hash: Option<B256>,
}

/// A file of a batch, in leaf order.
#[derive(Debug, Clone)]
struct Member {
    evidence_id: String,
    case_id: String,
    wallet: String,
    wallet_chain: String,
    file_hash: B256,
    salt: B256,
    requested_by: String,
}

/// A case timeline's head in a batch, in leaf order after the files.
#[derive(Debug, Clone)]
struct Head {
    case_id: String,
    sequence: u64,
    head: String,
    salt: B256,
}

impl Head {
    fn leaf(&self) -> B256 {
        leaf(
            &self.salt,
            &case_head_digest(&self.case_id, self.sequence, &self.head),
        )
    }
}

/// A fresh random salt for a leaf, which keeps what it commits to off the public chain.
fn leaf_salt() -> B256 {
    let mut salt = [0u8; 32];
    rand::rng().fill_bytes(&mut salt);
    B256::from(salt)
}

fn hash_of(text: &str, what: &str) -> Result<B256, CoreError> {
    B256::from_str(text)
        .map_err(|e| CoreError::Storage(format!("the stored {what} {text:?} is not a hash: {e}")))
}

fn address_of(text: &str, what: &str) -> Result<Address, CoreError> {
    Address::from_str(text).map_err(|e| {
        CoreError::Storage(format!("the stored {what} {text:?} is not an address: {e}"))
    })
}

const BATCH_COLUMNS: &str =
    "batch_id, chain_id, sender, nonce, contract, root, tx_hash, raw_tx, state,
     block_number, block_hash";

/// A batch's row as stored, before its text is read as hashes and addresses.
struct BatchRow {
    id: i64,
    chain_id: i64,
    sender: String,
    nonce: i64,
    contract: Option<String>,
    root: String,
    tx_hash: String,
    raw: Vec<u8>,
    state: String,
    block_number: Option<i64>,
    block_hash: Option<String>,
}

fn batch_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<BatchRow> {
    Ok(BatchRow {
        id: r.get(0)?,
        chain_id: r.get(1)?,
        sender: r.get(2)?,
        nonce: r.get(3)?,
        contract: r.get(4)?,
        root: r.get(5)?,
        tx_hash: r.get(6)?,
        raw: r.get(7)?,
        state: r.get(8)?,
        block_number: r.get(9)?,
        block_hash: r.get(10)?,
    })
}

impl Batch {
    fn from_row(row: BatchRow) -> Result<Batch, CoreError> {
        Ok(Batch {
            id: row.id,
            chain_id: row.chain_id.max(0) as u64,
            sender: address_of(&row.sender, "sender")?,
            nonce: row.nonce.max(0) as u64,
            contract: row
                .contract
                .as_deref()
                .map(|c| address_of(c, "contract"))
                .transpose()?,
            root: hash_of(&row.root, "Merkle root")?,
            tx_hash: hash_of(&row.tx_hash, "transaction hash")?,
            raw: Bytes::from(row.raw),
            state: row.state,
            block_number: row.block_number.map(|n| n.max(0) as u64),
            block_hash: row
                .block_hash
                .as_deref()
                .map(|h| hash_of(h, "block hash"))
                .transpose()?,
        })
    }
}

impl Anchoring {
    /// Anchoring over `outbox`'s database.
    pub fn new(outbox: Arc<Outbox>, clock: Arc<dyn Clock>) -> Anchoring {
        Anchoring {
            outbox,
            clock,
            wake: tokio::sync::Notify::new(),
        }
    }

    /// Asks for `evidence_id` to be anchored: the request and its `system.info` event commit
    /// together, and the worker is woken. Asking again while it waits or is in flight answers
    /// where it stands; a file anchored already is a conflict.
    pub fn request(
        &self,
        evidence_id: &str,
        user: &User,
        from: &RequestInfo,
    ) -> Result<(AnchorStatus, bool), CoreError> {
        let id = evidence_id.to_owned();
        let salt = leaf_salt().to_string();
        let now = self.clock.now_ms();
        let clock = self.clock.clone();
        let user = user.clone();
        let from = from.clone();
        let created = self
            .outbox
            .write(move |tx| {
                let evidence: Option<(String, String, Option<i64>)> = tx
                    .query_row(
                        "SELECT case_id, storage_hash, deleted_at FROM evidence WHERE evidence_id = ?1",
                        [&id],
                        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                    )
                    .optional()?;
                let Some((case_id, file_hash, deleted)) = evidence else {
                    return Err(CoreError::NotFound(format!("evidence {id}")));
                };
                if deleted.is_some() {
                    return Err(CoreError::Gone(format!("evidence {id} was deleted")));
                }
                let existing: Option<Option<String>> = tx
                    .query_row(
                        "SELECT b.state FROM anchor_requests r
                           LEFT JOIN anchor_batches b ON b.batch_id = r.batch_id
                          WHERE r.evidence_id = ?1",
                        [&id],
                        |r| r.get(0),
                    )
                    .optional()?;
                match existing {
                    Some(Some(state)) if state == "anchored" => {
                        return Err(CoreError::Conflict(format!(
                            "evidence {id} is anchored already: its proof is at /api/evidence/{id}/anchor/proof"
                        )));
                    }
                    Some(_) => return Ok(false),
                    None => {}
                }
                tx.execute(
                    "INSERT INTO anchor_requests (evidence_id, file_hash, salt, requested_by, requested_at)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![id, file_hash, salt, user.username, now],
                )?;
                let event = crate::action_event(
                    &*clock,
                    EventType::SystemInfo,
                    json!({
                        "message": format!("Anchoring of evidence {id} on chain was requested; it waits for the chain"),
                        "action": "anchor.requested",
                        "evidenceId": id,
                        "caseId": case_id,
                        "fileHash": file_hash,
                    }),
                    &user,
                    &from,
                );
                crate::cases::enqueue_in_timeline(tx, &event)?;
                Ok(true)
            })
            .wait()?;
        if created {
            tracing::info!(evidence = %evidence_id, "anchoring requested");
            self.wake.notify_one();
        }
        let status = self
            .status(evidence_id)?
            .ok_or_else(|| CoreError::NotFound(format!("anchor request of {evidence_id}")))?;
        Ok((status, created))
    }

    /// Where the anchoring of `evidence_id` stands, `None` if it was never asked for.
    pub fn status(&self, evidence_id: &str) -> Result<Option<AnchorStatus>, CoreError> {
        let id = evidence_id.to_owned();
        self.outbox.read(|conn| {
            conn.prepare_cached(
                "SELECT r.requested_by, r.requested_at, b.state, b.chain_id, b.tx_hash, b.root,
                        b.block_number, b.confirmations, b.required_confirmations,
                        (SELECT COUNT(*) FROM anchor_requests m WHERE m.batch_id = r.batch_id),
                        COALESCE(b.last_error, r.last_error)
                   FROM anchor_requests r
                   LEFT JOIN anchor_batches b ON b.batch_id = r.batch_id
                  WHERE r.evidence_id = ?1",
            )?
            .query_row([&id], |r| {
                let state: Option<String> = r.get(2)?;
                let in_batch = state.is_some();
                Ok(AnchorStatus {
                    evidence_id: id.clone(),
                    state: state
                        .as_deref()
                        .and_then(AnchorState::of_batch)
                        .unwrap_or(AnchorState::Waiting),
                    requested_by: r.get(0)?,
                    requested_at: r.get(1)?,
                    chain_id: r.get::<_, Option<i64>>(3)?.map(|n| n as u64),
                    tx_hash: r.get(4)?,
                    merkle_root: r.get(5)?,
                    block_number: r.get::<_, Option<i64>>(6)?.map(|n| n as u64),
                    confirmations: r.get::<_, Option<i64>>(7)?.unwrap_or(0).max(0) as u64,
                    confirmations_required: r.get::<_, Option<i64>>(8)?.map(|n| n as u64),
                    batch_size: in_batch
                        .then(|| r.get::<_, i64>(9))
                        .transpose()?
                        .map(|n| n as u64),
                    last_error: r.get(10)?,
                })
            })
            .optional()
            .map_err(CoreError::from)
        })
    }

    /// The proof of `evidence_id`'s anchor, once anchored.
    pub fn proof(&self, evidence_id: &str) -> Result<Option<Proof>, CoreError> {
        let id = evidence_id.to_owned();
        let text: Option<String> = self.outbox.read(|conn| {
            conn.query_row(
                "SELECT proof FROM evidence_anchors WHERE evidence_id = ?1 AND proof IS NOT NULL
                  ORDER BY anchored_at DESC LIMIT 1",
                [&id],
                |r| r.get(0),
            )
            .optional()
            .map_err(CoreError::from)
        })?;
        text.map(|text| {
            serde_json::from_str(&text).map_err(|e| {
                CoreError::Storage(format!("the stored proof of {id} is unreadable: {e}"))
            })
        })
        .transpose()
    }

    /// Checks a receipt typed in by a person against `chain` before it is recorded
    /// ([`crate::EvidenceStore::anchor`]): the transaction exists on the chain, is mined in the
    /// block named and did not revert, went to the contract named, and carries the file's hash.
    pub async fn check_receipt(
        chain: Option<&ChainSettings>,
        file_hash: &str,
        receipt: &crate::NewAnchor,
    ) -> Result<(), CoreError> {
        let chain = chain.ok_or(CoreError::ChainNotConfigured)?;
        let invalid = |field: &str, e: &dyn std::fmt::Display| {
            CoreError::Invalid(format!("{field} is not readable: {e}"))
        };
        let claim = casewire_chain::proof::ReceiptClaim {
            chain_id: chain.chain_id,
            tx_hash: B256::from_str(receipt.tx_hash.trim()).map_err(|e| invalid("txHash", &e))?,
            block_number: receipt.block_number,
            contract_address: Address::from_str(receipt.contract_address.trim())
                .map_err(|e| invalid("contractAddress", &e))?,
            file_hash: hash_of(file_hash, "file hash")?,
        };
        let rpc = Rpc::new(chain.endpoint.clone());
        match casewire_chain::proof::verify_receipt(&rpc, &claim).await {
            Ok(_) => Ok(()),
            Err(casewire_chain::proof::VerifyError::Refused(refusal)) => {
                Err(CoreError::ReceiptRefused {
                    code: refusal.code(),
                    message: refusal.to_string(),
                })
            }
            Err(casewire_chain::proof::VerifyError::Rpc(e)) => {
                Err(CoreError::ChainUnreachable(e.to_string()))
            }
            Err(e) => Err(CoreError::ChainUnreachable(e.to_string())),
        }
    }

    /// How many requests wait for a batch.
    pub fn waiting(&self) -> Result<u64, CoreError> {
        self.outbox.read(|conn| {
            conn.query_row(
                "SELECT COUNT(*) FROM anchor_requests WHERE batch_id IS NULL",
                [],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n.max(0) as u64)
            .map_err(CoreError::from)
        })
    }

    /// How anchoring stands on `chain` for the worker signing with `address` (the app knows
    /// both once the worker was made): the balance is asked of the node.
    pub async fn view(
        self: &Arc<Self>,
        chain: Option<&ChainSettings>,
        address: Option<Address>,
    ) -> Result<AnchoringView, CoreError> {
        let this = self.clone();
        let (waiting, waiting_error, in_flight, last_anchored) =
            tokio::task::spawn_blocking(move || this.overview())
                .await
                .map_err(|e| CoreError::Storage(format!("reading the anchoring state: {e}")))??;
        let (mut balance_wei, mut balance_error) = (None, None);
        if let (Some(chain), Some(address)) = (chain, address) {
            match Rpc::new(chain.endpoint.clone()).balance(address).await {
                Ok(wei) => balance_wei = Some(wei.to_string()),
                Err(e) => balance_error = Some(e.to_string()),
            }
        }
        Ok(AnchoringView {
            configured: chain.is_some(),
            chain_id: chain.map(|c| c.chain_id),
            endpoint: chain.map(|c| c.endpoint.to_string()),
            contract: chain.and_then(|c| c.contract).map(|c| c.to_string()),
            confirmations: chain.map(|c| c.confirmations),
            address: address.map(|a| a.to_string()),
            balance_wei,
            balance_error,
            waiting,
            waiting_error,
            in_flight,
            last_anchored,
        })
    }

    /// What waits, the batch in flight and the one anchored last:
    /// `(waiting, waiting_error, in_flight, last_anchored)`.
    #[allow(clippy::type_complexity)]
    fn overview(
        &self,
    ) -> Result<(u64, Option<String>, Option<BatchView>, Option<BatchView>), CoreError> {
        self.outbox.read(|conn| {
            let (waiting, waiting_error): (i64, Option<String>) = conn.query_row(
                "SELECT COUNT(*), MAX(last_error) FROM anchor_requests WHERE batch_id IS NULL",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            let batch = |filter: &str| {
                conn.query_row(
                    &format!(
                        "SELECT b.state, b.tx_hash, b.nonce, b.block_number, b.confirmations,
                                b.attempts, b.last_error, b.updated_at,
                                (SELECT COUNT(*) FROM anchor_requests r WHERE r.batch_id = b.batch_id),
                                (SELECT COUNT(*) FROM case_head_anchors h WHERE h.batch_id = b.batch_id)
                           FROM anchor_batches b WHERE {filter}
                          ORDER BY b.batch_id DESC LIMIT 1"
                    ),
                    [],
                    |r| {
                        let state: String = r.get(0)?;
                        Ok(BatchView {
                            state: AnchorState::of_batch(&state).unwrap_or(AnchorState::Waiting),
                            tx_hash: r.get(1)?,
                            nonce: r.get::<_, i64>(2)?.max(0) as u64,
                            block_number: r.get::<_, Option<i64>>(3)?.map(|n| n.max(0) as u64),
                            confirmations: r.get::<_, i64>(4)?.max(0) as u64,
                            attempts: r.get::<_, i64>(5)?.max(0) as u64,
                            last_error: r.get(6)?,
                            updated_at: r.get(7)?,
                            files: r.get::<_, i64>(8)?.max(0) as u64,
                            case_heads: r.get::<_, i64>(9)?.max(0) as u64,
                        })
                    },
                )
                .optional()
            };
            let in_flight = batch("b.state IN ('signed', 'pending', 'included')")?;
            let last = batch("b.state = 'anchored'")?;
            Ok((
                waiting.max(0) as u64,
                waiting_error.filter(|_| waiting > 0),
                in_flight,
                last,
            ))
        })
    }

    fn in_flight(&self, sender: Address) -> Result<Option<Batch>, CoreError> {
        let sender = sender.to_string();
        let row = self.outbox.read(|conn| {
            conn.query_row(
                &format!(
                    "SELECT {BATCH_COLUMNS} FROM anchor_batches
                      WHERE sender = ?1 AND state IN ('signed', 'pending', 'included')"
                ),
                [&sender],
                batch_row,
            )
            .optional()
            .map_err(CoreError::from)
        })?;
        row.map(Batch::from_row).transpose()
    }

    fn members(&self, batch_id: i64) -> Result<Vec<Member>, CoreError> {
        let rows = self.outbox.read(|conn| {
            conn.prepare_cached(
                "SELECT r.evidence_id, e.case_id, e.wallet, e.wallet_chain, r.file_hash, r.salt,
                        r.requested_by
                   FROM anchor_requests r JOIN evidence e ON e.evidence_id = r.evidence_id
                  WHERE r.batch_id = ?1 ORDER BY r.leaf_index",
            )?
            .query_map([batch_id], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, String>(5)?,
                    r.get::<_, String>(6)?,
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(CoreError::from)
        })?;
        rows.into_iter()
            .map(
                |(evidence_id, case_id, wallet, wallet_chain, hash, salt, by)| {
                    Ok(Member {
                        file_hash: hash_of(&hash, "file hash")?,
                        salt: hash_of(&salt, "leaf salt")?,
                        evidence_id,
                        case_id,
                        wallet,
                        wallet_chain,
                        requested_by: by,
                    })
                },
            )
            .collect()
    }

    /// The case heads of a batch, in leaf order.
    fn heads(&self, batch_id: i64) -> Result<Vec<Head>, CoreError> {
        let rows = self.outbox.read(|conn| {
            conn.prepare_cached(
                "SELECT case_id, sequence, head, salt FROM case_head_anchors
                  WHERE batch_id = ?1 ORDER BY leaf_index",
            )?
            .query_map([batch_id], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(CoreError::from)
        })?;
        rows.into_iter()
            .map(|(case_id, sequence, head, salt)| {
                Ok(Head {
                    salt: hash_of(&salt, "leaf salt")?,
                    case_id,
                    sequence: sequence.max(0) as u64,
                    head,
                })
            })
            .collect()
    }

    /// Up to `limit` case heads that moved since they were last put in a batch that did not
    /// fail (past the event that announced it, once anchored), those never anchored first,
    /// each with a fresh salt.
    fn moved_heads(&self, limit: usize) -> Result<Vec<Head>, CoreError> {
        let rows = self.outbox.read(|conn| {
            conn.prepare_cached(
                "SELECT case_id, chain_length, chain_head FROM (
                     SELECT c.case_id, c.chain_length, c.chain_head,
                            (SELECT COALESCE(h.announced, h.sequence) FROM case_head_anchors h
                               JOIN anchor_batches b ON b.batch_id = h.batch_id
                              WHERE h.case_id = c.case_id AND b.state != 'failed'
                              ORDER BY h.sequence DESC LIMIT 1) AS covered
                       FROM cases c
                      WHERE c.chain_length > 0 AND c.chain_head IS NOT NULL)
                  WHERE covered IS NULL OR covered < chain_length
                  ORDER BY covered IS NOT NULL, case_id LIMIT ?1",
            )?
            .query_map([limit as i64], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, String>(2)?,
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(CoreError::from)
        })?;
        Ok(rows
            .into_iter()
            .map(|(case_id, sequence, head)| Head {
                case_id,
                sequence: sequence.max(0) as u64,
                head,
                salt: leaf_salt(),
            })
            .collect())
    }

    fn waiting_requests(&self, limit: usize) -> Result<Vec<(String, B256, B256)>, CoreError> {
        let rows = self.outbox.read(|conn| {
            conn.prepare_cached(
                "SELECT evidence_id, file_hash, salt FROM anchor_requests
                  WHERE batch_id IS NULL ORDER BY requested_at, evidence_id LIMIT ?1",
            )?
            .query_map([limit as i64], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(CoreError::from)
        })?;
        rows.into_iter()
            .map(|(id, hash, salt)| {
                Ok((
                    id,
                    hash_of(&hash, "file hash")?,
                    hash_of(&salt, "leaf salt")?,
                ))
            })
            .collect()
    }
}

/// What one step of the worker left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// Nothing waits and nothing is in flight.
    Idle,
    /// A transaction is in flight: look again after the poll interval.
    InFlight,
    /// Something moved: take the next step now.
    Moved,
}

/// Why a step did not finish.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// The node cannot be reached: nothing was decided, and no attempt is spent.
    #[error(transparent)]
    Unreachable(RpcError),
    /// The node refused, or the settings do not match it; counted as an attempt.
    #[error("{0}")]
    Failed(String),
    /// The database failed.
    #[error(transparent)]
    Core(#[from] CoreError),
}

impl From<RpcError> for StepError {
    fn from(e: RpcError) -> StepError {
        if e.is_unreachable() {
            StepError::Unreachable(e)
        } else {
            StepError::Failed(e.to_string())
        }
    }
}

/// The anchoring worker for one key and one chain.
pub struct Worker {
    anchoring: Arc<Anchoring>,
    rpc: Rpc,
    key: AnchorKey,
    chain: ChainSettings,
    batch_max: usize,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("endpoint", &self.chain.endpoint)
            .field("chain_id", &self.chain.chain_id)
            .field("address", &self.key.address())
            .finish_non_exhaustive()
    }
}

/// A per-case `system.info` event of a batch's move, naming its files in groups.
fn batch_events(
    clock: &dyn Clock,
    members: &[Member],
    action: &str,
    message: impl Fn(&str) -> String,
    extra: &Value,
) -> Vec<Event> {
    let mut by_case: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for m in members {
        by_case.entry(&m.case_id).or_default().push(&m.evidence_id);
    }
    let mut events = Vec::new();
    for (case_id, ids) in by_case {
        for group in ids.chunks(IDS_PER_EVENT) {
            let mut data = json!({
                "message": message(case_id),
                "action": action,
                "caseId": case_id,
                "evidenceIds": group,
            });
            if let (Some(data), Some(extra)) = (data.as_object_mut(), extra.as_object()) {
                data.extend(extra.clone());
            }
            events.push(system_event(clock, EventType::SystemInfo, data, None));
        }
    }
    events
}

fn system_event(
    clock: &dyn Clock,
    event_type: EventType,
    data: Value,
    user: Option<&str>,
) -> Event {
    Event::new(
        event_type,
        data.as_object().cloned().unwrap_or_default(),
        Metadata {
            source: Some(crate::SOURCE.into()),
            user_id: user.map(str::to_owned),
            ..Metadata::default()
        },
        clock.now(),
        &mut rand::rng(),
    )
}

fn enqueue_all(tx: &WriteTx<'_>, events: &[Event]) -> Result<(), CoreError> {
    for event in events {
        crate::cases::enqueue_in_timeline(tx, event)?;
    }
    Ok(())
}

impl Worker {
    /// A worker anchoring with `key` on `chain`.
    pub fn new(anchoring: Arc<Anchoring>, key: AnchorKey, chain: ChainSettings) -> Worker {
        Worker {
            rpc: Rpc::new(chain.endpoint.clone()),
            anchoring,
            key,
            chain,
            batch_max: BATCH_MAX,
        }
    }

    /// At most `n` files per transaction (tests make several batches out of a few files).
    pub fn with_batch_max(mut self, n: usize) -> Worker {
        self.batch_max = n.clamp(1, BATCH_MAX);
        self
    }

    /// The address that signs, the one to fund with gas.
    pub fn address(&self) -> Address {
        self.key.address()
    }

    /// Steps until `stop` is dropped or sent: woken by a new request, by the poll interval
    /// while a transaction is in flight, after a back-off when a step failed.
    pub async fn run(self, mut stop: tokio::sync::watch::Receiver<bool>) {
        tracing::info!(
            endpoint = %self.chain.endpoint,
            chain_id = self.chain.chain_id,
            address = %self.key.address(),
            "anchoring worker started"
        );
        let (mut unreachable_for, mut failed_for) = (0u32, 0u32);
        let mut warned = Warned::default();
        loop {
            let step = self.step().await;
            if step.is_ok() {
                (unreachable_for, failed_for) = (0, 0);
                if warned.recovered() {
                    tracing::info!("anchoring works again");
                }
            }
            let wait = match step {
                Ok(Progress::Moved) => continue,
                Ok(Progress::InFlight) => Some(self.chain.poll),
                Ok(Progress::Idle) => None,
                Err(StepError::Unreachable(e)) => {
                    if unreachable_for == 0 {
                        tracing::warn!(error = %e, "the chain cannot be reached; anchoring waits");
                    }
                    unreachable_for = unreachable_for.saturating_add(1);
                    Some(backoff(self.chain.poll, unreachable_for.min(6)))
                }
                Err(e) => {
                    // Failures before a batch is signed (a node on another chain, a key
                    // without gas) are counted here, as a batch's are in its row.
                    failed_for = failed_for.saturating_add(1);
                    let error = e.to_string();
                    let attempts = self.record_failure(&error).await.max(failed_for);
                    if warned.is_new(&error) {
                        tracing::warn!(%error, attempts, "an anchoring step failed; it is tried again, and the same failure is not logged again until it changes");
                    } else {
                        tracing::debug!(%error, attempts, "an anchoring step failed again");
                    }
                    Some(backoff(self.chain.poll, attempts))
                }
            };
            let woken = self.anchoring.wake.notified();
            tokio::select! {
                () = woken => {}
                () = async {
                    match wait {
                        Some(wait) => tokio::time::sleep(wait).await,
                        None => std::future::pending().await,
                    }
                } => {}
                changed = stop.changed() => {
                    if changed.is_err() || *stop.borrow() {
                        tracing::info!("anchoring worker stopped");
                        return;
                    }
                }
            }
        }
    }

    /// Records a failed step against the batch in flight (or, before one is signed, against
    /// the waiting requests), returning its attempts so far.
    async fn record_failure(&self, error: &str) -> u32 {
        let sender = self.key.address().to_string();
        let error = error.to_owned();
        let now = self.anchoring.clock.now_ms();
        self.anchoring
            .outbox
            .write(move |tx| {
                let changed = tx.execute(
                    "UPDATE anchor_batches SET attempts = attempts + 1, last_error = ?2, updated_at = ?3
                      WHERE sender = ?1 AND state IN ('signed', 'pending', 'included')",
                    params![sender, error, now],
                )?;
                if changed == 0 {
                    tx.execute(
                        "UPDATE anchor_requests SET last_error = ?1 WHERE batch_id IS NULL",
                        [&error],
                    )?;
                    return Ok::<_, CoreError>(1);
                }
                Ok(tx.query_row(
                    "SELECT attempts FROM anchor_batches
                      WHERE sender = ?1 AND state IN ('signed', 'pending', 'included')",
                    [&sender],
                    |r| r.get::<_, i64>(0),
                )? as u32)
            })
            .await
            .unwrap_or(1)
    }

    /// One step: follows the transaction in flight, or signs the next batch.
    pub async fn step(&self) -> Result<Progress, StepError> {
        match self.anchoring.in_flight(self.key.address())? {
            Some(batch) => self.follow(batch).await,
            None => self.sign_next().await,
        }
    }

    /// Builds, signs and saves the next batch out of the waiting requests; broadcasting is the
    /// next step's.
    pub async fn sign_next(&self) -> Result<Progress, StepError> {
        let waiting = self.anchoring.waiting_requests(self.batch_max)?;
        if waiting.is_empty() {
            return Ok(Progress::Idle);
        }
        let node = self.rpc.chain_id().await?;
        if node != self.chain.chain_id {
            return Err(StepError::Failed(format!(
                "the node at {} is on chain {node}, and CASEWIRE_CHAIN_ID says {}: nothing is signed until they agree",
                self.chain.endpoint, self.chain.chain_id
            )));
        }
        // The timelines' heads ride with the files, after them in the tree.
        let heads = self.anchoring.moved_heads(self.batch_max)?;
        let leaves = waiting
            .iter()
            .map(|(_, hash, salt)| leaf(salt, hash))
            .chain(heads.iter().map(Head::leaf))
            .collect::<Vec<_>>();
        let tree = Tree::new(leaves).ok_or_else(|| StepError::Failed("an empty batch".into()))?;
        let root = tree.root();
        let prepared = casewire_chain::prepare(
            &self.rpc,
            &self.key,
            self.chain.chain_id,
            self.chain.contract,
            root,
        )
        .await?;
        let SignedTx { hash, raw } = self.key.sign(&prepared);
        let ids: Vec<String> = waiting.into_iter().map(|(id, _, _)| id).collect();
        let (count, case_heads) = (ids.len(), heads.len());
        let now = self.anchoring.clock.now_ms();
        let sender = self.key.address().to_string();
        let contract = self.chain.contract.map(|c| c.to_string());
        let (chain_id, nonce, depth) = (
            self.chain.chain_id,
            prepared.nonce,
            self.chain.confirmations,
        );
        let saved = self
            .anchoring
            .outbox
            .write(move |tx| {
                tx.execute(
                    "INSERT INTO anchor_batches (chain_id, sender, nonce, contract, root, tx_hash,
                         raw_tx, state, required_confirmations, created_at, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'signed', ?8, ?9, ?9)",
                    params![
                        chain_id as i64,
                        sender,
                        nonce as i64,
                        contract,
                        root.to_string(),
                        hash.to_string(),
                        raw.to_vec(),
                        depth as i64,
                        now
                    ],
                )?;
                let batch_id = tx.last_insert_rowid();
                let mut assign = tx.prepare_cached(
                    "UPDATE anchor_requests SET batch_id = ?1, leaf_index = ?2, last_error = NULL
                      WHERE evidence_id = ?3 AND batch_id IS NULL",
                )?;
                for (i, id) in ids.iter().enumerate() {
                    if assign.execute(params![batch_id, i as i64, id])? != 1 {
                        // Taken meanwhile: nothing is kept, nothing was broadcast.
                        return Err(CoreError::Conflict(format!(
                            "the anchor request of {id} changed while its batch was signed"
                        )));
                    }
                }
                let mut head_row = tx.prepare_cached(
                    "INSERT INTO case_head_anchors (batch_id, case_id, sequence, head, salt, leaf_index)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )?;
                for (i, head) in heads.iter().enumerate() {
                    head_row.execute(params![
                        batch_id,
                        head.case_id,
                        head.sequence as i64,
                        head.head,
                        head.salt.to_string(),
                        (count + i) as i64
                    ])?;
                }
                Ok(batch_id)
            })
            .await?;
        tracing::info!(batch = saved, files = count, case_heads, nonce, tx = %hash, "anchoring transaction signed and saved");
        Ok(Progress::Moved)
    }

    /// Takes the batch in flight one state further, if the chain says so.
    async fn follow(&self, batch: Batch) -> Result<Progress, StepError> {
        match batch.state.as_str() {
            "signed" => {
                self.broadcast(&batch).await?;
                let members = self.anchoring.members(batch.id)?;
                let events = batch_events(
                    &*self.anchoring.clock,
                    &members,
                    "anchor.broadcast",
                    |case| {
                        format!(
                            "The anchoring transaction {} of evidence of {case} was sent to the chain",
                            batch.tx_hash
                        )
                    },
                    &json!({"txHash": batch.tx_hash.to_string(), "chainId": batch.chain_id}),
                );
                self.set_state(&batch, "pending", None, events).await?;
                Ok(Progress::Moved)
            }
            "pending" => match self.rpc.receipt(batch.tx_hash).await? {
                Some(receipt) if receipt.status.to::<u64>() == 1 => {
                    let block = (receipt.block_number.to::<u64>(), receipt.block_hash);
                    let members = self.anchoring.members(batch.id)?;
                    let events = batch_events(
                        &*self.anchoring.clock,
                        &members,
                        "anchor.included",
                        |case| {
                            format!(
                                "The anchoring transaction of evidence of {case} is in block {}",
                                block.0
                            )
                        },
                        &json!({"txHash": batch.tx_hash.to_string(), "chainId": batch.chain_id, "blockNumber": block.0}),
                    );
                    self.set_state(&batch, "included", Some(block), events)
                        .await?;
                    Ok(Progress::Moved)
                }
                Some(_) => {
                    self.fail(
                        &batch,
                        format!(
                            "transaction {} reverted; its files wait for the next batch",
                            batch.tx_hash
                        ),
                    )
                    .await?;
                    Ok(Progress::Moved)
                }
                None => {
                    if self.rpc.mined_nonce(batch.sender).await? > batch.nonce {
                        // Mined nonce past ours with no receipt of ours: another transaction of
                        // this key took the nonce.
                        self.fail(&batch, format!(
                            "nonce {} of {} was used by another transaction, so {} will never be mined; its files wait for the next batch",
                            batch.nonce, batch.sender, batch.tx_hash
                        ))
                        .await?;
                        return Ok(Progress::Moved);
                    }
                    self.broadcast(&batch).await?;
                    Ok(Progress::InFlight)
                }
            },
            "included" => {
                let receipt = self.rpc.receipt(batch.tx_hash).await?;
                let canonical = match (&receipt, batch.block_number) {
                    (Some(r), Some(number)) => {
                        let block = self.rpc.block(BlockTag::Number(number)).await?;
                        block.is_some_and(|b| b.hash == r.block_hash)
                            && Some(r.block_hash) == batch.block_hash
                    }
                    _ => false,
                };
                if !canonical {
                    let members = self.anchoring.members(batch.id)?;
                    let events = batch_events(
                        &*self.anchoring.clock,
                        &members,
                        "anchor.reorganised",
                        |case| {
                            format!(
                                "Block {} of the anchoring transaction of evidence of {case} left the chain (a reorganisation); the transaction is pending again",
                                batch.block_number.unwrap_or_default()
                            )
                        },
                        &json!({"txHash": batch.tx_hash.to_string(), "chainId": batch.chain_id}),
                    );
                    tracing::warn!(tx = %batch.tx_hash, block = ?batch.block_number, "anchoring block reorganised away; pending again");
                    self.set_state(&batch, "pending", None, events).await?;
                    return Ok(Progress::Moved);
                }
                let number = batch.block_number.unwrap_or_default();
                let head = self.rpc.block_number().await?;
                let confirmations = (head + 1).saturating_sub(number);
                if confirmations >= self.chain.confirmations {
                    self.anchored(&batch, confirmations).await?;
                    return Ok(Progress::Moved);
                }
                self.set_confirmations(&batch, confirmations).await?;
                Ok(Progress::InFlight)
            }
            other => Err(StepError::Failed(format!(
                "an anchor batch in state {other:?}"
            ))),
        }
    }

    /// Broadcasts the saved transaction; a node that has it (or has its nonce used) is fine.
    async fn broadcast(&self, batch: &Batch) -> Result<(), StepError> {
        match self.rpc.send_raw(&batch.raw).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_already_known() => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    async fn set_state(
        &self,
        batch: &Batch,
        state: &'static str,
        block: Option<(u64, B256)>,
        events: Vec<Event>,
    ) -> Result<(), StepError> {
        let (id, from, now) = (batch.id, batch.state.clone(), self.anchoring.clock.now_ms());
        let (number, hash) = match block {
            Some((n, h)) => (Some(n as i64), Some(h.to_string())),
            None => (None, None),
        };
        self.anchoring
            .outbox
            .write(move |tx| {
                let changed = tx.execute(
                    "UPDATE anchor_batches SET state = ?2, block_number = ?3, block_hash = ?4,
                         confirmations = CASE WHEN ?3 IS NULL THEN 0 ELSE 1 END,
                         attempts = 0, last_error = NULL, updated_at = ?5
                      WHERE batch_id = ?1 AND state = ?6",
                    params![id, state, number, hash, now, from],
                )?;
                if changed == 1 {
                    enqueue_all(tx, &events)?;
                }
                Ok::<_, CoreError>(())
            })
            .await?;
        tracing::info!(batch = id, state, "anchoring batch moved");
        Ok(())
    }

    async fn set_confirmations(&self, batch: &Batch, confirmations: u64) -> Result<(), StepError> {
        let id = batch.id;
        self.anchoring
            .outbox
            .write(move |tx| {
                tx.execute(
                    "UPDATE anchor_batches SET confirmations = ?2, attempts = 0, last_error = NULL
                      WHERE batch_id = ?1",
                    params![id, confirmations as i64],
                )?;
                Ok::<_, CoreError>(())
            })
            .await?;
        Ok(())
    }

    /// Ends a batch that can never be anchored; its files wait again.
    async fn fail(&self, batch: &Batch, reason: String) -> Result<(), StepError> {
        tracing::warn!(batch = batch.id, tx = %batch.tx_hash, %reason, "anchoring batch failed");
        let members = self.anchoring.members(batch.id)?;
        let events = batch_events(
            &*self.anchoring.clock,
            &members,
            "anchor.failed",
            |_| reason.clone(),
            &json!({"txHash": batch.tx_hash.to_string(), "chainId": batch.chain_id}),
        );
        let (id, now) = (batch.id, self.anchoring.clock.now_ms());
        self.anchoring
            .outbox
            .write(move |tx| {
                tx.execute(
                    "UPDATE anchor_batches SET state = 'failed', last_error = ?2, updated_at = ?3
                      WHERE batch_id = ?1",
                    params![id, reason, now],
                )?;
                tx.execute(
                    "UPDATE anchor_requests SET batch_id = NULL, leaf_index = NULL, last_error = ?2
                      WHERE batch_id = ?1",
                    params![id, reason],
                )?;
                enqueue_all(tx, &events)?;
                Ok::<_, CoreError>(())
            })
            .await?;
        Ok(())
    }

    /// Records each file's anchor, proof and `evidence.anchored` event, with the batch's end.
    async fn anchored(&self, batch: &Batch, confirmations: u64) -> Result<(), StepError> {
        let members = self.anchoring.members(batch.id)?;
        let heads = self.anchoring.heads(batch.id)?;
        let leaves = members
            .iter()
            .map(|m| leaf(&m.salt, &m.file_hash))
            .chain(heads.iter().map(Head::leaf))
            .collect();
        let tree = Tree::new(leaves).ok_or_else(|| StepError::Failed("an empty batch".into()))?;
        if tree.root() != batch.root {
            return Err(StepError::Core(CoreError::Storage(format!(
                "the files and case heads of anchor batch {} no longer make its root {}",
                batch.id, batch.root
            ))));
        }
        let block_number = batch.block_number.unwrap_or_default();
        let contract = batch.contract.map(|c| c.to_string());
        let on_chain = OnChain {
            root: batch.root,
            chain_id: batch.chain_id,
            tx_hash: batch.tx_hash,
            block_number,
            block_hash: batch.block_hash.unwrap_or_default(),
            contract_address: batch.contract,
            sender: batch.sender,
        };
        let clock = &*self.anchoring.clock;
        let now = clock.now_ms();
        let mut rows = Vec::with_capacity(members.len());
        for (i, m) in members.iter().enumerate() {
            let proof = Proof::new(
                m.evidence_id.clone(),
                m.file_hash,
                m.salt,
                tree.path(i).unwrap_or_default(),
                on_chain.clone(),
            );
            let event = system_event(
                clock,
                EventType::EvidenceAnchored,
                json!({
                    "evidenceId": m.evidence_id,
                    "caseId": m.case_id,
                    "wallet": m.wallet,
                    "walletChain": m.wallet_chain,
                    "fileHash": hex::encode(m.file_hash),
                    "txHash": batch.tx_hash.to_string(),
                    "blockNumber": block_number,
                    "contractAddress": contract,
                    "merkleRoot": batch.root.to_string(),
                    "chainId": batch.chain_id,
                    "sender": batch.sender.to_string(),
                    "confirmations": confirmations,
                }),
                Some(&m.requested_by),
            );
            let proof = serde_json::to_string(&proof)
                .map_err(|e| CoreError::Storage(format!("writing a proof: {e}")))?;
            rows.push((m.evidence_id.clone(), m.requested_by.clone(), proof, event));
        }
        let mut head_rows = Vec::with_capacity(heads.len());
        for (i, head) in heads.iter().enumerate() {
            let proof = CaseHeadProof {
                format: CASE_HEAD_PROOF_FORMAT.into(),
                case_id: head.case_id.clone(),
                sequence: head.sequence,
                head: head.head.clone(),
                salt: head.salt,
                path: tree.path(members.len() + i).unwrap_or_default(),
                on_chain: on_chain.clone(),
            };
            let document = serde_json::to_value(&proof)
                .map_err(|e| CoreError::Storage(format!("writing a case head's proof: {e}")))?;
            // The proof goes downstream too: a consumer checks its copy of the case against
            // the chain with it, and with nothing from this machine.
            let event = system_event(
                clock,
                EventType::SystemInfo,
                json!({
                    "message": format!(
                        "The timeline of {} up to event {} was anchored on chain in block {block_number}",
                        head.case_id, head.sequence
                    ),
                    "action": "anchor.case_head",
                    "caseId": head.case_id,
                    "sequence": head.sequence,
                    "head": head.head,
                    "txHash": batch.tx_hash.to_string(),
                    "blockNumber": block_number,
                    "chainId": batch.chain_id,
                    "merkleRoot": batch.root.to_string(),
                    "proof": document,
                }),
                None,
            );
            head_rows.push((head.case_id.clone(), document.to_string(), event));
        }
        let (id, tx_hash) = (batch.id, batch.tx_hash.to_string());
        let contract_text = contract.unwrap_or_default();
        let (count, case_heads) = (rows.len(), head_rows.len());
        self.anchoring
            .outbox
            .write(move |tx| {
                let changed = tx.execute(
                    "UPDATE anchor_batches SET state = 'anchored', confirmations = ?2,
                         attempts = 0, last_error = NULL, updated_at = ?3
                      WHERE batch_id = ?1 AND state = 'included'",
                    params![id, confirmations as i64, now],
                )?;
                if changed != 1 {
                    return Ok(());
                }
                let mut insert = tx.prepare_cached(
                    "INSERT INTO evidence_anchors (tx_hash, evidence_id, block_number,
                         contract_address, anchored_by, anchored_at, proof)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                     ON CONFLICT (tx_hash, evidence_id) DO UPDATE SET proof = excluded.proof",
                )?;
                for (evidence_id, by, proof, event) in &rows {
                    insert.execute(params![
                        tx_hash,
                        evidence_id,
                        block_number as i64,
                        contract_text,
                        by,
                        now,
                        proof
                    ])?;
                    crate::cases::enqueue_in_timeline(tx, event)?;
                }
                let mut head_proof = tx.prepare_cached(
                    "UPDATE case_head_anchors SET proof = ?3,
                         announced = (SELECT chain_length FROM cases WHERE case_id = ?2)
                      WHERE batch_id = ?1 AND case_id = ?2",
                )?;
                for (case_id, proof, event) in &head_rows {
                    crate::cases::enqueue_in_timeline(tx, event)?;
                    head_proof.execute(params![id, case_id, proof])?;
                }
                Ok::<_, CoreError>(())
            })
            .await?;
        tracing::info!(batch = batch.id, files = count, case_heads, tx = %batch.tx_hash, block = block_number, "evidence anchored");
        Ok(())
    }
}

/// `base` doubled `attempts - 1` times, at most [`BACKOFF_MAX`].
fn backoff(base: Duration, attempts: u32) -> Duration {
    let factor = 1u32 << attempts.saturating_sub(1).min(16);
    base.saturating_mul(factor).min(BACKOFF_MAX)
}

/// The last failure the anchoring worker warned of: the same one again (a lasting
/// misconfiguration, a key without gas) is logged at debug level, so the log is not filled
/// with it, and a success after it is logged once.
#[derive(Debug, Default)]
struct Warned(Option<String>);

impl Warned {
    /// Whether `error` is to be warned of: it differs from the last one warned of.
    fn is_new(&mut self, error: &str) -> bool {
        if self.0.as_deref() == Some(error) {
            return false;
        }
        self.0 = Some(error.to_owned());
        true
    }

    /// After a step that worked: whether a failure had been warned of (and is now over).
    fn recovered(&mut self) -> bool {
        self.0.take().is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_the_poll_interval_up_to_five_minutes() {
        let base = Duration::from_secs(5);
        assert_eq!(backoff(base, 1), base);
        assert_eq!(backoff(base, 2), Duration::from_secs(10));
        assert_eq!(backoff(base, 4), Duration::from_secs(40));
        assert_eq!(backoff(base, 30), BACKOFF_MAX);
    }

    #[test]
    fn a_lasting_failure_is_warned_of_once_and_again_when_it_changes_or_comes_back() {
        let mut warned = Warned::default();
        assert!(!warned.recovered(), "nothing to recover from");
        assert!(warned.is_new("the key has no gas"));
        assert!(!warned.is_new("the key has no gas"), "the same again");
        assert!(!warned.is_new("the key has no gas"));
        assert!(warned.is_new("the node is on chain 1"), "another failure");
        assert!(warned.is_new("the key has no gas"), "the first one back");
        assert!(warned.recovered(), "a success after a warning");
        assert!(!warned.recovered(), "said once");
        assert!(
            warned.is_new("the key has no gas"),
            "a failure after a success"
        );
    }
}
