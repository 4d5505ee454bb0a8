//! `fpga-sync watch` end to end, through the binary, with the `sim` backend against the
//! real local cloud: a power cycle that lost a region's bitstream is repaired by the next
//! read-back (exactly one more program call) and Placement gets the function back; a
//! commit to a local checkout is reconciled within seconds (file notifications), SIGTERM
//! stops the service with exit 0 and JSON log lines; a remote is polled; a device whose
//! programming fails backs off with growing intervals until the repository changes; the
//! metrics count passes, programs, drift repairs and failures, and an idle pass costs one
//! Placement request.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fpga_sync::cloud::placement::Placement;
use fpga_sync::host::discover::backends::sim::{self, Fault};
use fpga_sync::host::driver::Slot;
use fpga_sync::host::id::Id128;
use fpga_sync::host::plan::provider::{VERIFIED_TRAIT, WITHDRAWN_TRAIT};
use fpga_sync::host::report::device_providers;
use fpga_sync::host::report::status::SlotState;
use fpga_sync::reconcile::watch::{Trigger, WatchStatus};
use git2::Repository;
use sha2::{Digest, Sha256};
use tempfile::TempDir;

use crate::support::Site;
use crate::support::cloud::{NOAUTH, local_cloud, unique};

const ADDRESS: &str = "0000:5e:00.0";

fn region() -> Slot {
    Slot::region(ADDRESS, "0")
}

/// A site repository in git assigning `afu-v1` to region 0 of one simulated card on one
/// host, whose images are in Glance and whose compute node is in Placement.
struct HostSite {
    site: Site,
    git: Repository,
    token: String,
    host: String,
    compute_node: String,
    /// The agent's state folder, the sim tree and the source cache.
    state: TempDir,
}

fn bitstreams(t: &str) -> String {
    let lower = t.to_ascii_lowercase();
    let uuid = |n: u8| {
        format!(
            "{:08x}-0000-4000-8000-{:012x}",
            u32::from_str_radix(&lower[lower.len() - 8..], 16).unwrap_or(0),
            n
        )
    };
    let afu = |name: &str, file: &str, bs: u8, function: u8| {
        format!(
            "---\napiVersion: fpga-sync/v1\nkind: Bitstream\nname: {name}\nfile: {file}\nmetadata:\n  bs-name: {name}\n  bs-uuid: {b}\n  vendor: Intel\n  board: PAC-A10\n  shell_id: {s}\n  version: \"1.0\"\n  driver_ver: \"2.1\"\n  driver_path: /opt/opae\n  function_uuid: {f}\n",
            b = uuid(bs),
            s = uuid(1),
            f = uuid(function)
        )
    };
    format!(
        "apiVersion: fpga-sync/v1\nkind: Bitstream\nname: shell-{lower}\nfile: files/shell.bin\nmetadata:\n  bs-name: shell\n  bs-uuid: {s}\n  vendor: Intel\n  board: PAC-A10\n  version: \"1.0\"\n  driver_ver: \"2.1\"\n  driver_path: /opt/opae\n  function_uuid: {f}\n{v1}{v2}",
        s = uuid(1),
        f = uuid(2),
        v1 = afu(&format!("afu1-{lower}"), "files/afu-v1.bin", 3, 4),
        v2 = afu(&format!("afu2-{lower}"), "files/afu-v2.bin", 5, 6),
    )
}

fn hosts(token: &str, host: &str, bitstream: &str) -> String {
    let lower = token.to_ascii_lowercase();
    format!(
        "apiVersion: fpga-sync/v1\nkind: HostGroup\nname: sim-rack\nhosts: [{host}]\nbackend: sim\ndevices:\n  - address: \"{ADDRESS}\"\n    region: \"0\"\n    bitstream: {bitstream}\n    shell: shell-{lower}\n"
    )
}

