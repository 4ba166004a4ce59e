//! The Ethereum JSON-RPC calls anchoring needs, over reqwest, and nothing else.
//!
//! A node that cannot be reached ([`RpcError::Unreachable`]) is an outage like a dead Kafka
//! broker: whoever waits on it retries later and spends no attempt. An answer with a JSON-RPC
//! error ([`RpcError::Node`]) is the node's verdict and is read for what it says
//! ([`RpcError::is_already_known`]). The endpoint's URL may carry a provider's API key in its path
//! or query, so errors and logs name its scheme, host and port only ([`Endpoint`]).

use std::fmt;
use std::time::Duration;

use alloy_primitives::{Address, B256, Bytes, U64, U128, U256};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// A JSON-RPC call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RpcError {
    /// No answer: the node is down, the network is gone, or it did not answer in time.
    #[error("the chain node at {endpoint} cannot be reached: {source}")]
    Unreachable {
        /// Where (without path or query).
        endpoint: String,
        /// Why.
        #[source]
        source: reqwest::Error,
    },
    /// The node answered with a JSON-RPC error.
    #[error("the chain node refused {method}: {message} (JSON-RPC error {code})")]
    Node {
        /// The method called.
        method: &'static str,
        /// The JSON-RPC error code.
        code: i64,
        /// The node's message.
        message: String,
    },
    /// The node answered something that is not a JSON-RPC answer to the call.
    #[error("the chain node's answer to {method} is not what JSON-RPC promises: {reason}")]
    Malformed {
        /// The method called.
        method: &'static str,
        /// What was wrong with it.
        reason: String,
    },
}

impl RpcError {
    /// True when the node could not be reached at all: nothing was decided, try again later.
    pub fn is_unreachable(&self) -> bool {
        matches!(self, Self::Unreachable { .. })
    }

    /// True when broadcasting was refused because the node has the transaction already, or its
    /// nonce is used: the cue to look for a receipt, never to sign again.
    pub fn is_already_known(&self) -> bool {
        match self {
            Self::Node { message, .. } => {
                let message = message.to_ascii_lowercase();
                [
                    "already known",
                    "nonce too low",
                    "known transaction",
                    "already imported",
                ]
                .iter()
                .any(|cue| message.contains(cue))
            }
            _ => false,
        }
    }
}

/// A node's URL, shown without its path or query (where providers put API keys).
#[derive(Clone)]
pub struct Endpoint {
    url: reqwest::Url,
}

impl Endpoint {
    /// Parses an `http` or `https` URL.
    pub fn parse(url: &str) -> Result<Self, String> {
        let url = reqwest::Url::parse(url).map_err(|e| format!("not a URL ({e})"))?;
        match url.scheme() {
            "http" | "https" if url.host().is_some() => Ok(Self { url }),
            "http" | "https" => Err("a URL with no host".into()),
            other => Err(format!("scheme {other}: only http and https are accepted")),
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host = self.url.host_str().unwrap_or_default();
        match self.url.port() {
            Some(port) => write!(f, "{}://{host}:{port}", self.url.scheme()),
            None => write!(f, "{}://{host}", self.url.scheme()),
        }
    }
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Endpoint({self})")
    }
}

/// A transaction as `eth_getTransactionByHash` reports it.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Transaction {
    /// Its hash.
    pub hash: B256,
    /// Who signed it.
    pub from: Address,
    /// Where it went (`None` for a contract creation).
    pub to: Option<Address>,
    /// Its calldata.
    pub input: Bytes,
    /// Its nonce.
    pub nonce: U64,
    /// The chain it was signed for (absent from pre-EIP-155 transactions).
    pub chain_id: Option<U64>,
    /// Its block, once mined.
    pub block_number: Option<U64>,
}

/// A log a transaction emitted.
#[derive(Clone, Debug, Deserialize)]
pub struct Log {
    /// The contract that emitted it.
    pub address: Address,
    /// Its topics, the event's signature first.
    pub topics: Vec<B256>,
    /// Its data.
    pub data: Bytes,
}

/// A mined transaction's receipt.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Receipt {
    /// The transaction.
    pub transaction_hash: B256,
    /// 1 for success, 0 for a revert.
    pub status: U64,
    /// The block it is in.
    pub block_number: U64,
    /// That block's hash.
    pub block_hash: B256,
    /// What it emitted.
    pub logs: Vec<Log>,
    /// The contract it created, if it created one.
    pub contract_address: Option<Address>,
}

