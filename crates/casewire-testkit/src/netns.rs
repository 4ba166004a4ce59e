//! A real network between the app and a broker that a test can break: a network namespace of
//! its own for the broker, joined to the test's by a veth pair, with nftables rules inside the
//! namespace that drop packets. Dropping, not refusing: the app's packets vanish as they do when
//! a laptop leaves Wi-Fi, and it only learns of it by waiting.
//!
//! ```text
//! casewire serve (the test's namespace) ── near_ip ═══ veth ═══ far_ip ── tansu (namespace `ns`)
//!                                                                 nftables: drop in and out
//! ```
//!
//! Needs root (`CAP_NET_ADMIN`), iproute2 and nftables; `scripts/bootstrap` installs both.

use std::io::Write;
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

/// The nftables table the rules live in, inside the broker's namespace.
const TABLE: &str = "casewire_partition";

/// The namespace and the veth pair, removed when dropped.
pub struct Link {
    /// The broker's namespace.
    pub ns: String,
    /// The veth end in the test's namespace.
    near: String,
    /// The veth end inside `ns`.
    far: String,
    /// The address of the test's end.
    pub near_ip: Ipv4Addr,
    /// The address of the broker's end: what the app connects to.
    pub far_ip: Ipv4Addr,
}

fn ip(args: &[&str]) {
    let output = Command::new("ip")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("ip {}: {e} (is iproute2 installed?)", args.join(" ")));
    assert!(
        output.status.success(),
        "ip {} failed: {} (network namespaces need root: CAP_NET_ADMIN)",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr).trim()
    );
}

impl Link {
    /// A new namespace joined to this one by a veth pair on a /30 of its own, both ends up.
    pub fn new() -> Link {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        // pid_max is at most 2^22: each (process, link) gets its own /30 of 10.0.0.0/8, four
        // links per process.
        let index = (pid.wrapping_mul(4).wrapping_add(n % 4)) & 0x3f_ffff;
        let base = u32::from(Ipv4Addr::new(10, 0, 0, 0)) + index * 4;
        let (near_ip, far_ip) = (Ipv4Addr::from(base + 1), Ipv4Addr::from(base + 2));
        let name = format!("cw{pid}n{n}");
        let link = Link {
            ns: name.clone(),
            near: format!("{name}a"),
            far: format!("{name}b"),
            near_ip,
            far_ip,
        };
        assert!(link.near.len() <= 15, "interface name too long");
        ip(&["netns", "add", &link.ns]);
        ip(&[
            "link", "add", &link.near, "type", "veth", "peer", "name", &link.far, "netns", &link.ns,
        ]);
        ip(&["addr", "add", &format!("{near_ip}/30"), "dev", &link.near]);
        ip(&["link", "set", &link.near, "up"]);
        let inside = |args: &[&str]| {
            let mut all = vec!["-n", link.ns.as_str()];
            all.extend_from_slice(args);
            ip(&all);
        };
        inside(&["addr", "add", &format!("{far_ip}/30"), "dev", &link.far]);
        inside(&["link", "set", &link.far, "up"]);
        inside(&["link", "set", "lo", "up"]);
        link
    }

    /// `program` run inside the broker's namespace.
    pub fn command(&self, program: &std::path::Path) -> Command {
        in_namespace(&self.ns, program)
    }

    /// Replaces the namespace's drop rules with `rules` (nft's syntax, for the far end's
    /// packets both ways: `{if}` stands for its name).
    fn rules(&self, rules: &str) {
        let rules = rules.replace("{if}", &self.far);
        let script = format!(
            "add table inet {TABLE}\ndelete table inet {TABLE}\n{}",
            if rules.is_empty() {
                String::new()
            } else {
                format!(
                    "table inet {TABLE} {{\n\
                     chain input {{\ntype filter hook input priority 0; policy accept;\n{rules_in}\n}}\n\
                     chain output {{\ntype filter hook output priority 0; policy accept;\n{rules_out}\n}}\n\
                     }}\n",
                    rules_in = rules.replace("{dir}", "iifname"),
                    rules_out = rules.replace("{dir}", "oifname"),
                )
            }
        );
        let mut child = self
            .command(std::path::Path::new("nft"))
            .args(["-f", "-"])
            .stdin(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("nft (is nftables installed?)");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(script.as_bytes())
            .expect("nft script");
        let output = child.wait_with_output().expect("nft");
        assert!(
            output.status.success(),
            "nft failed: {}\n{script}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }

    /// Every packet to or from the broker is dropped, silently.
    pub fn cut(&self) {
        self.rules("{dir} \"{if}\" drop");
    }

    /// Each packet either way is dropped with probability `percent` %.
    pub fn lose(&self, percent: u32) {
        assert!(percent <= 100);
        self.rules(&format!(
            "{{dir}} \"{{if}}\" numgen random mod 100 < {percent} drop"
        ));
    }

    /// Nothing is dropped any more.
    pub fn restore(&self) {
        self.rules("");
    }
}

/// `program` run inside the namespace `ns`.
pub fn in_namespace(ns: &str, program: &std::path::Path) -> Command {
    let mut command = Command::new("ip");
    command.args(["netns", "exec", ns]).arg(program);
    command
}

impl Default for Link {
    fn default() -> Link {
        Link::new()
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        // Whatever still runs inside would keep the namespace alive.
        if let Ok(output) = Command::new("ip")
            .args(["netns", "pids", &self.ns])
            .output()
        {
            for pid in String::from_utf8_lossy(&output.stdout).split_whitespace() {
                let _ = Command::new("kill").args(["-KILL", pid]).status();
            }
        }
        let _ = Command::new("ip")
            .args(["link", "del", &self.near])
            .stderr(Stdio::null())
            .status();
        let _ = Command::new("ip")
            .args(["netns", "del", &self.ns])
            .stderr(Stdio::null())
            .status();
    }
}
