//! A fleet on one machine: N real host agents (`fpga-sync watch` processes, `sim` backend),
//! each with its own host name, sim tree, state folder and compute-node provider, against
//! the one local cloud, reconciling one site repository (a local git checkout every agent
//! watches). The site declares a shell, four AFU versions (`v1` ... `v4`, opaque images the
//! sim identifies by their sha256) and one host group `fleet-<token>` naming the hosts by
//! pattern, with `devices` simulated cards per host (region `0` of each carries an AFU);
//! its `rollout:` is the caller's. A [`Sampler`] reads Placement while the fleet runs:
//! which hosts have drained slots (`reserved == total`), which are verified with each
//! version, and how many units of the rollout's budget are held. Used by
//! `tests/it/fleet_rollout.rs` and the fleet benchmark (`bench/fleet`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fpga_sync::cloud::placement::Placement;
use fpga_sync::host::discover::backends::sim;
use fpga_sync::host::driver::Slot;
use fpga_sync::host::id::Id128;
use fpga_sync::host::plan::provider::{BITSTREAM_TRAIT_PREFIX, OWNER_TRAIT, VERIFIED_TRAIT};
use fpga_sync::host::plan::rollout::{UnitId, budget_name, holder_consumer};
use fpga_sync::host::report::budget;
use fpga_sync::host::status::SlotState;
use fpga_sync::reconcile::watch::WatchStatus;
use git2::Repository;
use sha2::{Digest, Sha256};
use tempfile::TempDir;

use crate::support::cloud::{NOAUTH, local_cloud, unique};
use crate::support::{Site, commit_all};

/// The AFU versions of the site.
pub const VERSIONS: [&str; 4] = ["v1", "v2", "v3", "v4"];

/// One simulated host of the fleet.
pub struct FleetHost {
    /// Its name, `<token>-hNN`.
    pub name: String,
    /// Its compute node's uuid.
    pub compute_node: String,
    /// Its folder: `sim/`, `agent/` (state), `watch.log`.
    pub dir: PathBuf,
    child: Option<Child>,
}

impl FleetHost {
    /// The sim tree.
    pub fn sim(&self) -> PathBuf {
        self.dir.join("sim")
    }

    /// The status file.
    pub fn status_file(&self) -> PathBuf {
        self.dir.join("agent/status.json")
    }

    /// The last status.
    pub fn status(&self) -> Option<WatchStatus> {
        WatchStatus::read(&self.status_file())
    }

    /// Its log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("watch.log")).unwrap_or_default()
    }

    /// Program calls so far whose image is `file_name`'s.
    pub fn calls_with(&self, image_sha: &str) -> usize {
        sim::calls(&self.sim())
            .iter()
            .filter(|c| c.image.ends_with(image_sha))
            .count()
    }

    /// Whether its agent is running.
    pub fn running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().ok().flatten().is_none())
    }
}

/// N host agents on one site.
pub struct Fleet {
    /// The site repository (a git checkout the agents watch).
    pub site: Site,
    git: Repository,
    /// The unique token in every name.
    pub token: String,
    /// Its lower-case form, in host and bitstream names.
    pub lower: String,
    /// The hosts, in name order.
    pub hosts: Vec<FleetHost>,
    /// Simulated cards per host.
    pub devices: usize,
    /// The `rollout:` block of the group (YAML, indented by two).
    rollout: String,
    /// The version assigned.
    version: String,
    _state: TempDir,
}

