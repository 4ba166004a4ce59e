//! A file's anchor proof, and checking it (or a receipt typed in by a person) against a chain
//! with nothing but a JSON-RPC endpoint.
//!
//! A [`Proof`] is a self-contained JSON document: the file's SHA-256, its leaf salt, the
//! Merkle path to the batch's root, and where the root went on chain ([`OnChain`]: chain id,
//! transaction, block number and hash, contract, sender). A [`CaseHeadProof`] is the same for
//! a case timeline's head, anchored in the same batches. [`verify_proof`] checks, in order:
//! 1. the file, when given, hashes to the proof's file hash;
//! 2. salt, file hash and path lead to the root ([`crate::merkle::root_from`]);
//! 3. the node is on the proof's chain;
//! 4. the transaction exists, is mined and did not revert, was sent by the proof's sender and
//!    carries the root: to the contract, which logged `Anchored(root, sender)`, or, with no
//!    contract, from the sender to itself with the root as its calldata;
//! 5. it sits in the proof's block, and that block is still on the canonical chain;
//!
//! and reports how many confirmations the block has. Each failure is one [`Refusal`], named
//! precisely, with a stable [`Refusal::code`].

use alloy_primitives::{Address, B256};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::merkle::{Step, leaf, root_from};
use crate::rpc::{BlockTag, Receipt, Rpc, RpcError, Transaction};
use crate::tx::{anchor_selector, anchored_topic};

/// The `format` of proofs this version writes and reads.
pub const PROOF_FORMAT: &str = "casewire-anchor-proof/1";

/// Everything needed to show that a file was anchored, checkable by anyone with an endpoint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Proof {
    /// [`PROOF_FORMAT`].
    pub format: String,
    /// The evidence it is for.
    pub evidence_id: String,
    /// The SHA-256 of the file's plaintext.
    pub file_hash: B256,
    /// The leaf's random salt.
    pub salt: B256,
    /// From the leaf up to the root.
    pub path: Vec<Step>,
    /// Where the batch's root is on chain.
    #[serde(flatten)]
    pub on_chain: OnChain,
}

impl Proof {
    /// The proof of the file `evidence_id` at `path` in the batch anchored at `on_chain`, in
    /// this version's [`PROOF_FORMAT`].
    pub fn new(
        evidence_id: String,
        file_hash: B256,
        salt: B256,
        path: Vec<Step>,
        on_chain: OnChain,
    ) -> Proof {
        Proof {
            format: PROOF_FORMAT.into(),
            evidence_id,
            file_hash,
            salt,
            path,
            on_chain,
        }
    }
}

/// The `format` of case-head proofs this version writes and reads.
pub const CASE_HEAD_PROOF_FORMAT: &str = "casewire-case-head-proof/1";

/// Everything needed to show that a case's timeline had a given head at a time: its leaf is
/// `leaf(salt, case_head_digest(case, sequence, head))` ([`case_head_digest`]), in the same
/// batches as the files.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CaseHeadProof {
    /// [`CASE_HEAD_PROOF_FORMAT`].
    pub format: String,
    /// The case.
    pub case_id: String,
    /// The place in the case's chain of the event whose hash is the head.
    pub sequence: u64,
    /// That event's `caseChain.hash`, 64 lowercase hexadecimal digits.
    pub head: String,
    /// The leaf's random salt.
    pub salt: B256,
    /// From the leaf up to the root.
    pub path: Vec<Step>,
    /// Where the batch's root is on chain.
    #[serde(flatten)]
    pub on_chain: OnChain,
}

/// Where a batch's root went on chain: what every proof of the batch shares.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OnChain {
    /// The batch's Merkle root, the one value on chain.
    pub root: B256,
    /// The chain (EIP-155 id).
    pub chain_id: u64,
    /// The anchoring transaction.
    pub tx_hash: B256,
    /// The block it was mined in.
    pub block_number: u64,
    /// That block's hash.
    pub block_hash: B256,
    /// The anchoring contract, if one was used.
    pub contract_address: Option<Address>,
    /// The address that signed the transaction.
    pub sender: Address,
}

impl OnChain {
    /// Where `receipt`'s transaction put the batch's `root`, signed by `sender` on `chain_id`
    /// (to `contract_address` when a contract was used).
    pub fn from_receipt(
        root: B256,
        chain_id: u64,
        receipt: &Receipt,
        contract_address: Option<Address>,
        sender: Address,
    ) -> OnChain {
        OnChain {
            root,
            chain_id,
            tx_hash: receipt.transaction_hash,
            block_number: receipt.block_number.to(),
            block_hash: receipt.block_hash,
            contract_address,
            sender,
        }
    }
}

