//! The anchoring key and the one transaction it signs: an EIP-1559 transaction carrying a
//! batch's Merkle root.
//!
//! With a contract configured, the transaction calls `anchor(bytes32 root)` on it and the
//! contract emits `Anchored(bytes32 root, address sender)` ([`anchor_contract_runtime`] is
//! such a contract). Without one, it is a zero-value transaction from the key to itself whose
//! calldata is the 32-byte root. Either way the root is public and nothing else is.
//!
//! The key is a dedicated gas-only key, never an investigator's own. It is held in a
//! [`k256::ecdsa::SigningKey`], which zeroes itself when dropped, and nothing here prints it:
//! [`AnchorKey`]'s `Debug` shows the address alone.

use std::fmt;

use alloy_consensus::{SignableTransaction, TxEip1559, TxEnvelope};
use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::{Address, B256, Bytes, Signature, TxKind, U256, keccak256};
use k256::ecdsa::SigningKey;
use zeroize::Zeroizing;

/// The anchoring key is not a secp256k1 private key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// Not 64 hexadecimal digits (with or without `0x`).
    #[error("the anchoring key is not 64 hexadecimal digits")]
    NotHex,
    /// 32 bytes, but zero or not below the curve's order.
    #[error("the anchoring key is not a valid secp256k1 private key")]
    OutOfRange,
}

/// The key that signs anchoring transactions.
pub struct AnchorKey {
    key: SigningKey,
    address: Address,
}

impl AnchorKey {
    /// Reads a key written as 64 hex digits, with or without `0x` and surrounding whitespace
    /// (a key file's trailing newline).
    pub fn from_hex(text: &str) -> Result<Self, KeyError> {
        let text = text.trim();
        let digits = text.strip_prefix("0x").unwrap_or(text);
        let mut bytes = Zeroizing::new([0u8; 32]);
        hex_decode(digits, &mut bytes).ok_or(KeyError::NotHex)?;
        Self::from_bytes(&bytes)
    }

    /// A key from its 32 bytes.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, KeyError> {
        let key = SigningKey::from_bytes(bytes.into()).map_err(|_| KeyError::OutOfRange)?;
        let address = Address::from_public_key(key.verifying_key());
        Ok(Self { key, address })
    }

    /// A new random key.
    pub fn generate() -> Self {
        let key = SigningKey::random(&mut k256::elliptic_curve::rand_core::OsRng);
        let address = Address::from_public_key(key.verifying_key());
        Self { key, address }
    }

    /// The key as 64 hex digits, for writing it where it is kept (keyring or key file).
    pub fn to_hex(&self) -> Zeroizing<String> {
        let bytes = Zeroizing::new(self.key.to_bytes());
        let mut text = Zeroizing::new(String::with_capacity(64));
        for byte in bytes.iter() {
            // Two digits at a time straight into the zeroed string, no temporary copies.
            text.push(char::from_digit(u32::from(byte >> 4), 16).unwrap_or('0'));
            text.push(char::from_digit(u32::from(byte & 0xf), 16).unwrap_or('0'));
        }
        text
    }

    /// The address it signs for: where its gas is paid from.
    pub fn address(&self) -> Address {
        self.address
    }
}

impl fmt::Debug for AnchorKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AnchorKey({})", self.address)
    }
}

fn hex_decode(digits: &str, out: &mut [u8; 32]) -> Option<()> {
    let digits = digits.as_bytes();
    if digits.len() != 64 {
        return None;
    }
    for (byte, pair) in out.iter_mut().zip(digits.chunks(2)) {
        let nibble = |c: u8| (c as char).to_digit(16);
        *byte = (nibble(pair[0])? * 16 + nibble(pair[1])?) as u8;
    }
    Some(())
}

/// What an anchoring transaction pays.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fees {
    /// The gas limit.
    pub gas_limit: u64,
    /// The most it pays per gas, base fee and tip together.
    pub max_fee_per_gas: u128,
    /// The tip per gas.
    pub max_priority_fee_per_gas: u128,
}

/// Everything that goes into one anchoring transaction.
#[derive(Clone, Copy, Debug)]
pub struct AnchorTx {
    /// The chain (EIP-155).
    pub chain_id: u64,
    /// The key's next nonce.
    pub nonce: u64,
    /// What it pays.
    pub fees: Fees,
    /// The anchoring contract, or `None` for a transaction to the key's own address.
    pub contract: Option<Address>,
    /// The batch's Merkle root.
    pub root: B256,
}

/// A signed transaction, ready to broadcast and to be saved before it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedTx {
    /// Its hash.
    pub hash: B256,
    /// Its EIP-2718 encoding, as `eth_sendRawTransaction` takes it.
    pub raw: Bytes,
}

/// `keccak256("anchor(bytes32)")[..4]`.
pub fn anchor_selector() -> [u8; 4] {
    let hash = keccak256("anchor(bytes32)");
    [hash[0], hash[1], hash[2], hash[3]]
}

/// `keccak256("Anchored(bytes32,address)")`: the topic of the contract's log.
pub fn anchored_topic() -> B256 {
    keccak256("Anchored(bytes32,address)")
}

/// The calldata that carries `root`: `anchor(root)` for a contract, the root alone otherwise.
pub fn calldata(root: B256, contract: Option<Address>) -> Bytes {
    match contract {
        Some(_) => [&anchor_selector()[..], root.as_slice()].concat().into(),
        None => Bytes::copy_from_slice(root.as_slice()),
    }
}

/// Where the transaction goes: the contract, or the key's own address.
pub fn recipient(key: &AnchorKey, contract: Option<Address>) -> Address {
    contract.unwrap_or(key.address())
}

