//! Wallet addresses of the chains fraud runs through, each checked by its own rules:
//!
//! - EVM (Ethereum and the chains that share its addresses): `0x` and 40 hex digits, with the
//!   EIP-55 checksum checked when the address is written in mixed case;
//! - Bitcoin: base58check `1…` (P2PKH) and `3…` (P2SH), and bech32 (segwit v0) or bech32m
//!   (v1 and later, taproot) `bc1…`;
//! - Tron: base58check `T…`, version byte `0x41`;
//! - Solana: base58 of a 32-byte public key.
//!
//! The chain is detected from the address itself, and [`Wallet::key`] is the form two spellings
//! of one wallet share: hex and bech32 are case-insensitive, base58 is not.

use std::fmt;

use serde::{Deserialize, Serialize};
use sha3::{Digest, Keccak256};

/// The formats accepted, for the refusal of anything else.
pub const ACCEPTED_FORMATS: &str = "EVM 0x and 40 hex digits (EIP-55 checksum when mixed case); \
     Bitcoin 1… or 3… (base58check) or bc1… (bech32, bech32m); Tron T… (base58check); \
     Solana base58 of 32 bytes";

/// The chain an address belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Chain {
    /// Ethereum and every chain with its 20-byte hex addresses.
    Evm,
    /// Bitcoin mainnet.
    Bitcoin,
    /// Tron mainnet.
    Tron,
    /// Solana.
    Solana,
}

impl Chain {
    /// The name in events' `walletChain` and in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Chain::Evm => "evm",
            Chain::Bitcoin => "bitcoin",
            Chain::Tron => "tron",
            Chain::Solana => "solana",
        }
    }
}

impl fmt::Display for Chain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A wallet address that passed its chain's rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wallet {
    chain: Chain,
    key: String,
}

impl Wallet {
    /// The chain detected.
    pub fn chain(&self) -> Chain {
        self.chain
    }

    /// The form every spelling of this wallet shares, to compare and look up by: lowercase for
    /// hex and bech32 addresses, the address itself for base58 ones.
    pub fn key(&self) -> &str {
        &self.key
    }
}

/// Why a string is not a wallet address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WalletError {
    /// An EVM address must start with `0x` (40 hex digits were given without it).
    #[error("must start with 0x")]
    MissingPrefix,
    /// An EVM address does not have 40 hex digits after `0x`.
    #[error("must have 40 hex digits after 0x, found {0}")]
    WrongLength(usize),
    /// A character after `0x` is not a hex digit.
    #[error("{0:?} is not a hex digit")]
    NotHex(char),
    /// The EVM address mixes cases but does not match its EIP-55 checksum.
    #[error("mixed-case address fails its EIP-55 checksum (expected {expected})")]
    BadChecksum {
        /// The correctly checksummed form of the same address.
        expected: String,
    },
    /// A `bc1…` address fails bech32/bech32m decoding.
    #[error("is not a valid Bitcoin bech32 address: {0}")]
    Bech32(String),
    /// A segwit address of another network than Bitcoin's mainnet.
    #[error("is a segwit address of the {0:?} network, not Bitcoin's mainnet (bc1…)")]
    OtherNetwork(String),
    /// A base58check address whose last four bytes do not match its checksum.
    #[error("fails its base58check checksum (a character is mistyped or missing)")]
    Base58Checksum,
    /// A base58check address with a version byte of no chain accepted.
    #[error(
        "has the base58check version byte {0:#04x}: neither Bitcoin's (0x00, 0x05) nor Tron's (0x41)"
    )]
    UnknownVersion(u8),
    /// A base58 string of a length no accepted address has.
    #[error(
        "decodes to {0} bytes: a Bitcoin or Tron address has 25 and a Solana one 32 (accepted: {ACCEPTED_FORMATS})"
    )]
    Base58Length(usize),
    /// Nothing like an address of a chain accepted.
    #[error("is not an address of a supported chain (accepted: {ACCEPTED_FORMATS})")]
    Unrecognised,
}

/// Checks that `address` is an EVM address; a mixed-case address must carry a valid EIP-55
/// checksum, while an all-lowercase or all-uppercase one carries none. For a contract.
pub fn validate_evm_address(address: &str) -> Result<(), WalletError> {
    let digits = address
        .strip_prefix("0x")
        .ok_or(WalletError::MissingPrefix)?;
    if let Some(bad) = digits.chars().find(|c| !c.is_ascii_hexdigit()) {
        return Err(WalletError::NotHex(bad));
    }
    if digits.len() != 40 {
        return Err(WalletError::WrongLength(digits.len()));
    }
    let has_lower = digits.bytes().any(|b| b.is_ascii_lowercase());
    let has_upper = digits.bytes().any(|b| b.is_ascii_uppercase());
    if has_lower && has_upper {
        let expected = to_checksum(digits);
        if expected[2..] != *digits {
            return Err(WalletError::BadChecksum { expected });
        }
    }
    Ok(())
}

