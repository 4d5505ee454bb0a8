//! The lease held in Placement (`docs/locking.md`), through the binary against the real
//! local cloud: concurrent central applies of one site (two in keystone mode, five in
//! noauth mode) wait for each other, name the holder, and end with exactly one complete
//! image per bitstream and an empty next plan; a holder killed with SIGKILL mid-upload
//! blocks `--lock-timeout 0` (which names it), its upload is left alone by `plan` while
//! its lease is there, and the next apply breaks the lease after its TTL and converges;
//! `lock status` (human and JSON) and `lock break` (a wrong id refused, a live lease
//! broken loudly, its holder told); `apply --host` and a `watch` pass that programs take
//! the host's lease. The lease's timing is tested on the paused clock in
//! `src/reconcile/lease.rs`.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fpga_sync::cloud::glance::{Glance, Image, ImageStatus};
use fpga_sync::cloud::placement::Placement;
use fpga_sync::cloud::session::Session;
use fpga_sync::host::discover::backends::sim;
use fpga_sync::reconcile::lease::{self, Lease, LeaseOptions, Scope};
use fpga_sync::reconcile::watch::WatchStatus;
use git2::Repository;

use crate::chaos::seed;
use crate::support::chaos::{ChaosCloud, Faults};
use crate::support::cloud::{KEYSTONE, NOAUTH, local_cloud, unique};
use crate::support::fake_host::FakeHost;
use crate::support::host_site::{ADDR, HostDirs, HostSite, IFACE, compute_node};

/// A site repository in git with `count` bitstreams of `size` bytes, named by a token.
struct LeaseSite {
    dir: tempfile::TempDir,
    token: String,
    uuids: BTreeSet<String>,
    cloud: &'static str,
}

