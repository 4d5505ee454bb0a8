//! Crash loops: the binary is killed with SIGKILL at seeded random moments of a long
//! central apply (bitstreams of 1 MiB through a bandwidth-limited proxy, so the kill lands
//! anywhere from the first request to the last mark) and of `apply --host` (Placement
//! slowed by the proxy and a program call that takes 300 ms, so kills land before the
//! drain, between drain and program, inside the program, and between program and
//! report; host kills are placed after a step of the pass is seen — its first Placement
//! read, its first write (the drain), the download, the card carrying the new image — or
//! anywhere, each plus a drawn delay). After every kill the invariants are checked on the real cloud and the fake
//! card — no image marked complete whose content is not its sha256, never two complete
//! images of one content, no provider offering a function its card does not read back,
//! no slot programmed while a consumer holds it, the bitstream cache holds only verified
//! files — and a clean run must converge to an empty plan.
//!
//! Each kill gets its own site (and host) name, so state one killed run leaves for itself
//! (a lease of issue 12's point 1 that lingers until it expires) never reaches another.
//!
//! Budget: `FPGA_SYNC_CRASH_KILLS` kills per test (default 6 central, 6 host, plus the
//! five kills right after each write), seed
//! `FPGA_SYNC_CHAOS_SEED`; the moment of each kill and what it interrupted are printed.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use fpga_sync::cloud::placement::Placement;
use fpga_sync::host::discover::backends::sim;
use fpga_sync::host::driver::Slot;
use fpga_sync::host::plan::provider::WITHDRAWN_TRAIT;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::chaos::{check_host, seed};
use crate::host_cloud::{allocate, free};
use crate::support::central_site::CentralSite;
use crate::support::chaos::{ChaosCloud, Faults};
use crate::support::cloud::{NOAUTH, local_cloud};
use crate::support::fake_host::FakeHost;
use crate::support::host_site::*;