/// Checks that `address` is a wallet of a chain accepted (see the module's documentation).
pub fn validate_wallet(address: &str) -> Result<(), WalletError> {
    parse_wallet(address).map(|_| ())
}

/// Detects the chain of `address` and checks it by that chain's rules.
pub fn parse_wallet(address: &str) -> Result<Wallet, WalletError> {
    let evm = |address: &str| {
        validate_evm_address(address).map(|()| Wallet {
            chain: Chain::Evm,
            key: address.to_ascii_lowercase(),
        })
    };
    if address.starts_with("0x") {
        return evm(address);
    }
    // Hex digits of an address's length with no 0x: the prefix is what is missing.
    if (38..=42).contains(&address.len()) && address.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(WalletError::MissingPrefix);
    }
    if let Some(network) = segwit_network(address) {
        return segwit(address, &network);
    }
    base58(address)
}

/// The human-readable part of a string that reads as a segwit address of a Bitcoin network.
fn segwit_network(address: &str) -> Option<String> {
    let lower = address.to_ascii_lowercase();
    let (hrp, _) = lower.rsplit_once('1')?;
    ["bc", "tb", "bcrt"].contains(&hrp).then(|| hrp.to_owned())
}

fn segwit(address: &str, network: &str) -> Result<Wallet, WalletError> {
    if let Err(e) = bech32::segwit::decode(address) {
        // A base58 address may begin with bc1 too, however rarely.
        return base58(address).map_err(|_| WalletError::Bech32(e.to_string()));
    }
    if network != "bc" {
        return Err(WalletError::OtherNetwork(network.to_owned()));
    }
    Ok(Wallet {
        chain: Chain::Bitcoin,
        key: address.to_ascii_lowercase(),
    })
}

fn base58(address: &str) -> Result<Wallet, WalletError> {
    let bytes = bs58::decode(address)
        .into_vec()
        .map_err(|_| WalletError::Unrecognised)?;
    let chain = match bytes.len() {
        32 => Chain::Solana,
        25 => {
            bs58::decode(address)
                .with_check(None)
                .into_vec()
                .map_err(|_| WalletError::Base58Checksum)?;
            match bytes[0] {
                0x00 | 0x05 => Chain::Bitcoin,
                0x41 => Chain::Tron,
                other => return Err(WalletError::UnknownVersion(other)),
            }
        }
        n => return Err(WalletError::Base58Length(n)),
    };
    Ok(Wallet {
        chain,
        key: address.to_owned(),
    })
}