/// The id the sim reports for an opaque image: the first 128 bits of its sha256.
pub fn opaque_id(content: &str) -> Id128 {
    let hex: String = Sha256::digest(content.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Id128::from_sha256_hex(&hex).unwrap()
}

fn sha256(content: &str) -> String {
    Sha256::digest(content.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl Fleet {
    /// A fleet of `n` hosts with `devices` cards each, every region carrying `v1` already,
    /// the site committed with `rollout` (the lines under `rollout:`, e.g.
    /// `"  max_unavailable: 2\n"`), the images uploaded by a central apply and a compute
    /// node per host in Placement. No agent runs yet.
    pub async fn new(n: usize, devices: usize, rollout: &str) -> Fleet {
        let site = Site::new();
        let token = unique("FLEET");
        let lower = token.to_ascii_lowercase().replace('_', "-");
        let state = tempfile::tempdir().unwrap();
        if std::env::var_os("FPGA_SYNC_TEST_KEEP").is_some() {
            eprintln!("fleet state kept in {}", state.path().display());
        }
        let git = Repository::init(site.path()).unwrap();
        let mut fleet = Fleet {
            site,
            git,
            token,
            lower,
            hosts: Vec::new(),
            devices,
            rollout: rollout.to_owned(),
            version: "v1".into(),
            _state: state,
        };
        fleet
            .site
            .write("state/files/shell.bin", fleet.shell_content())
            .write("state/bitstreams.yaml", fleet.bitstreams());
        for v in VERSIONS {
            fleet
                .site
                .write(&format!("state/files/afu-{v}.bin"), fleet.afu_content(v));
        }
        fleet.write_hosts();
        fleet.commit("initial");
        let out = fleet
            .command(&["apply", "--dir", "state", "--auto-approve"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "central apply: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let session = local_cloud().session(NOAUTH).await;
        let placement = Placement::new(&session);
        for i in 1..=n {
            let name = format!("{}-h{i:02}", fleet.lower);
            let compute_node = placement
                .create_provider(&name, None, None)
                .await
                .unwrap()
                .uuid;
            let dir = fleet._state.path().join(&name);
            std::fs::create_dir_all(dir.join("agent")).unwrap();
            let host = FleetHost {
                name,
                compute_node,
                dir,
                child: None,
            };
            for d in 0..devices {
                let address = Self::address(d);
                sim::add_device(
                    &host.sim(),
                    &address,
                    "8086:09c4",
                    "simulated PAC",
                    Some(opaque_id(&fleet.shell_content())),
                )
                .unwrap();
                sim::add_region(
                    &host.sim(),
                    &address,
                    "0",
                    None,
                    Some(opaque_id(&fleet.afu_content("v1"))),
                )
                .unwrap();
            }
            fleet.hosts.push(host);
        }
        fleet
    }

    /// The PCI address of card `d`.
    pub fn address(d: usize) -> String {
        format!("0000:{:02x}:00.0", 0x5e + d)
    }

    fn shell_content(&self) -> String {
        format!("shell {}\n", self.token)
    }

    /// What `afu-<version>.bin` holds.
    pub fn afu_content(&self, version: &str) -> String {
        format!("afu {version} {}\n", self.token)
    }

    /// The sha256 of `afu-<version>.bin`, the name of its file in the agents' caches.
    pub fn afu_sha(&self, version: &str) -> String {
        sha256(&self.afu_content(version))
    }

    /// The id the cards report for `version`.
    pub fn afu_id(&self, version: &str) -> Id128 {
        opaque_id(&self.afu_content(version))
    }

    /// The Bitstream's name of `version`.
    pub fn bitstream(&self, version: &str) -> String {
        format!("afu-{version}-{}", self.lower)
    }

    fn uuid(&self, n: u8) -> String {
        format!(
            "{:08x}-0000-4000-8000-{:012x}",
            u32::from_str_radix(&self.token[self.token.len() - 8..], 16).unwrap_or(0),
            n
        )
    }

    /// The `bs-uuid` of `version`.
    pub fn bs_uuid(&self, version: &str) -> String {
        let i = VERSIONS.iter().position(|v| *v == version).unwrap() as u8;
        self.uuid(10 + i)
    }

    fn bitstreams(&self) -> String {
        let lower = &self.lower;
        let mut out = format!(
            "apiVersion: fpga-sync/v1\nkind: Bitstream\nname: shell-{lower}\nfile: files/shell.bin\nmetadata:\n  bs-name: shell\n  bs-uuid: {}\n  vendor: Intel\n  board: PAC-A10\n  version: \"1.0\"\n  driver_ver: \"2.1\"\n  driver_path: /opt/opae\n  function_uuid: {}\n---\napiVersion: fpga-sync/v1\nkind: ResourceClass\nname: CUSTOM_{}_PF\n",
            self.uuid(1),
            self.uuid(2),
            self.token
        );
        for (i, v) in VERSIONS.iter().enumerate() {
            out.push_str(&format!(
                "---\napiVersion: fpga-sync/v1\nkind: Bitstream\nname: {name}\nfile: files/afu-{v}.bin\nmetadata:\n  bs-name: afu\n  bs-uuid: {b}\n  vendor: Intel\n  board: PAC-A10\n  shell_id: {s}\n  version: \"{n}.0\"\n  driver_ver: \"2.1\"\n  driver_path: /opt/opae\n  function_uuid: {f}\n",
                name = self.bitstream(v),
                b = self.bs_uuid(v),
                s = self.uuid(1),
                n = i + 1,
                f = self.uuid(20 + i as u8),
            ));
        }
        out
    }

    fn write_hosts(&self) {
        let mut devices = String::new();
        for d in 0..self.devices {
            devices.push_str(&format!(
                "  - address: \"{}\"\n    region: \"0\"\n    bitstream: {}\n    shell: shell-{}\n    resource_class: CUSTOM_{}_PF\n",
                Self::address(d),
                self.bitstream(&self.version),
                self.lower,
                self.token
            ));
        }
        let rollout = if self.rollout.is_empty() {
            String::new()
        } else {
            format!("rollout:\n{}", self.rollout)
        };
        self.site.write(
            "state/hosts.yaml",
            format!(
                "apiVersion: fpga-sync/v1\nkind: HostGroup\nname: {}\nhosts: [\"{}-h*\"]\nbackend: sim\n{rollout}devices:\n{devices}",
                self.group(),
                self.lower
            ),
        );
    }

    /// The host group's name.
    pub fn group(&self) -> String {
        format!("fleet-{}", self.lower)
    }

    /// Assigns `version` and commits.
    pub fn assign(&mut self, version: &str) {
        self.version = version.to_owned();
        self.write_hosts();
        self.commit(&format!("assign {version}"));
    }

    /// Replaces the `rollout:` lines and commits.
    pub fn set_rollout(&mut self, rollout: &str) {
        rollout.clone_into(&mut self.rollout);
        self.write_hosts();
        self.commit("rollout settings");
    }

    fn commit(&self, message: &str) {
        commit_all(&self.git, "state", message);
    }

    /// The binary (`FPGA_SYNC_BIN`, for a release build in benchmarks, else the tests')
    /// with the local cloud's environment, run in the site folder.
    pub fn command(&self, args: &[&str]) -> Command {
        let bin = std::env::var("FPGA_SYNC_BIN")
            .unwrap_or_else(|_| env!("CARGO_BIN_EXE_fpga-sync").to_owned());
        let mut command = Command::new(bin);
        command
            .args(args)
            .current_dir(self.site.path())
            .envs(local_cloud().os_env())
            .env("OS_CLOUD", NOAUTH)
            .env("FPGA_SYNC_SITE", &self.token)
            .env("FPGA_SYNC_CACHE_DIR", self.site.path().join(".cache"))
            .env("NO_COLOR", "1")
            .env_remove("RUST_LOG");
        command
    }

    /// Starts host `i`'s agent with the fleet's options plus `extra`.
    pub fn start(&mut self, i: usize, extra: &[&str]) {
        let repo = self.site.path().to_str().unwrap().to_owned();
        let host = &self.hosts[i];
        let agent = host.dir.join("agent");
        let sim = host.sim();
        let status = host.status_file();
        let mut args = vec![
            "watch",
            "--repo",
            &repo,
            "--dir",
            "state",
            "--host",
            &host.name,
            "--state-dir",
            agent.to_str().unwrap(),
            "--sim-root",
            sim.to_str().unwrap(),
            "--status-file",
            status.to_str().unwrap(),
            "--metrics-address",
            "none",
        ];
        args.extend(extra);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(host.dir.join("watch.log"))
            .unwrap();
        let mut command = self.command(&args);
        command
            .env(
                "FPGA_SYNC_CACHE_DIR",
                host.dir.join("source-cache").display().to_string(),
            )
            .stdout(Stdio::null())
            .stderr(log);
        self.hosts[i].child = Some(command.spawn().unwrap());
    }

    /// Starts every agent.
    pub fn start_all(&mut self, extra: &[&str]) {
        for i in 0..self.hosts.len() {
            self.start(i, extra);
        }
    }

    /// Kills host `i`'s agent at once (SIGKILL: no clean stop, its units stay held).
    pub fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.hosts[i].child.take() {
            c.kill().ok();
            c.wait().ok();
        }
    }

    /// Sets `fault` on every card of host `i` (see `sim`), with `content`.
    pub fn fault(&self, i: usize, fault: sim::Fault, content: &str) {
        for d in 0..self.devices {
            sim::set_fault_content(
                &self.hosts[i].sim(),
                &Slot::device(&Self::address(d)),
                fault,
                content,
            )
            .unwrap();
        }
    }

    /// Clears `fault` on every card of host `i`.
    pub fn clear_fault(&self, i: usize, fault: sim::Fault) {
        for d in 0..self.devices {
            sim::set_fault(
                &self.hosts[i].sim(),
                &Slot::device(&Self::address(d)),
                fault,
                false,
            )
            .unwrap();
        }
    }

    /// Whether host `i`'s last pass found every slot verified with `version`.
    pub fn verified(&self, i: usize, version: &str) -> bool {
        let name = self.bitstream(version);
        self.hosts[i].status().is_some_and(|s| {
            s.status.error.is_none()
                && s.status.slots.len() == self.devices
                && s.status.slots.iter().all(|x| {
                    x.state == SlotState::Verified && x.bitstream.as_deref() == Some(&name)
                })
        })
    }

    /// Waits until `check` holds for every host index in `hosts`, at most `secs`.
    pub fn wait(&self, secs: u64, what: &str, check: impl Fn(usize) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while !(0..self.hosts.len()).all(&check) {
            assert!(
                Instant::now() < deadline,
                "not every host has {what} within {secs} s:\n{}",
                self.report()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Each host's last status line per slot and the tail of its log, for failures.
    pub fn report(&self) -> String {
        let mut out = String::new();
        for h in &self.hosts {
            let slots = h.status().map_or_else(
                || "no status".to_owned(),
                |s| {
                    s.status
                        .slots
                        .iter()
                        .map(|x| format!("{:?} {:?}: {}", x.state, x.bitstream, x.message))
                        .collect::<Vec<_>>()
                        .join(" | ")
                },
            );
            let log = h.log();
            let tail: Vec<&str> = log.lines().rev().take(6).collect();
            out.push_str(&format!(
                "{}: {slots}\n    {}\n",
                h.name,
                tail.into_iter().rev().collect::<Vec<_>>().join("\n    ")
            ));
        }
        out
    }

    /// The rollout's budget provider name.
    pub fn budget_name(&self) -> String {
        budget_name(
            &self.token,
            &UnitId {
                group: self.group(),
                override_index: None,
            },
        )
    }

    /// The consumer through which host `i` holds a unit.
    pub fn holder(&self, i: usize) -> String {
        holder_consumer(
            &self.token,
            &UnitId {
                group: self.group(),
                override_index: None,
            },
            &self.hosts[i].name,
        )
    }

    /// Starts sampling Placement every `every`, with which hosts verified each of
    /// `versions`.
    pub fn sampler(&self, every: Duration, versions: &[&str]) -> Sampler {
        let hosts: Vec<String> = self.hosts.iter().map(|h| h.name.clone()).collect();
        let holders: BTreeMap<String, String> = (0..self.hosts.len())
            .map(|i| (self.holder(i), self.hosts[i].name.clone()))
            .collect();
        let versions: Vec<(String, String)> = versions
            .iter()
            .map(|v| {
                (
                    (*v).to_owned(),
                    format!(
                        "{BITSTREAM_TRAIT_PREFIX}{}",
                        self.bs_uuid(v).replace('-', "").to_ascii_uppercase()
                    ),
                )
            })
            .collect();
        Sampler::start(
            hosts,
            holders,
            versions,
            self.budget_name(),
            format!("CUSTOM_{}_PF", self.token),
            self.devices,
            every,
        )
    }

    /// Stops every agent with SIGTERM.
    pub fn stop_all(&mut self) {
        for h in &mut self.hosts {
            if let Some(c) = &h.child {
                Command::new("kill")
                    .args(["-TERM", &c.id().to_string()])
                    .status()
                    .ok();
            }
        }
        for h in &mut self.hosts {
            if let Some(mut c) = h.child.take() {
                let deadline = Instant::now() + Duration::from_secs(30);
                while c.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(50));
                }
                c.kill().ok();
                c.wait().ok();
            }
        }
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        if std::env::var_os("FPGA_SYNC_TEST_KEEP").is_some() {
            let state = std::mem::replace(&mut self._state, tempfile::tempdir().unwrap());
            let _ = state.keep();
        }
        for h in &mut self.hosts {
            if let Some(mut c) = h.child.take() {
                c.kill().ok();
                c.wait().ok();
            }
        }
    }
}

/// What Placement said at one moment.
#[derive(Clone, Debug, Default)]
pub struct Sample {
    /// Since the sampler started.
    pub at: Duration,
    /// Hosts with a drained slot (`reserved == total`).
    pub drained: BTreeSet<String>,
    /// Hosts with every slot verified, per version.
    pub verified: BTreeMap<String, BTreeSet<String>>,
    /// Hosts holding a unit of the budget.
    pub holders: BTreeSet<String>,
}

/// Samples Placement on its own thread until stopped.
pub struct Sampler {
    stop: Arc<AtomicBool>,
    samples: Arc<Mutex<Vec<Sample>>>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// When it started.
    pub started: Instant,
}

impl Sampler {
    fn start(
        hosts: Vec<String>,
        holders: BTreeMap<String, String>,
        versions: Vec<(String, String)>,
        budget: String,
        class: String,
        devices: usize,
        every: Duration,
    ) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let samples = Arc::new(Mutex::new(Vec::new()));
        let started = Instant::now();
        let (s, out) = (stop.clone(), samples.clone());
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Runtime::new().unwrap();
            runtime.block_on(async move {
                let session = local_cloud().session(NOAUTH).await;
                let placement = Placement::new(&session);
                let mut names: BTreeSet<String> = BTreeSet::new();
                let mut budget_uuid = None;
                while !s.load(Ordering::SeqCst) {
                    let at = started.elapsed();
                    let sample = sample(
                        &placement,
                        &hosts,
                        &holders,
                        &versions,
                        (&budget, &class),
                        devices,
                        &mut names,
                        &mut budget_uuid,
                    )
                    .await;
                    if let Some(mut sample) = sample {
                        sample.at = at;
                        out.lock().unwrap().push(sample);
                    }
                    tokio::time::sleep(every).await;
                }
            });
        });
        Sampler {
            stop,
            samples,
            thread: Some(thread),
            started,
        }
    }

    /// The samples so far.
    pub fn samples(&self) -> Vec<Sample> {
        self.samples.lock().unwrap().clone()
    }

    /// Stops and returns every sample.
    pub fn finish(mut self) -> Vec<Sample> {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            t.join().ok();
        }
        self.samples()
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

#[allow(clippy::too_many_arguments, reason = "the sampler's whole state")]
async fn sample(
    placement: &Placement<'_>,
    hosts: &[String],
    holders: &BTreeMap<String, String>,
    versions: &[(String, String)],
    (budget_name, class): (&str, &str),
    devices: usize,
    names: &mut BTreeSet<String>,
    budget_uuid: &mut Option<String>,
) -> Option<Sample> {
    let host_of = |name: &str| {
        hosts
            .iter()
            .find(|h| name.starts_with(&format!("{h}_")))
            .cloned()
    };
    // Each host's device providers, found once; then one request a sample says which have
    // a unit free (`reserved < total`): the others are drained.
    if names.len() < hosts.len() * devices {
        for name in budget::providers_with(placement, &[OWNER_TRAIT.to_owned()])
            .await
            .ok()?
        {
            if host_of(&name).is_some() {
                names.insert(name);
            }
        }
    }
    let free: BTreeSet<String> = placement
        .providers_matching(&[("resources", &format!("{class}:1"))])
        .await
        .ok()?
        .into_iter()
        .map(|p| p.name)
        .collect();
    let drained: BTreeSet<String> = names
        .iter()
        .filter(|n| !free.contains(*n))
        .filter_map(|n| host_of(n))
        .collect();
    let mut verified = BTreeMap::new();
    for (version, bs_trait) in versions {
        let names =
            budget::providers_with(placement, &[VERIFIED_TRAIT.to_owned(), bs_trait.clone()])
                .await
                .ok()?;
        let set: BTreeSet<String> = hosts
            .iter()
            .filter(|h| {
                names
                    .iter()
                    .filter(|n| n.starts_with(&format!("{h}_")))
                    .count()
                    == devices
            })
            .cloned()
            .collect();
        verified.insert(version.clone(), set);
    }
    if budget_uuid.is_none() {
        *budget_uuid = budget::find(placement, budget_name)
            .await
            .ok()?
            .map(|p| p.uuid);
    }
    let mut held = BTreeSet::new();
    if let Some(uuid) = budget_uuid.as_deref() {
        for h in budget::holders(placement, uuid).await.ok()? {
            held.insert(holders.get(&h.consumer).cloned().unwrap_or(h.consumer));
        }
    }
    Some(Sample {
        at: Duration::ZERO,
        drained,
        verified,
        holders: held,
    })
}

/// The first sample at which `check` holds.
pub fn first(samples: &[Sample], check: impl Fn(&Sample) -> bool) -> Option<&Sample> {
    samples.iter().find(|s| check(s))
}