fn kills(default: u64) -> u64 {
    std::env::var("FPGA_SYNC_CRASH_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Runs `child` for `after`, then kills it with SIGKILL; whether it was still running.
fn kill_after(mut child: std::process::Child, after: Duration) -> bool {
    let deadline = Instant::now() + after;
    while Instant::now() < deadline {
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let running = child.try_wait().unwrap().is_none();
    child.kill().ok(); // SIGKILL on Unix
    child.wait().unwrap();
    running
}

#[tokio::test(flavor = "multi_thread")]
async fn a_central_apply_killed_at_random_points_leaves_what_a_clean_run_converges() {
    let chaos = ChaosCloud::new(NOAUTH);
    // 1.5 MiB through 2 MiB/s: most of a second of uploads, plus planning and marking.
    chaos.set(seed(), |_| Faults {
        bandwidth: Some(2 << 20),
        ..Faults::none()
    });
    let mut rng = StdRng::seed_from_u64(seed() ^ 0xc4a5);
    // How long an uninterrupted run takes, to draw the kills from.
    let calibration = CentralSite::new("CRASHCAL", NOAUTH, 3, 512 << 10);
    let started = Instant::now();
    let (code, out) = calibration.run(&["apply", "--repo", ".", "--auto-approve"], &chaos.env());
    assert_eq!(code, 0, "{out}");
    let window = started.elapsed();
    calibration.clean_up().await;
    let mut tally: BTreeMap<&str, u32> = BTreeMap::new();
    for k in 0..kills(6) {
        // Its own site name for every kill.
        let mut site = CentralSite::new("CRASH", NOAUTH, 3, 512 << 10);
        if k % 2 == 1 {
            // Replacements this time: converge first, then change two contents.
            site.converge();
            site.bump(&[0, 2]);
        }
        let after = window.mul_f64(rng.random_range(0.0..1.1));
        let log = site.path().join("killed.log");
        let child = site.spawn(
            &["apply", "--repo", ".", "--auto-approve", "--prune"],
            &chaos.env(),
            &log,
        );
        let killed = kill_after(child, after);
        let out = std::fs::read_to_string(&log).unwrap_or_default();
        let images = site.check_always().await;
        let what = if !killed {
            "finished before the kill"
        } else if images.is_empty() {
            "killed before any image existed"
        } else if images.iter().all(|i| {
            crate::support::central_site::prop(i, fpga_sync::markers::IMAGE_STATE).as_deref()
                == Some(fpga_sync::markers::STATE_COMPLETE)
        }) {
            "killed with every image marked"
        } else {
            "killed with an upload unfinished or unmarked"
        };
        *tally.entry(what).or_default() += 1;
        eprintln!(
            "crash central {k}: kill after {} ms of ~{} ms: {what} ({} image(s))",
            after.as_millis(),
            window.as_millis(),
            images.len()
        );
        let converged = site.converge();
        site.check_converged().await;
        assert!(!converged.contains("FAILED"), "{out}\n{converged}");
        site.clean_up().await;
    }
    eprintln!("crash central: {tally:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_central_apply_killed_right_after_each_write_leaves_what_a_clean_run_converges() {
    // Each write of a central apply, carried out by the service but its answer held back,
    // the binary killed while it waits: the worst moment for each step.
    let chaos = ChaosCloud::new(NOAUTH);
    let points = [
        ("Glance", "POST", "/v2/images"),
        ("Glance", "PUT", "/v2/images/*/file"),
        ("Glance", "PATCH", "/v2/images/*"),
        ("Nova", "POST", "/v2.1/flavors"),
        ("Nova", "POST", "/v2.1/flavors/*/os-extra_specs"),
    ];
    for (service, method, path) in points {
        let site = CentralSite::new("HELD", NOAUTH, 2, 64 << 10);
        chaos.set(seed(), |_| Faults {
            hold: vec![(method.into(), path.into())],
            ..Faults::none()
        });
        let log = site.path().join("killed.log");
        let mut child = site.spawn(
            &["apply", "--repo", ".", "--auto-approve"],
            &chaos.env(),
            &log,
        );
        let wanted = format!("{service} {method} ");
        let deadline = Instant::now() + Duration::from_secs(60);
        let held = loop {
            let seen = chaos.requests().into_iter().any(|r| {
                r.starts_with(&wanted) && crate::support::chaos::shape(&r[wanted.len()..]) == path
            });
            if seen {
                break true;
            }
            if child.try_wait().unwrap().is_some() || Instant::now() > deadline {
                break false;
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let out = std::fs::read_to_string(&log).unwrap_or_default();
        assert!(held, "the apply never sent {method} {path}:\n{out}");
        // Give the service a moment to finish what it was asked, then kill.
        std::thread::sleep(Duration::from_millis(300));
        child.kill().unwrap();
        child.wait().unwrap();
        let images = site.check_always().await;
        eprintln!(
            "held {service} {method} {path}, killed: {} image(s) left",
            images.len()
        );
        let out = site.converge();
        site.check_converged().await;
        assert!(!out.contains("FAILED"), "{out}");
        site.clean_up().await;
    }
}

/// A fresh site and host (its own names) whose sim slot carries `aes-a`, verified, with
/// the change to carry out prepared: `aes-b` assigned, the cache empty (so it is
/// downloaded), a program call of 300 ms.
struct Prepared {
    site: HostSite,
    host: String,
    dirs: HostDirs,
    _fake: FakeHost,
    provider: String,
    uuid: String,
}

async fn prepare_host(placement: &Placement<'_>) -> Prepared {
    let site = HostSite::new("sim", &["-h1"]);
    let host = site.host(1);
    compute_node(placement, &host).await;
    let fake = FakeHost::new();
    let dirs = HostDirs::of(&fake);
    sim::add_device(&dirs.sim, ADDR, "8086:09c4", "simulated PAC", None).unwrap();
    sim::add_region(&dirs.sim, ADDR, "0", Some(IFACE), None).unwrap();
    let (code, out) = site.apply_host(&host, &dirs, &[]);
    assert_eq!(code, 0, "{out}");
    site.assign("b");
    std::fs::remove_dir_all(dirs.state.join("cache/bitstreams")).unwrap();
    sim::set_program_delay(&dirs.sim, &Slot::region(ADDR, "0"), Some(300)).unwrap();
    let provider = format!("{host}_{ADDR}");
    let (uuid, _, _, _) = provider_of(placement, &provider).await;
    Prepared {
        site,
        host,
        dirs,
        _fake: fake,
        provider,
        uuid,
    }
}

impl Prepared {
    /// `apply --host` through the proxies, in the background.
    fn spawn(&self, chaos: &ChaosCloud) -> std::process::Child {
        let mut env = self.dirs.env();
        env.extend(chaos.env());
        let log = self.dirs.state.join("killed.log");
        std::process::Command::new(env!("CARGO_BIN_EXE_fpga-sync"))
            .args([
                "apply",
                "--repo",
                ".",
                "--auto-approve",
                "--host",
                &self.host,
            ])
            .current_dir(self.site.path())
            .envs(local_cloud().os_env())
            .env("OS_CLOUD", NOAUTH)
            .env("FPGA_SYNC_SITE", &self.site.token)
            .env("FPGA_SYNC_CACHE_DIR", self.site.path().join(".cache"))
            .env("NO_COLOR", "1")
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::fs::File::create(log.with_extension("err")).unwrap())
            .spawn()
            .unwrap()
    }

    fn carries_b(&self) -> bool {
        let text = std::fs::read_to_string(
            self.dirs
                .sim
                .join(format!("devices/{ADDR}/regions/0/afu_id")),
        )
        .unwrap();
        text.trim().parse::<fpga_sync::host::id::Id128>().ok() == Some(self.site.afu[1])
    }

    fn clean_pass(&self) -> (i32, String) {
        let args = [
            "apply",
            "--repo",
            ".",
            "--auto-approve",
            "--host",
            &self.host,
        ];
        self.site.run(&args, &self.dirs.env())
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_host_pass_killed_at_random_points_never_offers_what_the_card_does_not_carry() {
    let session = local_cloud().session(NOAUTH).await;
    let placement = Placement::new(&session);
    let chaos = ChaosCloud::new(NOAUTH);
    // Every Placement and Glance request 15 ms late: the pass's steps spread out.
    chaos.set(seed(), |_| Faults {
        latency: Duration::from_millis(15),
        ..Faults::none()
    });
    let mut rng = StdRng::seed_from_u64(seed() ^ 0x4c11);
    // How long an uninterrupted pass of the same shape takes, to draw the kills from.
    let calibration = prepare_host(&placement).await;
    let started = Instant::now();
    let mut child = calibration.spawn(&chaos);
    assert!(child.wait().unwrap().success());
    let window = started.elapsed();
    assert!(calibration.carries_b());
    let mut tally: BTreeMap<&str, u32> = BTreeMap::new();
    for k in 0..kills(6) {
        // Its own site and host name for every kill.
        let p = prepare_host(&placement).await;
        chaos.set(seed(), |_| Faults {
            latency: Duration::from_millis(15),
            ..Faults::none()
        });
        // Every third kill, a consumer holds the slot: it must never be programmed.
        let consumer = (k % 3 == 2).then(|| uuid_like(&mut rng));
        if let Some(c) = &consumer {
            allocate(
                &session,
                c,
                &p.uuid,
                &format!("CUSTOM_{}_PF", p.site.token),
                1,
            )
            .await;
        }
        // When to kill: after a step of the pass is seen (so each window is reached
        // however loaded the machine is) plus a drawn delay, or at a drawn moment.
        let moment = match k % 5 {
            0 => Moment::Request("Placement GET /resource_providers", 20),
            1 => Moment::Request("Placement PUT /resource_providers/", 100),
            2 => Moment::Request("Glance GET /v2/images/", 400),
            3 => Moment::Programmed(80),
            _ => Moment::Anytime(window),
        };
        let child = p.spawn(&chaos);
        let after = rng.random_range(0.0..1.0);
        let killed = kill_at(child, &moment, after, &chaos, &p);
        check_host(&p.site, &placement, &p.host, &p.dirs).await;
        let (_, traits, _, _) = provider_of(&placement, &p.provider).await;
        let offered_b = traits.contains(&function_trait(p.site.afu[1]));
        let drained =
            traits.contains(WITHDRAWN_TRAIT) || !traits.contains(&function_trait(p.site.afu[0]));
        let what = match (killed, drained, p.carries_b(), offered_b) {
            (false, ..) => "finished before the kill",
            (true, _, _, true) => "killed after the report",
            (true, _, true, false) => "killed between program and report",
            (true, true, false, _) => "killed during the drain or between drain and program",
            (true, false, false, _) => "killed before the drain",
        };
        *tally.entry(what).or_default() += 1;
        eprintln!(
            "crash host {k}: kill {moment:?} (draw {after:.2}){}: {what}",
            if consumer.is_some() {
                " (a consumer holds the slot)"
            } else {
                ""
            }
        );
        sim::set_program_delay(&p.dirs.sim, &Slot::region(ADDR, "0"), None).unwrap();
        if let Some(c) = &consumer {
            assert!(!p.carries_b(), "programmed while a consumer held the slot");
            let (code, out) = p.clean_pass();
            assert_ne!(code, 0, "blocked while the consumer holds it: {out}");
            assert!(
                !p.carries_b(),
                "programmed while a consumer held the slot: {out}"
            );
            check_host(&p.site, &placement, &p.host, &p.dirs).await;
            free(&session, c).await;
        }
        let (code, out) = p.clean_pass();
        assert_eq!(code, 0, "the clean pass must converge:\n{out}");
        let plan = [
            "plan",
            "--repo",
            ".",
            "--host",
            &p.host,
            "--detailed-exitcode",
        ];
        let (code, out) = p.site.run(&plan, &p.dirs.env());
        assert_eq!(code, 0, "{out}");
        check_host(&p.site, &placement, &p.host, &p.dirs).await;
        let (_, traits, inventory, _) = provider_of(&placement, &p.provider).await;
        assert!(
            traits.contains(&function_trait(p.site.afu[1])),
            "{traits:?}"
        );
        assert_eq!(inventory.reserved, 0);
        assert!(p.carries_b());
    }
    eprintln!("crash host: {tally:?}");
}

/// When a host pass is killed.
#[derive(Debug)]
enum Moment {
    /// Once a request starting with this is seen, then up to this many ms.
    Request(&'static str, u64),
    /// Once the card carries the new image (program done, report not yet), then up to
    /// this many ms.
    Programmed(u64),
    /// Anywhere in this long.
    Anytime(Duration),
}

/// Kills `child` at `moment` (`draw` in [0, 1) places it in its window); whether it was
/// still running.
fn kill_at(
    mut child: std::process::Child,
    moment: &Moment,
    draw: f64,
    chaos: &ChaosCloud,
    p: &Prepared,
) -> bool {
    let started = Instant::now();
    let extra = |ms: u64| Duration::from_millis(ms).mul_f64(draw);
    let after = loop {
        let reached = match moment {
            Moment::Request(prefix, ms) => chaos
                .requests()
                .iter()
                .any(|r| r.starts_with(prefix))
                .then(|| extra(*ms)),
            Moment::Programmed(ms) => p.carries_b().then(|| extra(*ms)),
            Moment::Anytime(window) => Some(window.mul_f64(draw)),
        };
        if let Some(after) = reached {
            break after;
        }
        if child.try_wait().unwrap().is_some() || started.elapsed() > Duration::from_secs(60) {
            return false;
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    kill_after(child, after)
}

/// A random uuid (Placement consumers are uuids).
fn uuid_like(rng: &mut StdRng) -> String {
    let n: u128 = rng.random();
    let n = (n & !(0xf << 76) | (0x4 << 76)) & !(0x3 << 62) | (0x2 << 62);
    let h = format!("{n:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}