impl LeaseSite {
    fn new(cloud: &'static str, count: usize, size: usize) -> LeaseSite {
        let token = unique("LEASE");
        let lower = token.to_ascii_lowercase().replace('_', "-");
        let dir = tempfile::tempdir().unwrap();
        let n = u64::from_str_radix(&token[token.len() - 12..], 16).unwrap();
        let mut docs = String::new();
        let mut uuids = BTreeSet::new();
        std::fs::create_dir_all(dir.path().join("files")).unwrap();
        for i in 0..count {
            let uuid = format!("{:08x}-0000-4000-8000-{:012x}", i, n);
            let content: Vec<u8> = format!("{token} bitstream {i} ")
                .into_bytes()
                .into_iter()
                .cycle()
                .take(size)
                .collect();
            std::fs::write(dir.path().join(format!("files/b{i}.bin")), content).unwrap();
            docs.push_str(&format!(
                "apiVersion: fpga-sync/v1\nkind: Bitstream\nname: b{i}-{lower}\nfile: files/b{i}.bin\nmetadata:\n  bs-name: b{i}\n  bs-uuid: {uuid}\n  vendor: Intel\n  board: PAC-A10\n  version: \"1.0\"\n  driver_ver: \"2.1\"\n  driver_path: /opt/opae\n  function_uuid: {:08x}-0000-4000-9000-{:012x}\n---\n",
                i, n
            ));
            uuids.insert(uuid);
        }
        std::fs::write(dir.path().join("site.yaml"), docs).unwrap();
        let git = Repository::init(dir.path()).unwrap();
        crate::support::commit_all(&git, "*", "initial");
        LeaseSite {
            dir,
            token,
            uuids,
            cloud,
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_fpga-sync"));
        command
            .args(args)
            .current_dir(self.path())
            .envs(local_cloud().os_env())
            .env("OS_CLOUD", self.cloud)
            .env("FPGA_SYNC_SITE", &self.token)
            .env("FPGA_SYNC_CACHE_DIR", self.path().join(".cache"))
            .env("NO_COLOR", "1")
            .env_remove("FPGA_SYNC_LOCK_TIMEOUT")
            .env_remove("FPGA_SYNC_LOCK_TTL");
        command
    }

    fn run(&self, args: &[&str]) -> (i32, String, String) {
        let out: Output = self.command(args).output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Starts a command whose stderr lines are collected as they come.
    fn spawn(&self, args: &[&str]) -> Running {
        self.spawn_with(args, &[])
    }

    /// [`Self::spawn`] with more environment (a chaos proxy's cloud).
    fn spawn_with(&self, args: &[&str], env: &[(&str, String)]) -> Running {
        let mut child = self
            .command(args)
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let stderr = child.stderr.take().unwrap();
        let sink = lines.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        Running {
            child,
            lines,
            reader: Some(reader),
        }
    }

    fn scope(&self) -> Scope {
        Scope::Site(self.token.clone())
    }

    /// The site's images in Glance, by bs-uuid.
    async fn images(&self, session: &Session) -> BTreeMap<String, Vec<Image>> {
        let mut out: BTreeMap<String, Vec<Image>> = BTreeMap::new();
        for image in Glance::new(session).images(&["FPGA"]).await.unwrap() {
            let properties = image.properties();
            if let Some(uuid) = properties
                .get("bs-uuid")
                .filter(|u| self.uuids.contains(*u))
            {
                out.entry(uuid.clone()).or_default().push(image);
            }
        }
        out
    }

    /// Exactly one image per bitstream, active and marked complete.
    async fn assert_one_complete_image_each(&self, session: &Session, context: &str) {
        let images = self.images(session).await;
        assert_eq!(
            images.keys().cloned().collect::<BTreeSet<_>>(),
            self.uuids,
            "{context}"
        );
        for (uuid, found) in &images {
            let states: Vec<(ImageStatus, Option<String>)> = found
                .iter()
                .map(|i| {
                    (
                        i.status.clone(),
                        i.properties().get("fpga_sync_state").cloned(),
                    )
                })
                .collect();
            assert_eq!(
                states,
                [(ImageStatus::Active, Some("complete".to_owned()))],
                "bitstream {uuid}: {context}"
            );
        }
    }

    /// The next plan is empty (`--detailed-exitcode` 0).
    fn assert_plan_empty(&self) {
        let (code, out, err) = self.run(&["plan", "--detailed-exitcode"]);
        assert_eq!(code, 0, "the next plan is not empty:\n{out}{err}");
    }
}

/// A running command.
struct Running {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Running {
    fn text(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }

    /// Waits until a stderr line satisfies `check`, failing after `secs`.
    fn wait_for(&mut self, secs: u64, what: &str, check: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(line) = self.lines.lock().unwrap().iter().find(|l| check(l)) {
                return line.clone();
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                self.reader.take().map(|r| r.join());
                if let Some(line) = self.lines.lock().unwrap().iter().find(|l| check(l)) {
                    return line.clone();
                }
                panic!("ended ({status}) before {what}:\n{}", self.text());
            }
            assert!(
                Instant::now() < deadline,
                "no {what} within {secs} s:\n{}",
                self.text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for the end: the exit code and stderr.
    fn finish(mut self) -> (i32, String) {
        let status = self.child.wait().unwrap();
        self.reader.take().map(|r| r.join());
        (status.code().unwrap_or(-1), self.text())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The lease taken by this test process, as another runner would hold it.
async fn hold(session: &Session, scope: &Scope, ttl: u64) -> Lease {
    let options = LeaseOptions {
        ttl: Duration::from_secs(ttl),
        timeout: Duration::from_secs(60),
        operation: "test".into(),
        commit: None,
    };
    lease::acquire(session, scope, &options, &|_| {}, &|| false)
        .await
        .unwrap_or_else(|e| panic!("the test could not take the lease: {e}"))
}

/// The id of the lease held on `scope`, read in-process.
async fn holder_of(session: &Session, scope: &Scope) -> Option<String> {
    lease::status(session, scope)
        .await
        .unwrap()
        .held
        .map(|h| h.id)
}

/// The pids named by `waiting ...` lines.
fn holders_named(text: &str) -> Vec<u32> {
    text.lines()
        .filter(|l| l.starts_with("waiting up to "))
        .filter_map(|l| {
            let rest = l.split(", pid ").nth(1)?;
            rest.split(',').next()?.parse().ok()
        })
        .collect()
}

async fn concurrent_applies(cloud: &'static str, runs: usize) {
    let site = LeaseSite::new(cloud, 4, 256 * 1024);
    let session = local_cloud().session(cloud).await;
    let me = std::process::id();
    // This test holds the lease first, so that every run starts by waiting. A short TTL
    // only makes waiting runs look more often (a tenth of it, at least 0.2 s).
    let held = hold(&session, &site.scope(), 5).await;
    let mut running: Vec<Running> = (0..runs)
        .map(|_| {
            site.spawn(&[
                "apply",
                "--auto-approve",
                "--lock-timeout",
                "120",
                "--lock-ttl",
                "5",
            ])
        })
        .collect();
    for r in &mut running {
        r.wait_for(60, "a waiting message naming the test", |l| {
            l.starts_with("waiting up to 120 s (`--lock-timeout`) for the lease of site")
                && l.contains(&format!(", pid {me}, `test`"))
        });
    }
    assert_eq!(
        holder_of(&session, &site.scope()).await,
        Some(held.id().to_owned())
    );
    lease::finish(held, &|_| {}).await;

    let pids: Vec<u32> = running.iter().map(|r| r.child.id()).collect();
    let ended: Vec<(u32, i32, String)> = running
        .into_iter()
        .map(|r| {
            let pid = r.child.id();
            let (code, text) = r.finish();
            (pid, code, text)
        })
        .collect();
    let mut uploaded = 0;
    for (pid, code, text) in &ended {
        assert_eq!(*code, 0, "run {pid}:\n{text}");
        for named in holders_named(text) {
            assert!(
                named == me || (pids.contains(&named) && named != *pid),
                "run {pid} named {named}, which is not a holder:\n{text}"
            );
        }
        assert!(text.contains("took the lease of site"), "{text}");
        assert!(text.contains("released the lease of site"), "{text}");
        if text.contains("Apply complete: 4 action(s) done.") {
            uploaded += 1;
        } else {
            assert!(
                text.contains("Nothing to do: the cloud matches the desired state."),
                "run {pid}:\n{text}"
            );
        }
    }
    assert_eq!(uploaded, 1, "{ended:#?}");
    site.assert_one_complete_image_each(&session, &format!("{ended:#?}"))
        .await;
    site.assert_plan_empty();
    assert_eq!(holder_of(&session, &site.scope()).await, None);
}

#[tokio::test(flavor = "multi_thread")]
async fn two_concurrent_applies_wait_name_the_holder_and_upload_each_bitstream_once() {
    concurrent_applies(KEYSTONE, 2).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn five_concurrent_applies_wait_name_the_holder_and_upload_each_bitstream_once() {
    concurrent_applies(NOAUTH, 5).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_holder_blocks_until_its_ttl_then_the_next_apply_breaks_it_and_converges() {
    let session = local_cloud().session(NOAUTH).await;
    let glance = Glance::new(&session);
    // Killed in the middle of an upload. The single Glance worker is busy with an upload,
    // so its API cannot show one in progress; Glance's file store can: a new file growing
    // there is the upload. The killed run goes through a proxy that passes 4 MiB/s, so
    // most of its 16 MiB are still to come when the kill lands (on loopback alone an
    // idle machine finished uploads before the kill); should Glance complete the image
    // anyway, the scenario starts again on a new site.
    let chaos = ChaosCloud::new(NOAUTH);
    chaos.set(seed(), |_| Faults {
        bandwidth: Some(4 << 20),
        ..Faults::none()
    });
    let store = local_cloud().state.join("noauth-glance/images");
    let mut attempt = 0;
    let (site, first, pid, uploading) = loop {
        attempt += 1;
        assert!(attempt <= 3, "no upload was caught under way in 3 attempts");
        let before: Vec<_> = std::fs::read_dir(&store)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        let site = LeaseSite::new(NOAUTH, 2, 16 << 20);
        let mut first = site.spawn_with(
            &[
                "apply",
                "--auto-approve",
                "--parallel",
                "1",
                "--lock-ttl",
                "2",
            ],
            &chaos.env(),
        );
        let pid = first.child.id();
        first.wait_for(60, "the lease taken", |l| l.starts_with("took the lease"));
        let deadline = Instant::now() + Duration::from_secs(120);
        let growing = loop {
            let growing = std::fs::read_dir(&store)
                .into_iter()
                .flatten()
                .flatten()
                .filter(|e| !before.contains(&e.file_name()))
                .find(|e| e.metadata().is_ok_and(|m| m.len() >= 1 << 20))
                .map(|e| e.file_name().to_string_lossy().into_owned());
            if growing.is_some() {
                first.child.kill().unwrap();
                break growing;
            }
            if first.child.try_wait().unwrap().is_some() {
                break None;
            }
            assert!(
                Instant::now() < deadline,
                "no upload reached Glance's store:\n{}",
                first.text()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let Some(id) = growing else {
            first.finish();
            continue;
        };
        let image = glance.image(&id).await.unwrap();
        if image.status != ImageStatus::Active {
            break (site, first, pid, image);
        }
        first.finish();
    };
    let (code, _) = first.finish();
    assert_eq!(code, -1, "killed by a signal");
    let lease_id = uploading.properties()["fpga_sync_lease"].clone();

    // The dead holder is shown, and its upload is not taken for an interrupted one while
    // its lease is there.
    let (code, status, err) = site.run(&["lock", "status", "--format", "json"]);
    assert_eq!(code, 0, "{err}");
    let status: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert_eq!(status["lease"]["pid"], pid);
    assert_eq!(status["lease"]["id"], lease_id.as_str());
    assert_eq!(status["lease"]["ttl_seconds"], 2);
    assert_eq!(status["lease"]["operation"], "apply");
    let (_, plan, plan_err) = site.run(&["plan"]);
    assert!(
        plan.contains(&format!(
            "({}) is being uploaded by the run holding lease {lease_id}: left alone",
            uploading.id
        )),
        "{plan}{plan_err}"
    );

    // `--lock-timeout 0` fails at once, naming the holder and how to break it.
    let (code, out, err) = site.run(&["apply", "--auto-approve", "--lock-timeout", "0"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains("is locked by another fpga-sync run: host `")
            && err.contains(&format!(", pid {pid}, `apply`, commit ")),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "fpga-sync lock break {lease_id} --site {}",
            site.token
        )),
        "{err}"
    );
    assert!(!err.contains("waiting up to"), "{err}");

    // A run that waits sees no renewal for the TTL, breaks the lease and converges,
    // finishing or replacing the killed run's upload.
    let (code, out, err) = site.run(&["apply", "--auto-approve", "--lock-timeout", "60"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        err.contains("broke the lease of site") && err.contains(&format!(", pid {pid}, `apply`")),
        "{err}"
    );
    site.assert_one_complete_image_each(&session, &err).await;
    site.assert_plan_empty();
}

#[tokio::test(flavor = "multi_thread")]
async fn lock_status_shows_the_holder_and_lock_break_refuses_a_wrong_id_and_breaks_a_live_lease() {
    for cloud in [KEYSTONE, NOAUTH] {
        let site = LeaseSite::new(cloud, 1, 16);
        let session = local_cloud().session(cloud).await;
        let (code, free, err) = site.run(&["lock", "status"]);
        assert_eq!(code, 0, "{err}");
        assert_eq!(
            free,
            format!(
                "The lease of site `{t}` is free (Placement provider `fpga-sync-lock:site:{t}`: not made yet).\n",
                t = site.token
            )
        );
        let held = hold(&session, &site.scope(), 3).await;
        let me = std::process::id();
        let (code, shown, err) = site.run(&["lock", "status"]);
        assert_eq!(code, 0, "{err}");
        for line in [
            format!("The lease of site `{}` is held", site.token),
            format!("  host:       {}", lease::hostname()),
            format!("  pid:        {me}"),
            "  operation:  test".to_owned(),
            format!("  lease id:   {}", held.id()),
            format!("fpga-sync lock break {} --site {}", held.id(), site.token),
        ] {
            assert!(shown.contains(&line), "{line:?} missing:\n{shown}");
        }
        // What does not depend on the auth mode, once.
        if cloud == NOAUTH {
            let (_, json, _) = site.run(&["lock", "status", "--format", "json"]);
            let json: serde_json::Value = serde_json::from_str(&json).unwrap();
            assert_eq!(json["format_version"], 1);
            assert_eq!(json["scope"]["kind"], "site");
            assert_eq!(
                json["provider"]["name"],
                format!("fpga-sync-lock:site:{}", site.token)
            );
            assert_eq!(json["lease"]["ttl_seconds"], 3);
            assert_eq!(json["lease"]["commit"], serde_json::Value::Null);

            // A wrong id is refused, naming the holder; nothing changes.
            let wrong = uuid::Uuid::from_u128(rand::random()).to_string();
            let (code, _, err) = site.run(&["lock", "break", &wrong]);
            assert_eq!(code, 1, "{err}");
            assert!(
                err.contains(&format!(
                    "lease `{wrong}` does not hold site `{}`",
                    site.token
                )) && err.contains(&format!("pid {me}")),
                "{err}"
            );
            assert_eq!(held.lost(), None);
        }

        // The right id breaks the live lease, loudly; its holder notices at its next
        // renewal (every second here).
        let (code, out, err) = site.run(&["lock", "break", held.id()]);
        assert_eq!(code, 0, "{err}");
        assert_eq!(
            out,
            format!("Lease {} of site `{}` broken.\n", held.id(), site.token)
        );
        assert!(err.contains("WARNING: broke the lease of site"), "{err}");
        assert!(
            err.contains(&format!(
                "WARNING: that run's process is still running on this host (pid {me})"
            )),
            "{err}"
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        let lost = loop {
            if let Some(lost) = held.lost() {
                break lost;
            }
            assert!(Instant::now() < deadline, "the holder never noticed");
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert!(lost.contains("its allocation is gone"), "{lost}");
        let (_, free, _) = site.run(&["lock", "status"]);
        assert!(free.contains("is free (Placement provider"), "{free}");
        assert_eq!(held.release().await.unwrap(), lease::Released::Gone);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn apply_host_and_a_watch_pass_that_programs_take_the_host_lease() {
    let site = HostSite::new("sim", &["-h1"]);
    let host = site.host(1);
    let session = local_cloud().session(NOAUTH).await;
    compute_node(&Placement::new(&session), &host).await;
    let fake = FakeHost::new();
    let root = fake.config().sim_root;
    sim::add_device(&root, ADDR, "8086:09c4", "simulated PAC", None).unwrap();
    sim::add_region(&root, ADDR, "0", Some(IFACE), None).unwrap();
    let dirs = HostDirs::of(&fake);
    let me = std::process::id();
    let scope = Scope::Host(host.clone());
    let held = hold(&session, &scope, 120).await;

    let (code, out) = site.apply_host(&host, &dirs, &["--lock-timeout", "0"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!(
            "host `{host}` is locked by another fpga-sync run: host `"
        )) && out.contains(&format!("pid {me}, `test`")),
        "{out}"
    );
    assert!(
        out.contains(&format!("fpga-sync lock break {} --host {host}", held.id())),
        "{out}"
    );
    assert_eq!(sim::calls(&root).len(), 0, "programmed without the lease");

    let status_file = dirs.state.join("watch-status.json");
    let watch = |extra: &[&str]| {
        let mut args = vec![
            "watch",
            "--repo",
            ".",
            "--host",
            &host,
            "--max-runs",
            "1",
            "--status-file",
            status_file.to_str().unwrap(),
        ];
        args.extend(extra);
        site.run(&args, &dirs.env())
    };
    let (code, log) = watch(&["--lock-timeout", "0"]);
    assert_eq!(code, 0, "{log}");
    let status = WatchStatus::read(&status_file).expect("a status file");
    let error = status.status.error.unwrap_or_default();
    assert!(
        error.contains(&format!("host `{host}` is locked by another fpga-sync run"))
            && error.contains(&format!("pid {me}")),
        "{error}\n{log}"
    );
    assert_eq!(sim::calls(&root).len(), 0, "programmed without the lease");
    let (_, shown) = site.run(&["lock", "status", "--host", &host], &[]);
    assert!(shown.contains(&format!("  pid:        {me}")), "{shown}");

    lease::finish(held, &|_| {}).await;
    let (code, log) = watch(&[]);
    assert_eq!(code, 0, "{log}");
    let status = WatchStatus::read(&status_file).expect("a status file");
    assert_eq!(status.status.error, None, "{log}");
    assert!(!sim::calls(&root).is_empty(), "{log}");
    assert!(
        status.status.slots.iter().any(|s| s.programmed),
        "{:#?}",
        status.status
    );
    assert_eq!(holder_of(&session, &scope).await, None);
    // Nothing left to program: `apply --host` takes and gives back the lease.
    let (code, out) = site.apply_host(&host, &dirs, &["--lock-timeout", "0"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!("took the lease of host `{host}`"))
            && out.contains(&format!("released the lease of host `{host}`")),
        "{out}"
    );
}

#[test]
fn the_lease_flags_and_commands_have_help() {
    let site = crate::support::Site::new();
    for (args, expected) in [
        (vec!["apply", "--help"], "--lock-timeout <SECONDS>"),
        (vec!["apply", "--help"], "--lock-ttl <SECONDS>"),
        (vec!["watch", "--help"], "--lock-timeout <SECONDS>"),
        (vec!["lock", "--help"], "force-unlock"),
        (vec!["lock", "status", "--help"], "--format <FORMAT>"),
        (vec!["lock", "break", "--help"], "<ID>"),
    ] {
        let out = site.run(&args);
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains(expected), "{args:?}: {text}");
    }
    let out = site.run(&["apply", "--lock-ttl", "0"]);
    assert_eq!(out.status.code(), Some(2), "a TTL of 0 is a usage error");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_interrupted_apply_stops_between_actions_and_gives_the_lease_back() {
    let site = LeaseSite::new(NOAUTH, 3, 8 * 1024 * 1024);
    let session = local_cloud().session(NOAUTH).await;
    let mut run = site.spawn(&["apply", "--auto-approve", "--parallel", "1"]);
    run.wait_for(60, "an upload started", |l| l.ends_with(": started"));
    // As a CI runner cancels a job.
    let pid = libc::pid_t::try_from(run.child.id()).unwrap();
    // SAFETY: signalling a child process this test started.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let (code, text) = run.finish();
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("Interrupted: stopping after what is under way"),
        "{text}"
    );
    assert!(text.contains("stopped: interrupted;"), "{text}");
    assert!(text.contains("released the lease of site"), "{text}");
    assert_eq!(holder_of(&session, &site.scope()).await, None);
    // The next apply does not wait, and converges.
    let (code, out, err) = site.run(&["apply", "--auto-approve", "--lock-timeout", "0"]);
    assert_eq!(code, 0, "{out}{err}");
    site.assert_one_complete_image_each(&session, &err).await;
    site.assert_plan_empty();
}
