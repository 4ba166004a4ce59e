//! Ethereum wallet addresses: `0x` and 40 hex digits, with the EIP-55 checksum checked when the
//! address is written in mixed case.

use sha3::{Digest, Keccak256};

/// Why a string is not a wallet address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WalletError {
    /// The address does not start with `0x`.
    #[error("must start with 0x")]
    MissingPrefix,
    /// The address does not have 40 hex digits after `0x`.
    #[error("must have 40 hex digits after 0x, found {0}")]
    WrongLength(usize),
    /// A character after `0x` is not a hex digit.
    #[error("{0:?} is not a hex digit")]
    NotHex(char),
    /// The address mixes cases but does not match its EIP-55 checksum.
    #[error("mixed-case address fails its EIP-55 checksum (expected {expected})")]
    BadChecksum {
        /// The correctly checksummed form of the same address.
        expected: String,
    },
}

/// Checks that `address` is a wallet address; a mixed-case address must carry a valid EIP-55
/// checksum, while an all-lowercase or all-uppercase one carries none.
pub fn validate_wallet(address: &str) -> Result<(), WalletError> {
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

    #[test]
    fn eip55_vectors_are_accepted() {
        for address in EIP55_VECTORS {
            assert_eq!(validate_wallet(address), Ok(()), "{address}");
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
    fn malformed_addresses_say_what_is_wrong() {
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
}
