//! Benchmark driver: streams a file to Glance through fpga-sync's client, or only hashes
//! it, and prints wall time, throughput and the process's peak resident memory.
//!
//!     cargo run --release --example bench-upload -- upload CLOUD FILE
//!     cargo run --release --example bench-upload -- hash FILE
//!
//! CLOUD is a cloud of the clouds.yaml that `OS_CLIENT_CONFIG_FILE` names.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use fpga_sync::cloud::config;
use fpga_sync::cloud::glance::{Glance, NewImage, digest_file};
use fpga_sync::cloud::hashing::HashAlgo;
use fpga_sync::cloud::session::{Session, SessionOptions};

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("VmHWM:")
                    .map(|v| v.trim().trim_end_matches(" kB").trim().parse().unwrap_or(0))
            })
        })
        .unwrap_or(0)
}

fn report(what: &str, bytes: u64, started: Instant) {
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{what}: {bytes} bytes in {secs:.2} s = {:.0} MiB/s, peak RSS {} KiB",
        bytes as f64 / secs / 1_048_576.0,
        peak_rss_kib()
    );
}

fn sha256_only(path: &Path) -> String {
    use sha2::Digest;
    use std::io::Read;
    let mut file = std::fs::File::open(path).expect("file");
    let mut hasher = sha2::Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buffer).expect("read");
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["hash", file] => {
            let size = std::fs::metadata(file).expect("file").len();
            let started = Instant::now();
            let sha256 = sha256_only(Path::new(file));
            report("sha256 alone (sha2 crate, 1 MiB reads)", size, started);
            println!("sha256 {sha256}");
            let started = Instant::now();
            digest_file(Path::new(file), HashAlgo::Sha512)
                .await
                .expect("hash");
            report("sha256 + sha512 in one pass", size, started);
        }
        ["upload", cloud, file] => {
            let env = |k: &str| config::process_env(k);
            let session = Session::connect(
                config::resolve(Some(cloud), &env).expect("cloud"),
                SessionOptions::default(),
            )
            .await
            .expect("connect");
            let glance = Glance::new(&session);
            let image = glance
                .create(&NewImage {
                    name: "fpga-sync-bench".into(),
                    visibility: "private".into(),
                    tags: vec!["FPGA-BENCH".into()],
                    properties: BTreeMap::new(),
                })
                .await
                .expect("create");
            let size = std::fs::metadata(file).expect("file").len();
            let started = Instant::now();
            glance
                .upload(
                    &image.id,
                    Path::new(file),
                    HashAlgo::Sha512,
                    Arc::new(|_| {}),
                )
                .await
                .expect("upload");
            report(
                "fpga-sync upload (sha256 + sha512 on the way, then Glance's hash checked)",
                size,
                started,
            );
            glance.delete(&image.id).await.expect("delete");
        }
        _ => {
            eprintln!("usage: bench-upload hash FILE | bench-upload upload CLOUD FILE");
            std::process::exit(2);
        }
    }
}