/// What a case head's leaf commits to: the SHA-256 of the UTF-8 text
/// `casewire-case-head/1\n{case id}\n{sequence in decimal}\n{head}` (a case id holds no line
/// break).
pub fn case_head_digest(case_id: &str, sequence: u64, head: &str) -> B256 {
    sha256(format!("casewire-case-head/1\n{case_id}\n{sequence}\n{head}").as_bytes())
}

/// A receipt as a person types it in: only the file's own hash can be looked for on chain.
#[derive(Clone, Copy, Debug)]
pub struct ReceiptClaim {
    /// The chain the person says it is on.
    pub chain_id: u64,
    /// The transaction.
    pub tx_hash: B256,
    /// The block the person says it is in.
    pub block_number: u64,
    /// The contract the person says it went to.
    pub contract_address: Address,
    /// The file's SHA-256, which the transaction must carry.
    pub file_hash: B256,
}

/// What a successful check found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Inclusion {
    /// The block the transaction is in.
    pub block_number: u64,
    /// Its hash.
    pub block_hash: B256,
    /// How deep it is: 1 when it is the head.
    pub confirmations: u64,
}

/// Why a proof or a receipt does not hold.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// The proof is not in a format this version reads.
    #[error("the proof's format is {found:?}, not {expected:?}")]
    UnknownFormat {
        /// The proof's.
        found: String,
        /// The one expected.
        expected: &'static str,
    },
    /// The file given does not hash to the proof's file hash.
    #[error("the file's SHA-256 is {actual}, the proof is for {expected}")]
    FileHashMismatch {
        /// The proof's.
        expected: B256,
        /// The file's.
        actual: B256,
    },
    /// Salt, file hash and path lead somewhere else than the root.
    #[error("the Merkle path leads to {actual}, not to the proof's root {expected}")]
    PathDoesNotLeadToRoot {
        /// The proof's root.
        expected: B256,
        /// Where the path leads.
        actual: B256,
    },
    /// The node is on another chain.
    #[error("the node is on chain {node}, the anchor is on chain {claimed}")]
    ChainIdMismatch {
        /// The chain claimed.
        claimed: u64,
        /// The node's chain.
        node: u64,
    },
    /// The node knows no such transaction.
    #[error("the chain knows no transaction {0}")]
    UnknownTransaction(B256),
    /// The transaction is known but not in a block yet.
    #[error("transaction {0} is not mined yet")]
    NotMined(B256),
    /// The transaction was mined and reverted.
    #[error("transaction {0} reverted")]
    Reverted(B256),
    /// The transaction went to another address than the anchoring contract.
    #[error("transaction went to {}, not to the anchoring contract {expected}", actual.map_or("no address (it created a contract)".to_owned(), |a| a.to_string()))]
    WrongContract {
        /// The contract claimed.
        expected: Address,
        /// Where it went (`None`: it created a contract).
        actual: Option<Address>,
    },
    /// The transaction was signed by another address than the proof's sender.
    #[error("transaction was sent by {actual}, the proof names {expected}")]
    SenderMismatch {
        /// The proof's sender.
        expected: Address,
        /// The transaction's.
        actual: Address,
    },
    /// The transaction does not carry the hash.
    #[error("transaction {tx} does not carry {hash}")]
    HashNotInTransaction {
        /// The transaction.
        tx: B256,
        /// The hash looked for (the root, or a typed-in receipt's file hash).
        hash: B256,
    },
    /// The transaction is in another block than claimed: the chain reorganised, or the claim
    /// is wrong.
    #[error("transaction is in block {actual_number} ({actual_hash}), the anchor names block {claimed_number}{}", claimed_hash.map(|h| format!(" ({h})")).unwrap_or_default())]
    BlockMismatch {
        /// The block number claimed.
        claimed_number: u64,
        /// The block hash claimed, when known.
        claimed_hash: Option<B256>,
        /// Where the receipt puts it.
        actual_number: u64,
        /// That block's hash.
        actual_hash: B256,
    },
}

impl Refusal {
    /// A stable machine-readable code for the API and the UI.
    pub fn code(&self) -> &'static str {
        match self {
            Self::UnknownFormat { .. } => "proof_format_unknown",
            Self::FileHashMismatch { .. } => "file_hash_mismatch",
            Self::PathDoesNotLeadToRoot { .. } => "merkle_path_mismatch",
            Self::ChainIdMismatch { .. } => "chain_id_mismatch",
            Self::UnknownTransaction(_) => "transaction_unknown",
            Self::NotMined(_) => "transaction_not_mined",
            Self::Reverted(_) => "transaction_reverted",
            Self::WrongContract { .. } => "wrong_contract",
            Self::SenderMismatch { .. } => "sender_mismatch",
            Self::HashNotInTransaction { .. } => "hash_not_in_transaction",
            Self::BlockMismatch { .. } => "block_mismatch",
        }
    }
}