/// The parts of a block anchoring reads.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Block {
    /// Its number.
    pub number: U64,
    /// Its hash.
    pub hash: B256,
    /// Its base fee (EIP-1559 chains).
    pub base_fee_per_gas: Option<U128>,
}

/// A JSON-RPC client for one node.
#[derive(Clone, Debug)]
pub struct Rpc {
    endpoint: Endpoint,
    http: reqwest::Client,
}

/// A call made before this long is answered counts as unreachable.
const CALL_TIMEOUT: Duration = Duration::from_secs(15);

impl Rpc {
    /// A client for the node at `endpoint`.
    pub fn new(endpoint: Endpoint) -> Self {
        let http = reqwest::Client::builder()
            .timeout(CALL_TIMEOUT)
            .connect_timeout(Duration::from_secs(5))
            .build()
            // Only a TLS backend failing to initialise fails a builder with these settings;
            // the default client hits the same and panics the same way.
            .unwrap_or_else(|_| reqwest::Client::new());
        Self { endpoint, http }
    }

    /// Where it calls.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// Calls `method` with `params`, reading the result as `T`.
    pub async fn call<T: DeserializeOwned>(
        &self,
        method: &'static str,
        params: Value,
    ) -> Result<T, RpcError> {
        // reqwest's errors carry the whole URL, API key and all: it is taken off.
        let unreachable = |source: reqwest::Error| RpcError::Unreachable {
            endpoint: self.endpoint.to_string(),
            source: source.without_url(),
        };
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        let response = self
            .http
            .post(self.endpoint.url.clone())
            .json(&body)
            .send()
            .await
            .map_err(unreachable)?;
        let status = response.status();
        let answer: Answer = response.json().await.map_err(|e| {
            if e.is_decode() {
                RpcError::Malformed {
                    method,
                    reason: format!("HTTP {status}, not JSON-RPC ({})", e.without_url()),
                }
            } else {
                unreachable(e)
            }
        })?;
        if let Some(error) = answer.error {
            return Err(RpcError::Node {
                method,
                code: error.code,
                message: error.message,
            });
        }
        serde_json::from_value(answer.result.unwrap_or(Value::Null)).map_err(|e| {
            RpcError::Malformed {
                method,
                reason: e.to_string(),
            }
        })
    }

    /// `eth_chainId`.
    pub async fn chain_id(&self) -> Result<u64, RpcError> {
        Ok(self.call::<U64>("eth_chainId", json!([])).await?.to())
    }

    /// `eth_blockNumber`: the head.
    pub async fn block_number(&self) -> Result<u64, RpcError> {
        Ok(self.call::<U64>("eth_blockNumber", json!([])).await?.to())
    }

    /// `eth_getBlockByNumber`, without transactions; `None` past the head.
    pub async fn block(&self, number: BlockTag) -> Result<Option<Block>, RpcError> {
        self.call("eth_getBlockByNumber", json!([number.param(), false]))
            .await
    }

    /// `eth_getTransactionCount` at `pending`: the next nonce to use.
    pub async fn pending_nonce(&self, address: Address) -> Result<u64, RpcError> {
        Ok(self
            .call::<U64>("eth_getTransactionCount", json!([address, "pending"]))
            .await?
            .to())
    }

    /// `eth_getTransactionCount` at `latest`: how many of `address`'s transactions are mined.
    pub async fn mined_nonce(&self, address: Address) -> Result<u64, RpcError> {
        Ok(self
            .call::<U64>("eth_getTransactionCount", json!([address, "latest"]))
            .await?
            .to())
    }

    /// `eth_getBalance` at `latest`, in wei.
    pub async fn balance(&self, address: Address) -> Result<U256, RpcError> {
        self.call("eth_getBalance", json!([address, "latest"]))
            .await
    }

    /// `eth_maxPriorityFeePerGas`: the tip the node suggests.
    pub async fn max_priority_fee(&self) -> Result<u128, RpcError> {
        Ok(self
            .call::<U128>("eth_maxPriorityFeePerGas", json!([]))
            .await?
            .to())
    }