/// The id the simulated card reports for an opaque image: its sha256's first 128 bits.
fn opaque_id(content: &str) -> Id128 {
    let hex: String = Sha256::digest(content.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Id128::from_sha256_hex(&hex).unwrap()
}

impl HostSite {
    async fn new() -> HostSite {
        let site = Site::new();
        let token = unique("WATCH");
        let host = unique("wh").to_lowercase().replace('_', "-");
        let shell = format!("shell {token}\n");
        site.write("state/files/shell.bin", &shell)
            .write("state/files/afu-v1.bin", format!("afu one {token}\n"))
            .write("state/files/afu-v2.bin", format!("afu two {token}\n"))
            .write("state/bitstreams.yaml", bitstreams(&token))
            .write(
                "state/hosts.yaml",
                hosts(
                    &token,
                    &host,
                    &format!("afu1-{}", token.to_ascii_lowercase()),
                ),
            );
        let git = Repository::init(site.path()).unwrap();
        let state = tempfile::tempdir().unwrap();
        let session = local_cloud().session(NOAUTH).await;
        let compute_node = Placement::new(&session)
            .create_provider(&host, None, None)
            .await
            .unwrap()
            .uuid;
        let me = HostSite {
            site,
            git,
            token,
            host,
            compute_node,
            state,
        };
        me.commit("initial");
        sim::add_device(
            &me.sim(),
            ADDRESS,
            "8086:09c4",
            "simulated PAC",
            Some(opaque_id(&shell)),
        )
        .unwrap();
        sim::add_region(&me.sim(), ADDRESS, "0", None, None).unwrap();
        // The images reach Glance through the central apply.
        let out = me
            .command(&["apply", "--dir", "state", "--auto-approve"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "central apply: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        me
    }

    /// The first AFU's name.
    fn v1(&self) -> String {
        format!("afu1-{}", self.token.to_ascii_lowercase())
    }

    /// The second AFU's name.
    fn v2(&self) -> String {
        format!("afu2-{}", self.token.to_ascii_lowercase())
    }

    fn sim(&self) -> PathBuf {
        self.state.path().join("sim")
    }

    fn status_file(&self) -> PathBuf {
        self.state.path().join("agent/status.json")
    }

    fn status(&self) -> Option<WatchStatus> {
        WatchStatus::read(&self.status_file())
    }

    fn calls(&self) -> usize {
        sim::calls(&self.sim()).len()
    }

    fn assign(&self, bitstream: &str) {
        self.site.write(
            "state/hosts.yaml",
            hosts(&self.token, &self.host, bitstream),
        );
    }

    fn commit(&self, message: &str) {
        crate::support::commit_all(&self.git, "state", message);
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_fpga-sync"));
        command
            .args(args)
            .current_dir(self.site.path())
            .envs(local_cloud().os_env())
            .env("OS_CLOUD", NOAUTH)
            .env("FPGA_SYNC_SITE", &self.token)
            .env(
                "FPGA_SYNC_CACHE_DIR",
                self.state.path().join("source-cache"),
            )
            .env("NO_COLOR", "1")
            .env_remove("RUST_LOG");
        command
    }

    /// Starts `watch` for this host in the background; `repo` is `--repo`.
    fn watch(&self, repo: &str, extra: &[&str]) -> Watch {
        let stderr = self
            .state
            .path()
            .join(format!("watch-{}.log", unique("run")));
        let status = self.status_file();
        let agent = self.state.path().join("agent");
        let sim = self.sim();
        let mut args = vec![
            "watch",
            "--repo",
            repo,
            "--dir",
            "state",
            "--host",
            &self.host,
            "--state-dir",
            agent.to_str().unwrap(),
            "--sim-root",
            sim.to_str().unwrap(),
            "--status-file",
            status.to_str().unwrap(),
        ];
        // Tests run side by side: no fixed metrics port unless asked for.
        if !extra.contains(&"--metrics-address") {
            args.extend(["--metrics-address", "none"]);
        }
        args.extend(extra);
        let child = self
            .command(&args)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .unwrap();
        Watch {
            child: Some(child),
            stderr,
        }
    }

    /// The slot's status once `check` holds for the whole status, within `secs`.
    fn wait_status(
        &self,
        secs: u64,
        what: &str,
        check: impl Fn(&WatchStatus) -> bool,
    ) -> WatchStatus {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(s) = self.status()
                && check(&s)
            {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "no status with {what} within {secs} s; last: {:#?}",
                self.status()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    async fn provider_traits(&self) -> Vec<String> {
        let session = local_cloud().session(NOAUTH).await;
        let providers = device_providers(&Placement::new(&session), &self.compute_node)
            .await
            .unwrap();
        assert_eq!(providers.len(), 1, "{providers:#?}");
        providers[0].traits.iter().cloned().collect()
    }
}

/// The slot carries `bitstream`, verified.
fn verified(status: &WatchStatus, bitstream: &str) -> bool {
    status.status.error.is_none()
        && status.status.slots.iter().any(|s| {
            s.slot == region()
                && s.state == SlotState::Verified
                && s.bitstream.as_deref() == Some(bitstream)
        })
}

/// A running `watch`; killed if the test ends without stopping it.
struct Watch {
    child: Option<Child>,
    stderr: PathBuf,
}

impl Watch {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Sends SIGTERM and waits; returns the exit code and the log.
    fn terminate(&mut self) -> (Option<i32>, String) {
        let mut child = self.child.take().expect("running");
        let sent = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return (status.code(), self.log());
            }
            if Instant::now() > deadline {
                child.kill().ok();
                panic!("watch did not stop within 30 s of SIGTERM:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn wait(&mut self, secs: u64) -> (Option<i32>, String) {
        let mut child = self.child.take().expect("running");
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return (status.code(), self.log());
            }
            if Instant::now() > deadline {
                child.kill().ok();
                panic!("watch did not end within {secs} s:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().ok();
            child.wait().ok();
            eprintln!("watch log:\n{}", self.log());
        }
    }
}

fn afu_id(sim: &Path) -> String {
    std::fs::read_to_string(sim.join("devices").join(ADDRESS).join("regions/0/afu_id"))
        .unwrap_or_default()
        .trim()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_power_cycle_is_repaired_by_the_next_read_back() {
    let site = HostSite::new().await;
    let repo = site.site.path().to_str().unwrap().to_owned();
    let mut watch = site.watch(&repo, &["--verify-every", "1"]);
    let first = site.wait_status(60, "afu-v1 verified", |s| verified(s, &site.v1()));
    assert_eq!(first.trigger, Trigger::Startup);
    assert_eq!(site.calls(), 1, "{}", watch.log());
    let loaded = afu_id(&site.sim());
    assert!(!loaded.is_empty());
    let traits = site.provider_traits().await;
    assert!(traits.iter().any(|t| t == VERIFIED_TRAIT), "{traits:?}");
    assert!(
        traits
            .iter()
            .any(|t| t.starts_with("CUSTOM_FPGA_FUNCTION_ID_INTEL_")),
        "{traits:?}"
    );

    sim::power_cycle(&site.sim()).unwrap();
    let cycled = fpga_sync::host::report::status::now();
    assert_eq!(afu_id(&site.sim()), "");
    site.wait_status(30, "a read-back after the power cycle", |s| {
        s.status.finished_at > cycled && verified(s, &site.v1()) && s.trigger == Trigger::Verify
    });
    // The pass that repaired it, and the read-backs after it, make exactly one call.
    let deadline = Instant::now() + Duration::from_secs(30);
    while afu_id(&site.sim()) != loaded {
        assert!(Instant::now() < deadline, "{}", watch.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    let passes = site.status().unwrap().passes;
    site.wait_status(30, "two more read-backs", |s| s.passes >= passes + 2);
    assert_eq!(
        site.calls(),
        2,
        "exactly one more program call: {}",
        watch.log()
    );
    // The repair says what the card carried before it.
    let log = watch.log();
    assert!(
        log.contains("read it back (the card carried nothing before)"),
        "{log}"
    );
    let traits = site.provider_traits().await;
    assert!(traits.iter().any(|t| t == VERIFIED_TRAIT), "{traits:?}");
    assert!(
        traits
            .iter()
            .any(|t| t.starts_with("CUSTOM_FPGA_FUNCTION_ID_INTEL_")),
        "{traits:?}"
    );
    let (code, log) = watch.terminate();
    assert_eq!(code, Some(0), "{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_power_cycle_whose_repair_cannot_download_is_withdrawn_by_the_verify_pass() {
    let site = HostSite::new().await;
    let repo = site.site.path().to_str().unwrap().to_owned();
    let mut watch = site.watch(&repo, &["--verify-every", "1"]);
    site.wait_status(60, "afu-v1 verified", |s| verified(s, &site.v1()));
    let traits = site.provider_traits().await;
    assert!(traits.iter().any(|t| t == VERIFIED_TRAIT), "{traits:?}");

    // The card loses its bitstream and the cache cannot take the download.
    let cache = site.state.path().join("agent/cache/bitstreams");
    std::fs::remove_dir_all(&cache).unwrap();
    std::fs::write(&cache, "not a folder").unwrap();
    sim::power_cycle(&site.sim()).unwrap();
    let cycled = fpga_sync::host::report::status::now();
    site.wait_status(30, "a failed repair", |s| {
        s.status.finished_at > cycled
            && s.trigger == Trigger::Verify
            && s.status
                .slots
                .iter()
                .any(|slot| slot.slot == region() && slot.state == SlotState::Failed)
    });
    let traits = site.provider_traits().await;
    assert!(!traits.iter().any(|t| t == VERIFIED_TRAIT), "{traits:?}");
    assert!(
        !traits
            .iter()
            .any(|t| t.starts_with("CUSTOM_FPGA_FUNCTION_ID_")),
        "{traits:?}"
    );
    assert!(traits.iter().any(|t| t == WITHDRAWN_TRAIT), "{traits:?}");
    let session = local_cloud().session(NOAUTH).await;
    let provider = device_providers(&Placement::new(&session), &site.compute_node)
        .await
        .unwrap()
        .remove(0);
    let inventory = provider.inventories.values().next().unwrap();
    assert_eq!(inventory.reserved, inventory.total);
    assert!(
        watch.log().contains("withdrawn from scheduling"),
        "{}",
        watch.log()
    );

    // The cache mended, the backoff's retry repairs and offers it again.
    std::fs::remove_file(&cache).unwrap();
    site.wait_status(60, "afu-v1 verified again", |s| verified(s, &site.v1()));
    let traits = site.provider_traits().await;
    assert!(traits.iter().any(|t| t == VERIFIED_TRAIT), "{traits:?}");
    assert!(!traits.iter().any(|t| t == WITHDRAWN_TRAIT), "{traits:?}");
    let (code, log) = watch.terminate();
    assert_eq!(code, Some(0), "{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_commit_to_a_local_checkout_is_reconciled_within_seconds_and_sigterm_stops_cleanly() {
    let site = HostSite::new().await;
    let repo = site.site.path().to_str().unwrap().to_owned();
    let mut watch = site.watch(
        &repo,
        &[
            "--verify-every",
            "300",
            "--debounce",
            "200",
            "--log-format",
            "json",
        ],
    );
    site.wait_status(60, "afu-v1 verified", |s| verified(s, &site.v1()));

    // A change of the work tree alone is not a commit: no pass.
    let passes = site.status().unwrap().passes;
    site.assign(&site.v2());
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(site.status().unwrap().passes, passes, "{}", watch.log());

    let committed = Instant::now();
    site.commit("afu v2");
    let status = site.wait_status(60, "afu-v2 verified", |s| verified(s, &site.v2()));
    let latency = committed.elapsed();
    assert_eq!(status.trigger, Trigger::Repository);
    assert!(latency < Duration::from_secs(15), "took {latency:?}");
    assert_eq!(
        status.status.commit.as_deref(),
        Some(
            site.git
                .head()
                .unwrap()
                .target()
                .unwrap()
                .to_string()
                .as_str()
        )
    );
    assert_eq!(site.calls(), 2);

    let (code, log) = watch.terminate();
    assert_eq!(code, Some(0), "{log}");
    let mut stopping = false;
    for line in log.lines() {
        let event: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}\n{log}"));
        stopping |= event["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("stopping"));
    }
    assert!(stopping, "a `stopping` event: {log}");
    assert!(
        log.contains("\"trigger\":\"repository\"") && log.contains("\"message\":\"pass finished\""),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_remote_is_polled_and_its_new_commit_reconciled() {
    let site = HostSite::new().await;
    let url = format!("file://{}", site.site.path().display());
    let mut watch = site.watch(&url, &["--poll", "2", "--verify-every", "300"]);
    site.wait_status(60, "afu-v1 verified", |s| verified(s, &site.v1()));
    // Polls that find the same commit run no pass.
    let passes = site.status().unwrap().passes;
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(site.status().unwrap().passes, passes, "{}", watch.log());

    site.assign(&site.v2());
    let committed = Instant::now();
    site.commit("afu v2");
    let status = site.wait_status(60, "afu-v2 verified", |s| verified(s, &site.v2()));
    let latency = committed.elapsed();
    assert_eq!(status.trigger, Trigger::Poll);
    // Poll (2 s) + jitter (≤ 0.4 s) + the pass.
    assert!(latency < Duration::from_secs(12), "took {latency:?}");
    let (code, log) = watch.terminate();
    assert_eq!(code, Some(0), "{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_device_backs_off_until_the_repository_changes() {
    let site = HostSite::new().await;
    sim::set_fault(&site.sim(), &region(), Fault::ProgramFails, true).unwrap();
    let repo = site.site.path().to_str().unwrap().to_owned();
    // Backoff base = min(10 s, verify-every) = 1 s.
    let mut watch = site.watch(&repo, &["--verify-every", "1", "--max-backoff", "30"]);

    // The timing of the backoff (1, 2, 4 s ...) is the schedule's, tested on tokio's
    // paused clock in `reconcile::watch`; here: the failing slot is deferred between
    // attempts, read back on every tick, and its attempts are counted in the status file.
    let started = Instant::now();
    let mut deferred_seen = false;
    while site.calls() < 2 || !deferred_seen {
        assert!(
            started.elapsed() < Duration::from_secs(40),
            "{} calls, deferred seen: {deferred_seen}\n{}",
            site.calls(),
            watch.log()
        );
        if let Some(s) = site.status()
            && s.status.slots.iter().any(|s| {
                s.slot == region()
                    && s.state == SlotState::Blocked
                    && s.message.contains("backing off after")
                    && s.message.contains("next attempt at")
            })
        {
            deferred_seen = true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = site.wait_status(10, "the second attempt recorded", |s| {
        s.backoff.first().is_some_and(|b| b.attempts >= 2)
    });
    let slot = status
        .status
        .slots
        .iter()
        .find(|s| s.slot == region())
        .unwrap();
    assert!(
        slot.failures >= 2 && status.passes as usize > site.calls(),
        "read back every tick, programmed only after the backoff: {status:#?}"
    );
    assert_eq!(status.backoff.len(), 1, "{status:#?}");

    // Fixed, and a commit: retried at once, whatever the backoff has to go.
    sim::set_fault(&site.sim(), &region(), Fault::ProgramFails, false).unwrap();
    site.site.write(
        "state/hosts.yaml",
        hosts(&site.token, &site.host, &site.v1()) + "# fixed\n",
    );
    let committed = Instant::now();
    site.commit("retry");
    let status = site.wait_status(30, "afu-v1 verified", |s| verified(s, &site.v1()));
    assert!(
        committed.elapsed() < Duration::from_secs(6),
        "{:?}",
        committed.elapsed()
    );
    assert!(status.backoff.is_empty());
    assert_eq!(
        status
            .status
            .slots
            .iter()
            .find(|s| s.slot == region())
            .unwrap()
            .failures,
        0
    );
    let (code, log) = watch.terminate();
    assert_eq!(code, Some(0), "{log}");
}

#[test]
fn max_runs_ends_the_service_after_that_many_passes() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let site = runtime.block_on(HostSite::new());
    let repo = site.site.path().to_str().unwrap().to_owned();
    let mut watch = site.watch(&repo, &["--verify-every", "1", "--max-runs", "2"]);
    let (code, log) = watch.wait(60);
    assert_eq!(code, Some(0), "{log}");
    let status = site.status().unwrap();
    assert_eq!(status.passes, 2, "{log}");
    assert_eq!(status.trigger, Trigger::Verify);
    assert!(verified(&status, &site.v1()), "{status:#?}");
    assert_eq!(site.calls(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn with_worktree_an_edit_of_the_state_folder_is_reconciled() {
    let site = HostSite::new().await;
    let repo = site.site.path().to_str().unwrap().to_owned();
    let mut watch = site.watch(
        &repo,
        &["--worktree", "--verify-every", "300", "--debounce", "200"],
    );
    site.wait_status(60, "afu-v1 verified", |s| verified(s, &site.v1()));
    let edited = Instant::now();
    site.assign(&site.v2());
    let status = site.wait_status(60, "afu-v2 verified", |s| verified(s, &site.v2()));
    assert!(
        edited.elapsed() < Duration::from_secs(15),
        "{:?}",
        edited.elapsed()
    );
    assert_eq!(status.trigger, Trigger::Repository);
    assert_eq!(status.status.commit, None, "files on disk");
    // Rewriting the same content is no change.
    let passes = status.passes;
    site.assign(&site.v2());
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(site.status().unwrap().passes, passes, "{}", watch.log());
    let (code, log) = watch.terminate();
    assert_eq!(code, Some(0), "{log}");
}

/// The value of one series in OpenMetrics text.
fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| {
            l.strip_prefix(series)?
                .strip_prefix(' ')?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no {series} in:\n{text}"))
}

async fn get(url: &str) -> (u16, String) {
    let r = reqwest::get(url).await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_count_passes_programs_drift_repairs_and_failures_and_an_idle_pass_costs_one_request()
 {
    let site = HostSite::new().await;
    let repo = site.site.path().to_str().unwrap().to_owned();
    let mut watch = site.watch(
        &repo,
        &[
            "--verify-every",
            "1",
            "--max-backoff",
            "2",
            "--log-format",
            "json",
            "--metrics-address",
            "127.0.0.1:0",
        ],
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    let address = loop {
        let found = watch.log().lines().find_map(|l| {
            let e: serde_json::Value = serde_json::from_str(l).ok()?;
            (e["message"].as_str()?
                == "serving metrics on /metrics and the health check on /healthz")
                .then(|| e["address"].as_str().map(str::to_owned))?
        });
        if let Some(a) = found {
            break a;
        }
        assert!(Instant::now() < deadline, "{}", watch.log());
        std::thread::sleep(Duration::from_millis(50));
    };
    let url = |path: &str| format!("http://{address}{path}");
    site.wait_status(60, "afu-v1 verified", |s| verified(s, &site.v1()));
    let passes = site.status().unwrap().passes;
    site.wait_status(30, "five idle passes", |s| s.passes >= passes + 5);
    let (code, text) = get(&url("/metrics")).await;
    assert_eq!(code, 200);
    assert_eq!(
        metric(&text, "fpga_sync_programs_total{result=\"verified\"}"),
        1.0
    );
    assert!(
        metric(&text, "fpga_sync_passes_total{result=\"ok\"}") >= 6.0,
        "{text}"
    );
    assert_eq!(metric(&text, "fpga_sync_slots{state=\"verified\"}"), 1.0);
    assert_eq!(metric(&text, "fpga_sync_behind_head_seconds"), 0.0);
    assert!(metric(&text, "fpga_sync_last_success_timestamp_seconds") > 1.7e9);
    assert_eq!(get(&url("/healthz")).await, (200, "ok\n".to_owned()));

    // Idle passes: the host's tree listed once; nothing else read or written.
    let idle: Vec<u64> = watch
        .log()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| {
            e["message"] == "pass finished" && e["trigger"] == "verify" && e["programmed"] == 0
        })
        .map(|e| e["cloud_requests"].as_u64().unwrap())
        .collect();
    // The first read-back after the program reads the provider it wrote (its generation
    // moved: traits, inventories, allocations); then one listing of the tree per pass.
    assert!(idle.len() >= 4, "{idle:?}");
    assert!(idle[0] <= 4, "requests per idle pass: {idle:?}");
    assert!(
        idle[1..].iter().all(|n| *n == 1),
        "requests per idle pass: {idle:?}"
    );

    // A power cycle: the next read-back programs it again, a drift repair.
    sim::power_cycle(&site.sim()).unwrap();
    site.wait_status(30, "repaired", |s| {
        s.status.slots.iter().any(|x| x.programmed) && verified(s, &site.v1())
    });
    let (_, text) = get(&url("/metrics")).await;
    assert_eq!(
        metric(&text, "fpga_sync_programs_total{result=\"verified\"}"),
        2.0
    );
    assert_eq!(metric(&text, "fpga_sync_drift_repairs_total"), 1.0);

    // A card that fails to program: failures counted, the slot failed; the agent is fine.
    sim::set_fault(&site.sim(), &region(), Fault::ProgramFails, true).unwrap();
    sim::power_cycle(&site.sim()).unwrap();
    site.wait_status(30, "a failed slot", |s| {
        s.status.slots.iter().any(|x| x.state == SlotState::Failed)
    });
    let (_, text) = get(&url("/metrics")).await;
    assert!(
        metric(&text, "fpga_sync_slot_failures_total") >= 1.0,
        "{text}"
    );
    assert!(
        metric(&text, "fpga_sync_programs_total{result=\"failed\"}") >= 1.0,
        "{text}"
    );
    assert_eq!(metric(&text, "fpga_sync_slots{state=\"failed\"}"), 1.0);
    assert_eq!(metric(&text, "fpga_sync_drift_repairs_total"), 1.0);
    assert!(
        metric(&text, "fpga_sync_behind_head_seconds") > 0.0,
        "{text}"
    );
    assert_eq!(get(&url("/healthz")).await.0, 200);
    assert_eq!(get(&url("/nothing")).await.0, 404);
    let (code, log) = watch.terminate();
    assert_eq!(code, Some(0), "{log}");
}

#[test]
fn every_option_of_the_agent_can_live_in_its_configuration_file() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let site = runtime.block_on(HostSite::new());
    let agent = site.state.path().join("agent");
    let conf = site.state.path().join("agent.conf");
    std::fs::write(
        &conf,
        format!(
            "# written by the test\nFPGA_SYNC_HOST={host}\nFPGA_SYNC_REPO={repo}\nFPGA_SYNC_DIR=state\nFPGA_SYNC_STATE_DIR={agent}\nFPGA_SYNC_SIM_ROOT={sim}\nFPGA_SYNC_STATUS_FILE={status}\nFPGA_SYNC_VERIFY_EVERY=1\nFPGA_SYNC_LOG_FORMAT=json\nFPGA_SYNC_METRICS_ADDRESS=none\nOS_CLOUD='{NOAUTH}'\n",
            host = site.host,
            repo = site.site.path().display(),
            agent = agent.display(),
            sim = site.sim().display(),
            status = site.status_file().display(),
        ),
    )
    .unwrap();
    let out = site
        .command(&[
            "watch",
            "--config",
            conf.to_str().unwrap(),
            "--max-runs",
            "2",
        ])
        .env_remove("OS_CLOUD")
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{log}");
    let status = site
        .status()
        .expect("the status file the configuration names");
    assert!(verified(&status, &site.v1()), "{status:#?}");
    assert_eq!(status.passes, 2);
    // JSON lines, from the file's FPGA_SYNC_LOG_FORMAT.
    assert!(
        log.lines()
            .all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok()),
        "{log}"
    );
}

/// Point 2: credentials Keystone refuses are the agent's configuration, not an outage:
/// the pass fails, the status file says why, and the service exits 1 (so that systemd
/// restarts it with backoff and shows it failed) instead of retrying while it looks
/// healthy.
#[test]
fn a_login_keystone_refuses_stops_the_service_with_exit_1() {
    let site = Site::new();
    let token = unique("FATAL");
    let host = unique("fh").to_lowercase().replace('_', "-");
    site.write("state/files/shell.bin", "shell")
        .write("state/files/afu-v1.bin", "one")
        .write("state/files/afu-v2.bin", "two")
        .write("state/bitstreams.yaml", bitstreams(&token))
        .write(
            "state/hosts.yaml",
            hosts(
                &token,
                &host,
                &format!("afu1-{}", token.to_ascii_lowercase()),
            ),
        )
        .write(
            "secure.yaml",
            "clouds:\n  local-keystone:\n    auth:\n      password: not-the-Pa55word-42\n",
        );
    let state = tempfile::tempdir().unwrap();
    let sim_root = state.path().join("sim");
    sim::add_device(&sim_root, ADDRESS, "8086:09c4", "simulated PAC", None).unwrap();
    sim::add_region(&sim_root, ADDRESS, "0", None, None).unwrap();
    let status_file = state.path().join("status.json");
    let out = Command::new(env!("CARGO_BIN_EXE_fpga-sync"))
        .args([
            "watch",
            "--repo",
            ".",
            "--worktree",
            "--dir",
            "state",
            "--host",
            &host,
            "--sim-root",
            sim_root.to_str().unwrap(),
            "--state-dir",
            state.path().to_str().unwrap(),
            "--max-runs",
            "5",
        ])
        .current_dir(site.path())
        .envs(local_cloud().os_env())
        .env("OS_CLOUD", crate::support::cloud::KEYSTONE)
        .env("OS_CLIENT_SECURE_FILE", site.path().join("secure.yaml"))
        .env("FPGA_SYNC_SITE", &token)
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{log}");
    assert!(log.contains("ERROR"), "{log}");
    assert!(
        log.contains("exiting so that the service manager restarts it with backoff"),
        "{log}"
    );
    assert!(!log.contains("not-the-Pa55word-42"), "{log}");
    let status = WatchStatus::read(&status_file).expect("a status file");
    assert_eq!(status.passes, 1, "one pass, no retries: {log}");
    assert!(
        status
            .status
            .error
            .as_deref()
            .unwrap_or_default()
            .contains("refused the user and password of cloud `local-keystone`"),
        "{status:#?}"
    );
}
