//! `cargo bench -p casewire-server --bench local_evidence`: a large evidence file added from
//! the desktop, the way the window adds it. The shell hands the page a handle for a file picked
//! in the open dialog; the page posts `/api/evidence/local` through the custom scheme; the
//! router (`scheme::respond`, in process, as in the app) streams the file from disk into the
//! evidence store. Measured against `sha256sum` reading the same file in the same round, with
//! the process's peak resident memory during the upload.
//!
//! Settings (environment): `LOCAL_BENCH_MIB` (file size, default 1024), `LOCAL_BENCH_ROUNDS`
//! (default 3), `LOCAL_BENCH_DIR` (where the file and the data go, default the system's
//! temporary folder). Rounds alternate `sha256sum` and the upload, and each round changes the
//! file's first bytes so that no hash repeats. `CASEWIRE_MAX_EVIDENCE_BYTES` is raised to the
//! file's size (the default refuses evidence over 100 MiB). Prints a table, then one JSON line.
#![allow(clippy::print_stdout, clippy::unwrap_used)] // A benchmark reports on stdout.

use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::{Method, Request, StatusCode};
use casewire_core::{App, JsonFileStore, Settings};
use casewire_server::{LocalFiles, ServerState, router, scheme};
use serde_json::{Value, json};

const WALLET: &str = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed";

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The one file "picked in the dialog".
struct Picked(PathBuf);

impl LocalFiles for Picked {
    fn source(&self, handle: &str) -> Option<(PathBuf, String)> {
        (handle == "picked").then(|| (self.0.clone(), "disk-image.bin".to_owned()))
    }
    fn target(&self, _: &str) -> Option<PathBuf> {
        None
    }
    fn progress(&self, _: &str, _: u64, _: u64) {}
}

/// A field of `/proc/self/status`, in KiB.
fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// Resets the peak resident size (`VmHWM`) to the current one (Linux ≥ 4.0).
fn reset_peak() {
    std::fs::write("/proc/self/clear_refs", "5").unwrap();
}

async fn call(router: &axum::Router, uri: &str, token: Option<&str>, body: Value) -> Value {
    let mut request = Request::builder()
        .method(Method::POST)
        .uri(format!("casewire://localhost{uri}"))
        .header("origin", "tauri://localhost")
        .header("content-type", "application/json");
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let response = scheme::respond(
        router.clone(),
        request.body(body.to_string().into_bytes()).unwrap(),
    )
    .await;
    let status = response.status();
    let body: Value = serde_json::from_slice(response.body()).unwrap();
    assert!(
        status == StatusCode::OK || status == StatusCode::CREATED,
        "{uri}: {status} {body}"
    );
    body
}

fn write_file(path: &Path, mib: u64) {
    let mut file = std::fs::File::create(path).unwrap();
    let mut block = vec![0u8; 1 << 20];
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..mib {
        for chunk in block.chunks_exact_mut(8) {
            // xorshift: bytes that no layer can compress or shortcut.
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            chunk.copy_from_slice(&x.to_le_bytes());
        }
        file.write_all(&block).unwrap();
    }
    file.sync_all().unwrap();
}

fn sha256sum(path: &Path) -> (Duration, String) {
    let start = Instant::now();
    let out = std::process::Command::new("sha256sum")
        .arg(path)
        .output()
        .unwrap();
    let elapsed = start.elapsed();
    assert!(out.status.success());
    let hash = String::from_utf8(out.stdout).unwrap();
    (elapsed, hash.split_whitespace().next().unwrap().to_owned())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mib = setting("LOCAL_BENCH_MIB", 1024);
    let rounds = setting("LOCAL_BENCH_ROUNDS", 3);
    let base = std::env::var_os("LOCAL_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let dir = tempfile::tempdir_in(&base).unwrap();
    let file = dir.path().join("disk-image.bin");
    let data = dir.path().join("data");
    write_file(&file, mib);
    std::fs::create_dir_all(&data).unwrap();
    let bytes = (mib << 20) as f64;

    // The default refuses evidence over 100 MiB; an app for disk images would raise it so.
    let limit = ((mib + 1) << 20).to_string();
    let settings = Settings::load(
        |k| (k == "CASEWIRE_MAX_EVIDENCE_BYTES").then(|| limit.clone()),
        None,
        &data,
    )
    .unwrap();
    let app = Arc::new(App::open(&data, settings, Arc::new(JsonFileStore::in_dir(&data))).unwrap());
    let router = router(Arc::new(ServerState::desktop(
        app,
        Arc::new(Picked(file.clone())),
    )));
    let setup = call(
        &router,
        "/api/setup",
        None,
        json!({"username": "chief", "password": "correct horse battery staple"}),
    )
    .await;
    let token = setup["token"].as_str().unwrap().to_owned();

    println!(
        "{mib} MiB file, {rounds} rounds, data in {}",
        base.display()
    );
    println!("| round | sha256sum MB/s | upload MB/s | ratio | RSS before MiB | peak growth MiB |");
    println!("|---|---|---|---|---|---|");
    let (mut ratios, mut growths, mut uploads, mut references) = (vec![], vec![], vec![], vec![]);
    for round in 0..rounds {
        let mut f = std::fs::OpenOptions::new().write(true).open(&file).unwrap();
        f.seek(SeekFrom::Start(0)).unwrap();
        f.write_all(&round.to_le_bytes()).unwrap();
        drop(f);

        let (reference, expected) = sha256sum(&file);
        let case = call(
            &router,
            "/api/cases",
            Some(&token),
            json!({"title": format!("Seized laptop image {round}")}),
        )
        .await;
        let case_id = case["case"]["caseId"].as_str().unwrap().to_owned();

        let before = status_kib("VmRSS:");
        reset_peak();
        let start = Instant::now();
        let body = call(
            &router,
            "/api/evidence/local",
            Some(&token),
            json!({"handle": "picked", "caseId": case_id, "wallet": WALLET, "reporter": "bench"}),
        )
        .await;
        let upload = start.elapsed();
        let peak = status_kib("VmHWM:");
        assert_eq!(body["evidence"]["storageHash"], expected.as_str());

        let (up, refr) = (
            bytes / upload.as_secs_f64() / 1e6,
            bytes / reference.as_secs_f64() / 1e6,
        );
        let growth = peak.saturating_sub(before) as f64 / 1024.0;
        println!(
            "| {round} | {refr:.0} | {up:.0} | {:.2} | {:.1} | {growth:.1} |",
            up / refr,
            before as f64 / 1024.0
        );
        ratios.push(up / refr);
        growths.push(growth);
        uploads.push(up);
        references.push(refr);
    }
    let (ratio, growth) = (median(ratios), growths.iter().copied().fold(0.0, f64::max));
    println!(
        "median ratio {ratio:.2} (target ≥ 0.70), largest peak growth {growth:.1} MiB (target ≤ 64)"
    );
    println!(
        "{}",
        json!({
            "mib": mib,
            "rounds": rounds,
            "upload_mb_s": median(uploads),
            "sha256sum_mb_s": median(references),
            "ratio": ratio,
            "peak_growth_mib": growth,
        })
    );
}