    /// `eth_estimateGas` for a call from `from` to `to` with `input`.
    pub async fn estimate_gas(
        &self,
        from: Address,
        to: Address,
        input: &Bytes,
    ) -> Result<u64, RpcError> {
        Ok(self
            .call::<U64>(
                "eth_estimateGas",
                json!([{"from": from, "to": to, "input": input}]),
            )
            .await?
            .to())
    }

    /// `eth_sendRawTransaction`: broadcasts a signed transaction, returning its hash.
    pub async fn send_raw(&self, raw: &Bytes) -> Result<B256, RpcError> {
        self.call("eth_sendRawTransaction", json!([raw])).await
    }

    /// `eth_getTransactionByHash`; `None` when the node does not know it.
    pub async fn transaction(&self, hash: B256) -> Result<Option<Transaction>, RpcError> {
        self.call("eth_getTransactionByHash", json!([hash])).await
    }

    /// `eth_getTransactionReceipt`; `None` until it is mined.
    pub async fn receipt(&self, hash: B256) -> Result<Option<Receipt>, RpcError> {
        self.call("eth_getTransactionReceipt", json!([hash])).await
    }

    /// The receipt of `hash` once it is mined, asking every 20 ms (JSON-RPC over HTTP has no
    /// subscriptions); `None` if it is not mined within `patience`.
    pub async fn receipt_within(
        &self,
        hash: B256,
        patience: Duration,
    ) -> Result<Option<Receipt>, RpcError> {
        let deadline = tokio::time::Instant::now() + patience;
        loop {
            if let Some(receipt) = self.receipt(hash).await? {
                return Ok(Some(receipt));
            }
            if tokio::time::Instant::now() >= deadline {
                return Ok(None);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Which block to ask for.
#[derive(Clone, Copy, Debug)]
pub enum BlockTag {
    /// The head.
    Latest,
    /// A block by its number.
    Number(u64),
}

impl BlockTag {
    fn param(self) -> Value {
        match self {
            Self::Latest => json!("latest"),
            Self::Number(n) => json!(U64::from(n)),
        }
    }
}

#[derive(Deserialize)]
struct Answer {
    result: Option<Value>,
    error: Option<AnswerError>,
}

#[derive(Deserialize, Serialize)]
struct AnswerError {
    code: i64,
    message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_endpoint_is_shown_without_its_path_or_query() {
        let endpoint =
            Endpoint::parse("https://mainnet.example.io/v3/s3cretkey?token=abc").expect("valid");
        assert_eq!(endpoint.to_string(), "https://mainnet.example.io");
        assert!(!format!("{endpoint:?}").contains("s3cret"));
        let local = Endpoint::parse("http://127.0.0.1:8545").expect("valid");
        assert_eq!(local.to_string(), "http://127.0.0.1:8545");
    }

    #[tokio::test]
    async fn an_unreachable_node_is_named_without_the_api_key_in_its_url() {
        // Nothing listens on port 1.
        let rpc =
            Rpc::new(Endpoint::parse("http://127.0.0.1:1/v3/s3cretkey?token=abc").expect("valid"));
        let error = rpc.chain_id().await.expect_err("nothing listens");
        assert!(error.is_unreachable());
        let mut said = error.to_string();
        let mut source = std::error::Error::source(&error);
        while let Some(cause) = source {
            said.push_str(&format!(": {cause}"));
            source = cause.source();
        }
        assert!(said.contains("http://127.0.0.1:1"), "{said}");
        assert!(
            !said.contains("s3cret") && !said.contains("token"),
            "{said}"
        );
    }

    #[test]
    fn an_endpoint_that_is_not_http_is_refused_with_the_reason() {
        assert!(
            Endpoint::parse("ws://127.0.0.1:8546")
                .expect_err("ws")
                .contains("only http and https")
        );
        assert!(Endpoint::parse("127.0.0.1:8545").is_err());
    }

    #[test]
    fn nonce_too_low_and_already_known_are_cues_to_look_for_a_receipt() {
        let node = |message: &str| RpcError::Node {
            method: "eth_sendRawTransaction",
            code: -32003,
            message: message.into(),
        };
        assert!(node("nonce too low").is_already_known());
        assert!(node("already known").is_already_known());
        assert!(node("Nonce too low: next nonce 3, tx nonce 2").is_already_known());
        assert!(!node("insufficient funds for gas * price + value").is_already_known());
    }
}