/// A check could not be finished, or did not hold.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The node could not be asked (or answered nonsense): nothing is decided.
    #[error(transparent)]
    Rpc(#[from] RpcError),
    /// The chain says no.
    #[error(transparent)]
    Refused(#[from] Refusal),
}

/// The SHA-256 of `bytes`, as proofs write file hashes.
pub fn sha256(bytes: &[u8]) -> B256 {
    B256::from(<[u8; 32]>::from(Sha256::digest(bytes)))
}

/// The SHA-256 of everything `reader` yields, read in 64 KiB pieces (an evidence file of any
/// size).
pub fn sha256_of(mut reader: impl std::io::Read) -> std::io::Result<B256> {
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        match reader.read(&mut buffer)? {
            0 => return Ok(B256::from(<[u8; 32]>::from(hasher.finalize()))),
            n => hasher.update(&buffer[..n]),
        }
    }
}

/// Checks `proof` against the node behind `rpc`, and against the file's SHA-256 when given.
pub async fn verify_proof(
    rpc: &Rpc,
    proof: &Proof,
    file_hash: Option<B256>,
) -> Result<Inclusion, VerifyError> {
    expect_format(&proof.format, PROOF_FORMAT)?;
    if let Some(actual) = file_hash.filter(|actual| *actual != proof.file_hash) {
        return Err(Refusal::FileHashMismatch {
            expected: proof.file_hash,
            actual,
        }
        .into());
    }
    verify_leaf(
        rpc,
        leaf(&proof.salt, &proof.file_hash),
        &proof.path,
        &proof.on_chain,
    )
    .await
}

/// Checks a case head's `proof` against the node behind `rpc`: the head, its place and its
/// case lead by the path to a root that the transaction carries.
pub async fn verify_case_head(rpc: &Rpc, proof: &CaseHeadProof) -> Result<Inclusion, VerifyError> {
    expect_format(&proof.format, CASE_HEAD_PROOF_FORMAT)?;
    let digest = case_head_digest(&proof.case_id, proof.sequence, &proof.head);
    verify_leaf(
        rpc,
        leaf(&proof.salt, &digest),
        &proof.path,
        &proof.on_chain,
    )
    .await
}

fn expect_format(found: &str, expected: &'static str) -> Result<(), Refusal> {
    if found == expected {
        Ok(())
    } else {
        Err(Refusal::UnknownFormat {
            found: found.to_owned(),
            expected,
        })
    }
}

/// Checks that `leaf` and `path` lead to the root, and that the root is where `on` says.
async fn verify_leaf(
    rpc: &Rpc,
    leaf: B256,
    path: &[Step],
    on: &OnChain,
) -> Result<Inclusion, VerifyError> {
    let reached = root_from(leaf, path);
    if reached != on.root {
        return Err(Refusal::PathDoesNotLeadToRoot {
            expected: on.root,
            actual: reached,
        }
        .into());
    }
    let (tx, receipt) = mined(rpc, on.chain_id, on.tx_hash).await?;
    if tx.from != on.sender {
        return Err(Refusal::SenderMismatch {
            expected: on.sender,
            actual: tx.from,
        }
        .into());
    }
    let carried = match on.contract_address {
        Some(contract) => {
            expect_contract(&tx, contract)?;
            logged(&receipt, contract, on.root, Some(on.sender))
        }
        None => tx.to == Some(tx.from) && tx.input.as_ref() == on.root.as_slice(),
    };
    if !carried {
        return Err(Refusal::HashNotInTransaction {
            tx: on.tx_hash,
            hash: on.root,
        }
        .into());
    }
    included(rpc, &receipt, on.block_number, Some(on.block_hash)).await
}

/// Checks a receipt typed in by a person: the transaction exists on the claimed chain, is
/// mined in the claimed block, did not revert, went to the claimed contract, and carries the
/// file's own hash (as `anchor(fileHash)`'s argument, in a log of the contract, or as its
/// calldata).
pub async fn verify_receipt(rpc: &Rpc, claim: &ReceiptClaim) -> Result<Inclusion, VerifyError> {
    let (tx, receipt) = mined(rpc, claim.chain_id, claim.tx_hash).await?;
    expect_contract(&tx, claim.contract_address)?;
    let hash = claim.file_hash.as_slice();
    let input = tx.input.as_ref();
    let carried = input == hash
        || (input.len() == 36 && input[..4] == anchor_selector() && &input[4..] == hash)
        || logged(&receipt, claim.contract_address, claim.file_hash, None);
    if !carried {
        return Err(Refusal::HashNotInTransaction {
            tx: claim.tx_hash,
            hash: claim.file_hash,
        }
        .into());
    }
    included(rpc, &receipt, claim.block_number, None).await
}

