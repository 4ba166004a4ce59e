//! Anchoring evidence hashes on an EVM chain, and checking anchors with nothing but a
//! JSON-RPC endpoint.
//!
//! A chain is a network dependency like Kafka: the crate knows nothing of SQLite, HTTP servers
//! or the outbox. It builds a batch's salted Merkle tree ([`merkle`]), signs the one EIP-1559
//! transaction that carries its root ([`tx`]), talks to a node ([`rpc`]) and checks proofs and
//! typed-in receipts ([`proof`]). Which files wait, which transaction is in flight and what
//! is anchored is the domain's (`casewire-core`), committed with its events.
#![deny(missing_docs)]

pub mod merkle;
pub mod proof;
pub mod rpc;
pub mod tx;

pub use alloy_primitives::{Address, B256, Bytes};

use rpc::{BlockTag, Rpc, RpcError};
use tx::{AnchorKey, AnchorTx, Fees, calldata, recipient};

/// Gas estimates are raised by this many percent, for a state that changes between
/// estimating and mining.
const GAS_MARGIN_PERCENT: u64 = 20;

/// The transaction that anchors `root` now with `key`: its next nonce, a gas limit from the
/// node's estimate with a margin, and EIP-1559 fees of twice the head's base fee plus the
/// node's suggested tip (room for five full blocks of base-fee rises, 12.5 % each, before it stalls).
pub async fn prepare(
    rpc: &Rpc,
    key: &AnchorKey,
    chain_id: u64,
    contract: Option<Address>,
    root: B256,
) -> Result<AnchorTx, RpcError> {
    let nonce = rpc.pending_nonce(key.address()).await?;
    let to = recipient(key, contract);
    let gas = rpc
        .estimate_gas(key.address(), to, &calldata(root, contract))
        .await?;
    let tip = rpc.max_priority_fee().await?;
    let base = rpc
        .block(BlockTag::Latest)
        .await?
        .and_then(|block| block.base_fee_per_gas)
        .map_or(0, |fee| fee.to::<u128>());
    Ok(AnchorTx {
        chain_id,
        nonce,
        fees: Fees {
            gas_limit: gas + gas * GAS_MARGIN_PERCENT / 100,
            max_fee_per_gas: 2 * base + tip,
            max_priority_fee_per_gas: tip,
        },
        contract,
        root,
    })
}
