//! `secure-kafka`: starts the broker of `casewire_testkit::secure_kafka` (SASL/SCRAM behind TLS
//! on loopback) for the tests written in JavaScript (the desktop window's), prints one JSON line
//! saying how to reach it, and keeps it running until its standard input closes.
#![allow(clippy::print_stdout)] // Its one line on stdout is its answer.

use std::io::Read;

use casewire_testkit::secure_kafka::{PASSWORD, SecureKafka, USER_512};

fn main() {
    let kafka = SecureKafka::start();
    let line = serde_json::json!({
        "brokers": kafka.tls_brokers(),
        "ca": kafka.ca(),
        "otherCa": kafka.other_ca(),
        "username": USER_512,
        "mechanism": "SCRAM-SHA-512",
        "password": PASSWORD,
    });
    println!("{line}");
    // Until whoever started it is done (or gone).
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    drop(kafka);
}