impl AnchorKey {
    /// Signs `tx`.
    pub fn sign(&self, tx: &AnchorTx) -> SignedTx {
        let unsigned = TxEip1559 {
            chain_id: tx.chain_id,
            nonce: tx.nonce,
            gas_limit: tx.fees.gas_limit,
            max_fee_per_gas: tx.fees.max_fee_per_gas,
            max_priority_fee_per_gas: tx.fees.max_priority_fee_per_gas,
            to: TxKind::Call(recipient(self, tx.contract)),
            value: U256::ZERO,
            access_list: Default::default(),
            input: calldata(tx.root, tx.contract),
        };
        let (signature, recovery) = self
            .key
            .sign_prehash_recoverable(unsigned.signature_hash().as_slice())
            // Signing a 32-byte prehash with a valid key fails only on a zero scalar, which
            // RFC 6979's nonce derivation never yields.
            .expect("sign a 32-byte prehash");
        let signed = unsigned.into_signed(Signature::from((signature, recovery)));
        let hash = *signed.hash();
        let raw = TxEnvelope::from(signed).encoded_2718().into();
        SignedTx { hash, raw }
    }
}

/// The runtime code of the anchoring contract (49 bytes, written by hand rather than compiled,
/// so that it can be read in full): it emits `Anchored(root, msg.sender)` with the 32 bytes
/// after the 4-byte selector as `root`, and accepts any call.
///
/// ```text
/// PUSH1 4  CALLDATALOAD  PUSH1 0  MSTORE     memory[0..32]  = calldata[4..36] (root)
/// CALLER   PUSH1 0x20  MSTORE                memory[32..64] = msg.sender
/// PUSH32 keccak256("Anchored(bytes32,address)")
/// PUSH1 0x40  PUSH1 0  LOG1  STOP            log(memory[0..64], topic)
/// ```
pub fn anchor_contract_runtime() -> Vec<u8> {
    let mut code = vec![
        0x60, 0x04, 0x35, 0x60, 0x00, 0x52, 0x33, 0x60, 0x20, 0x52, 0x7f,
    ];
    code.extend_from_slice(anchored_topic().as_slice());
    code.extend_from_slice(&[0x60, 0x40, 0x60, 0x00, 0xa1, 0x00]);
    code
}

/// The same contract's creation code: copies the runtime into memory and returns it.
pub fn anchor_contract_creation() -> Vec<u8> {
    let runtime = anchor_contract_runtime();
    // PUSH1 len DUP1 PUSH1 11 PUSH1 0 CODECOPY PUSH1 0 RETURN: 11 bytes before the runtime.
    let len = u8::try_from(runtime.len()).expect("the runtime is 49 bytes");
    let mut code = vec![
        0x60, len, 0x80, 0x60, 0x0b, 0x60, 0x00, 0x39, 0x60, 0x00, 0xf3,
    ];
    code.extend_from_slice(&runtime);
    code
}

#[cfg(test)]
mod tests {
    use super::*;

    // Anvil's first account, documented by foundry; test only.
    const DEV_KEY: &str = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";

    #[test]
    fn a_key_is_read_from_hex_and_gives_its_address() {
        let key = AnchorKey::from_hex(&format!("{DEV_KEY}\n")).expect("valid");
        assert_eq!(
            key.address().to_checksum(None),
            "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
        );
        assert_eq!(format!("0x{}", key.to_hex().as_str()), DEV_KEY);
    }

    #[test]
    fn a_keys_debug_shows_its_address_and_never_the_key() {
        let key = AnchorKey::from_hex(DEV_KEY).expect("valid");
        let shown = format!("{key:?}");
        assert!(shown.contains("0xf39F"), "{shown}");
        assert!(!shown.contains(&DEV_KEY[2..12]), "{shown}");
    }

    #[test]
    fn a_key_that_is_not_a_key_is_refused_with_the_reason() {
        assert!(matches!(
            AnchorKey::from_hex("0x1234"),
            Err(KeyError::NotHex)
        ));
        assert!(matches!(
            AnchorKey::from_hex(&"zz".repeat(32)),
            Err(KeyError::NotHex)
        ));
        assert!(matches!(
            AnchorKey::from_hex(&"00".repeat(32)),
            Err(KeyError::OutOfRange)
        ));
        assert!(matches!(
            AnchorKey::from_hex(&"ff".repeat(32)),
            Err(KeyError::OutOfRange)
        ));
    }

    #[test]
    fn the_calldata_is_the_root_alone_or_a_call_of_anchor() {
        let root = B256::repeat_byte(0xab);
        assert_eq!(calldata(root, None).as_ref(), root.as_slice());
        let call = calldata(root, Some(Address::repeat_byte(1)));
        assert_eq!(&call[..4], &anchor_selector());
        assert_eq!(&call[4..], root.as_slice());
    }

    #[test]
    fn the_contract_is_as_long_as_documented() {
        assert_eq!(anchor_contract_runtime().len(), 49);
        assert_eq!(anchor_contract_creation().len(), 11 + 49);
    }

    #[test]
    fn signing_is_deterministic_and_the_hash_is_of_the_raw_bytes() {
        let key = AnchorKey::from_hex(DEV_KEY).expect("valid");
        let tx = AnchorTx {
            chain_id: 31337,
            nonce: 0,
            fees: Fees {
                gas_limit: 30_000,
                max_fee_per_gas: 2_000_000_000,
                max_priority_fee_per_gas: 1_000_000_000,
            },
            contract: None,
            root: B256::repeat_byte(0x11),
        };
        let signed = key.sign(&tx);
        assert_eq!(
            signed,
            key.sign(&tx),
            "RFC 6979 signatures are deterministic"
        );
        assert_eq!(signed.raw[0], 0x02, "EIP-1559 type byte");
        assert_eq!(signed.hash, keccak256(&signed.raw));
    }
}