/// The EIP-55 form of 40 hex digits: each letter is uppercase when the matching nibble of the
/// Keccak-256 hash of the lowercase address is 8 or more.
fn to_checksum(digits: &str) -> String {
    let lower = digits.to_ascii_lowercase();
    let hash = Keccak256::digest(lower.as_bytes());
    let mut out = String::with_capacity(42);
    out.push_str("0x");
    for (i, c) in lower.chars().enumerate() {
        let byte = hash[i / 2];
        let nibble = if i % 2 == 0 { byte >> 4 } else { byte & 0x0f };
        out.push(if nibble >= 8 {
            c.to_ascii_uppercase()
        } else {
            c
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Addresses from the EIP-55 specification's test vectors.
    const EIP55_VECTORS: [&str; 4] = [
        "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
        "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
        "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
        "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
    ];

    fn chain(address: &str) -> Result<Chain, WalletError> {
        parse_wallet(address).map(|w| w.chain())
    }

    #[test]
    fn eip55_vectors_are_accepted() {
        for address in EIP55_VECTORS {
            assert_eq!(chain(address), Ok(Chain::Evm), "{address}");
        }
    }

    #[test]
    fn single_case_addresses_carry_no_checksum() {
        for address in EIP55_VECTORS {
            let digits = &address[2..];
            assert_eq!(
                validate_wallet(&format!("0x{}", digits.to_ascii_lowercase())),
                Ok(())
            );
            assert_eq!(
                validate_wallet(&format!("0x{}", digits.to_ascii_uppercase())),
                Ok(())
            );
        }
    }

    #[test]
    fn one_flipped_letter_fails_the_checksum() {
        let flipped = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD";
        assert_eq!(
            validate_wallet(flipped),
            Err(WalletError::BadChecksum {
                expected: EIP55_VECTORS[0].to_owned()
            })
        );
    }

    #[test]
    fn the_guides_example_wallet_is_one_digit_short() {
        // The guide's examples use this address, which has 39 hex digits.
        assert_eq!(
            validate_wallet("0x742d35Cc6634C0532925a3b844Bc9e7595f0bEb"),
            Err(WalletError::WrongLength(39))
        );
    }

    #[test]
    fn malformed_evm_addresses_say_what_is_wrong() {
        assert_eq!(
            validate_wallet("742d35cc6634c0532925a3b844bc9e7595f0beb0"),
            Err(WalletError::MissingPrefix)
        );
        assert_eq!(
            validate_wallet("0x742d35cc6634c0532925a3b844bc9e7595f0beg0"),
            Err(WalletError::NotHex('g'))
        );
        assert_eq!(validate_wallet("0x"), Err(WalletError::WrongLength(0)));
    }

    #[test]
    fn bitcoin_addresses_of_each_kind_are_accepted() {
        for address in [
            // P2PKH, the genesis block's coinbase.
            "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa",
            // P2SH, from BIP-13's era of examples.
            "3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy",
            // Segwit v0 (bech32) and v1 (bech32m), from BIP-173 and BIP-350.
            "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4",
            "BC1QW508D6QEJXTDG4Y5R3ZARVARY0C5XW7KV8F3T4",
            "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqzk5jj0",
        ] {
            assert_eq!(chain(address), Ok(Chain::Bitcoin), "{address}");
        }
    }

    #[test]
    fn bech32_spellings_share_a_key_and_base58_ones_do_not() {
        let lower = parse_wallet("bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4").expect("valid");
        let upper = parse_wallet("BC1QW508D6QEJXTDG4Y5R3ZARVARY0C5XW7KV8F3T4").expect("valid");
        assert_eq!(lower.key(), upper.key());
        let evm = parse_wallet(EIP55_VECTORS[0]).expect("valid");
        assert_eq!(evm.key(), EIP55_VECTORS[0].to_ascii_lowercase());
        let tron = parse_wallet("TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t").expect("valid");
        assert_eq!(tron.key(), "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t");
    }

    #[test]
    fn a_bitcoin_address_that_fails_its_own_rules_says_which() {
        // The genesis address with its last character changed.
        assert_eq!(
            validate_wallet("1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNb"),
            Err(WalletError::Base58Checksum)
        );
        // BIP-173's invalid example: a bech32 checksum that does not hold.
        assert!(matches!(
            validate_wallet("bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t5"),
            Err(WalletError::Bech32(_))
        ));
        // A taproot program written with bech32, not bech32m (BIP-350).
        assert!(matches!(
            validate_wallet("bc1pw508d6qejxtdg4y5r3zarqfsj6c3"),
            Err(WalletError::Bech32(_))
        ));
        // Mixed case is refused by bech32.
        assert!(matches!(
            validate_wallet("bc1QW508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"),
            Err(WalletError::Bech32(_))
        ));
        assert_eq!(
            validate_wallet("tb1qw508d6qejxtdg4y5r3zarvary0c5xw7kxpjzsx"),
            Err(WalletError::OtherNetwork("tb".to_owned()))
        );
    }

    #[test]
    fn tron_addresses_are_base58check_with_version_0x41() {
        // USDT's contract on Tron, the address most fraud reports name.
        assert_eq!(chain("TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t"), Ok(Chain::Tron));
        assert_eq!(
            validate_wallet("TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6T"),
            Err(WalletError::Base58Checksum)
        );
    }

    #[test]
    fn solana_addresses_are_base58_of_32_bytes() {
        for address in [
            // The system program, and the SPL token program.
            "11111111111111111111111111111111",
            "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA",
        ] {
            assert_eq!(chain(address), Ok(Chain::Solana), "{address}");
        }
        // One character short of a key: 31 bytes is no address.
        assert!(matches!(
            validate_wallet("TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5D"),
            Err(WalletError::Base58Length(_))
        ));
    }

    #[test]
    fn anything_else_is_refused_with_the_formats_accepted() {
        for address in [
            "hello world",
            "",
            "addr1qx2fxv2umyhttkxyxp8x0dlpdt3k6cwng5pxj3jhsydzer",
        ] {
            let refusal = validate_wallet(address).expect_err(address);
            assert!(
                refusal.to_string().contains("Solana base58 of 32 bytes"),
                "{address}: {refusal}"
            );
        }
    }

    #[test]
    fn a_version_byte_of_no_chain_accepted_is_named() {
        // A Litecoin P2PKH address: base58check, version 0x30.
        let mut payload = [0x5a_u8; 21];
        payload[0] = 0x30;
        let litecoin = bs58::encode(payload).with_check().into_string();
        assert!(litecoin.starts_with('L'), "{litecoin}");
        assert_eq!(
            validate_wallet(&litecoin),
            Err(WalletError::UnknownVersion(0x30))
        );
    }
}
