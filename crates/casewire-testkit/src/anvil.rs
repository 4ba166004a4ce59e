//! A real EVM node for the anchoring tests: foundry's `anvil`, on loopback, from the npm
//! package `@foundry-rs/anvil-linux-amd64` that `scripts/bootstrap` unpacks into the cache.
//! It writes under `$HOME/.foundry`, so each node gets a temporary `HOME` of its own.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use crate::free_port;

/// The chain id the tests' nodes run (anvil's own default).
pub const CHAIN_ID: u64 = 31337;

/// The private key of anvil's first dev account, documented by foundry and funded with
/// 10,000 ether on every anvil chain. Tests only: it is public.
pub const DEV_KEY: &str = "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";

/// Anvil's second dev account's key, for a sender other than the first.
pub const DEV_KEY_2: &str = "59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";

/// Writes [`DEV_KEY`] to `anchor.key` in `dir`, readable by its owner only, as a headless
/// server keeps its anchoring key (`CASEWIRE_ANCHOR_KEY_FILE`); returns its path.
pub fn dev_key_file(dir: &std::path::Path) -> PathBuf {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let path = dir.join("anchor.key");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .expect("anchoring key file");
    file.write_all(DEV_KEY.as_bytes()).expect("write the key");
    path
}

/// Where `scripts/bootstrap` puts anvil; `ANVIL_BIN` overrides.
pub fn anvil_bin() -> PathBuf {
    crate::cached_tool("ANVIL_BIN", "bin/anvil")
}

/// An anvil process on a port of its own.
pub struct Anvil {
    /// The port its JSON-RPC listens on.
    pub port: u16,
    home: tempfile::TempDir,
    child: Option<Child>,
}

impl Anvil {
    /// A node that is not running yet: its port is chosen, nothing listens on it.
    pub fn stopped() -> Anvil {
        Anvil {
            port: free_port(),
            home: tempfile::tempdir().expect("anvil home"),
            child: None,
        }
    }

    /// A running node that mines a block for each transaction.
    pub fn started() -> Anvil {
        let mut anvil = Anvil::stopped();
        anvil.start();
        anvil
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Starts a fresh chain (anvil keeps no state between runs); returns once it listens.
    pub fn start(&mut self) {
        assert!(self.child.is_none(), "anvil already running");
        let port = self.port.to_string();
        self.child = Some(
            Command::new(anvil_bin())
                .env("HOME", self.home.path())
                .args(["--host", "127.0.0.1", "--port", &port])
                .args(["--chain-id", &CHAIN_ID.to_string()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn anvil"),
        );
        crate::secure_kafka::wait_listening(self.port, "anvil");
    }

    /// SIGKILLs the node; its chain is gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Anvil {
    fn drop(&mut self) {
        self.kill();
    }
}