/// The transaction and its receipt, refused unless on `chain_id`, known, mined and successful.
async fn mined(
    rpc: &Rpc,
    chain_id: u64,
    tx_hash: B256,
) -> Result<(Transaction, Receipt), VerifyError> {
    let node = rpc.chain_id().await?;
    if node != chain_id {
        return Err(Refusal::ChainIdMismatch {
            claimed: chain_id,
            node,
        }
        .into());
    }
    let tx = rpc
        .transaction(tx_hash)
        .await?
        .ok_or(Refusal::UnknownTransaction(tx_hash))?;
    let receipt = rpc
        .receipt(tx_hash)
        .await?
        .ok_or(Refusal::NotMined(tx_hash))?;
    if receipt.status.is_zero() {
        return Err(Refusal::Reverted(tx_hash).into());
    }
    Ok((tx, receipt))
}

fn expect_contract(tx: &Transaction, contract: Address) -> Result<(), Refusal> {
    if tx.to == Some(contract) {
        Ok(())
    } else {
        Err(Refusal::WrongContract {
            expected: contract,
            actual: tx.to,
        })
    }
}

/// Whether `contract` logged `Anchored(hash, sender)` in `receipt` (any sender when `None`).
fn logged(receipt: &Receipt, contract: Address, hash: B256, sender: Option<Address>) -> bool {
    let topic = anchored_topic();
    receipt.logs.iter().any(|log| {
        log.address == contract
            && log.topics.first() == Some(&topic)
            && log.data.len() == 64
            && &log.data[..32] == hash.as_slice()
            && sender.is_none_or(|sender| log.data[44..64] == sender[..])
    })
}

/// Refused unless the receipt's block is the claimed one and still canonical; else how deep.
async fn included(
    rpc: &Rpc,
    receipt: &Receipt,
    claimed_number: u64,
    claimed_hash: Option<B256>,
) -> Result<Inclusion, VerifyError> {
    let number = receipt.block_number.to::<u64>();
    let mismatch = || Refusal::BlockMismatch {
        claimed_number,
        claimed_hash,
        actual_number: number,
        actual_hash: receipt.block_hash,
    };
    if number != claimed_number || claimed_hash.is_some_and(|h| h != receipt.block_hash) {
        return Err(mismatch().into());
    }
    let canonical = rpc.block(BlockTag::Number(number)).await?;
    if canonical.is_none_or(|block| block.hash != receipt.block_hash) {
        return Err(mismatch().into());
    }
    let head = rpc.block_number().await?;
    Ok(Inclusion {
        block_number: number,
        block_hash: receipt.block_hash,
        confirmations: head.saturating_sub(number) + 1,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_case_heads_digest_is_the_sha256_of_the_documented_text() {
        // printf 'casewire-case-head/1\nCASE-2026-001\n12\n4141…41' | sha256sum
        let expected: B256 = "0x51b9a5af6fa3b05130c5f97c43ffe7c097b3f83d58f8ad1c22c4172502209aae"
            .parse()
            .expect("hash");
        assert_eq!(
            case_head_digest("CASE-2026-001", 12, &"41".repeat(32)),
            expected
        );
        assert_ne!(
            case_head_digest("CASE-2026-001", 11, &"41".repeat(32)),
            expected,
            "the place is committed to"
        );
    }

    #[test]
    fn a_proof_reads_and_writes_as_one_flat_document() {
        let on_chain = OnChain {
            root: B256::repeat_byte(1),
            chain_id: 31337,
            tx_hash: B256::repeat_byte(2),
            block_number: 7,
            block_hash: B256::repeat_byte(3),
            contract_address: None,
            sender: Address::repeat_byte(4),
        };
        let proof = CaseHeadProof {
            format: CASE_HEAD_PROOF_FORMAT.into(),
            case_id: "CASE-2026-001".into(),
            sequence: 12,
            head: "41".repeat(32),
            salt: B256::repeat_byte(5),
            path: Vec::new(),
            on_chain,
        };
        let document = serde_json::to_value(&proof).expect("json");
        assert_eq!(document["txHash"], serde_json::json!(B256::repeat_byte(2)));
        assert_eq!(document["blockNumber"], 7);
        assert!(document.get("onChain").is_none(), "{document}");
        let read: CaseHeadProof = serde_json::from_value(document).expect("reads back");
        assert_eq!(read, proof);
    }
}
