//! Staged rollouts on a simulated fleet (`support::fleet`: real `watch` agents, `sim`
//! backend, the local cloud), with Placement sampled while they run:
//!
//! - 12 hosts, `max_unavailable: 2`, 2 canaries, a bake time: a commit reaches every
//!   host, never more than 2 hosts have drained slots or hold units at once, the
//!   canaries go first and the others wait for them and the bake time; a bitstream that
//!   fails on the canaries halts the rollout with every other host untouched and still
//!   offering the old function; a revert restores the canaries; `paused: true` stops a
//!   rollout mid-way and removing it resumes it.
//! - A host killed while it holds the only unit stops the others for the lease
//!   (`lease_seconds`) and one pass at most: another host takes the unit back.
//! - `apply --host` takes a unit, programs and gives it back.
//!
//! The agents run with `--verify-every 1`; programs are made slow (`sim`'s `slow`
//! fault) where the sampler must see drained slots.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use fpga_sync::host::discover::backends::sim::Fault;
use fpga_sync::host::status::SlotState;

use crate::support::fleet::{Fleet, Sample, first};

const AGENT: [&str; 8] = [
    "--verify-every",
    "1",
    "--debounce",
    "200",
    "--max-backoff",
    "3",
    "--poll",
    "1",
];

/// The agents of the killed-holder test: a short host lease (`--lock-ttl`), so that the
/// killed agent, restarted, does not wait the default 120 s for the host lease its dead
/// process held (docs/locking.md) before it catches up.
const AGENT_SHORT_LOCK: [&str; 10] = [
    "--verify-every",
    "1",
    "--debounce",
    "200",
    "--max-backoff",
    "3",
    "--poll",
    "1",
    "--lock-ttl",
    "5",
];

fn max_drained(samples: &[Sample]) -> usize {
    samples.iter().map(|s| s.drained.len()).max().unwrap_or(0)
}

fn max_holders(samples: &[Sample]) -> usize {
    samples.iter().map(|s| s.holders.len()).max().unwrap_or(0)
}

/// `rollout status --format json`'s rollouts.
fn rollout_status(fleet: &Fleet) -> serde_json::Value {
    let out = fleet
        .command(&["rollout", "status", "--dir", "state", "--format", "json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let value: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    value["rollouts"][0].clone()
}

fn names(value: &serde_json::Value) -> Vec<String> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rollout_of_12_hosts_keeps_to_its_budget_canaries_first_halts_on_failure_and_pauses() {
    let started = Instant::now();
    let bake = 2;
    let mut fleet = Fleet::new(
        12,
        1,
        &format!(
            "  max_unavailable: 2\n  canary: 2\n  min_verified_seconds: {bake}\n  max_failures: 1\n  lease_seconds: 10\n"
        ),
    )
    .await;
    fleet.start_all(&AGENT);
    fleet.wait(90, "v1 verified", |i| fleet.verified(i, "v1"));
    eprintln!("phase v1 done at {:?}", started.elapsed());
    let canaries: BTreeSet<String> = fleet.hosts[..2].iter().map(|h| h.name.clone()).collect();

    // v2, every program taking 0.5 s more, so the sampler sees each drained slot.
    for i in 0..12 {
        fleet.fault(i, Fault::Slow, "500");
    }
    let sampler = fleet.sampler(Duration::from_millis(300), &["v2"]);
    fleet.assign("v2");
    fleet.wait(180, "v2 verified", |i| fleet.verified(i, "v2"));
    eprintln!("phase v2 done at {:?}", started.elapsed());
    let samples = sampler.finish();
    assert!(samples.len() > 10, "{} samples", samples.len());
    assert!(
        max_drained(&samples) <= 2,
        "{:#?}",
        samples
            .iter()
            .filter(|s| s.drained.len() > 2)
            .collect::<Vec<_>>()
    );
    assert!(
        max_holders(&samples) <= 2,
        "{:#?}",
        samples
            .iter()
            .filter(|s| s.holders.len() > 2)
            .collect::<Vec<_>>()
    );
    let ever: BTreeSet<&String> = samples.iter().flat_map(|s| &s.drained).collect();
    assert_eq!(ever.len(), 12, "every host was seen drained: {ever:?}");
    // The canaries first: nobody else drained before both verified v2 and the bake time.
    let baked = first(&samples, |s| canaries.is_subset(&s.verified["v2"]))
        .expect("the canaries verified v2")
        .at;
    for s in samples
        .iter()
        .filter(|s| s.at + Duration::from_millis(300) < baked + Duration::from_secs(bake))
    {
        assert!(
            s.drained.is_subset(&canaries),
            "at {:?} (canaries verified at {baked:?}): {:?}",
            s.at,
            s.drained
        );
    }
    let others_first = first(&samples, |s| !s.drained.is_subset(&canaries))
        .unwrap()
        .at;
    assert!(others_first >= baked, "{others_first:?} < {baked:?}");
    let status = rollout_status(&fleet);
    assert_eq!(names(&status["verified"]).len(), 12, "{status:#}");
    assert_eq!(status["wave"], 0, "{status:#}");
    // The central plan ends with the rollouts; Markdown for a merge request.
    let plan = fleet.command(&["plan", "--dir", "state"]).output().unwrap();
    let text = String::from_utf8_lossy(&plan.stdout);
    assert!(
        text.contains(&format!(
            "\nRollouts:\n  {}: no change under way — done; 12/12 verified",
            fleet.group()
        )),
        "{text}{}",
        String::from_utf8_lossy(&plan.stderr)
    );
    let markdown = fleet
        .command(&[
            "rollout", "status", "--dir", "state", "--format", "markdown",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&markdown.stdout);
    assert!(
        text.contains("| rollout | transition | state | verified |"),
        "{text}"
    );
    assert_eq!(
        names(&status["canaries"]),
        canaries.iter().cloned().collect::<Vec<_>>()
    );

    eprintln!("phase v2 checks done at {:?}", started.elapsed());
    // v3 fails to program everywhere; the canaries try it first and the rollout halts.
    let v3 = fleet.afu_id("v3").to_string();
    for i in 0..12 {
        fleet.clear_fault(i, Fault::Slow);
        fleet.fault(i, Fault::ProgramFails, &v3);
    }
    fleet.assign("v3");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !(0..2).any(|i| {
        fleet.hosts[i]
            .status()
            .is_some_and(|s| s.status.slots.iter().any(|x| x.state == SlotState::Failed))
    }) {
        assert!(Instant::now() < deadline, "{}", fleet.report());
        std::thread::sleep(Duration::from_millis(100));
    }
    // Longer than the bake time and several passes: the others stay on v2.
    std::thread::sleep(Duration::from_secs(bake + 3));
    for (i, h) in fleet.hosts.iter().enumerate().skip(2) {
        assert_eq!(h.calls_with(&fleet.afu_sha("v3")), 0, "{} tried v3", h.name);
        let s = h.status().unwrap();
        let slot = &s.status.slots[0];
        assert_eq!(slot.state, SlotState::Waiting, "{i}: {slot:?}");
        assert!(slot.message.contains("halted: "), "{}", slot.message);
        assert!(
            slot.message.contains(&format!(
                "carries `{}` and keeps offering it",
                fleet.bitstream("v2")
            )),
            "{}",
            slot.message
        );
    }
    let sampler = fleet.sampler(Duration::from_millis(100), &["v2"]);
    std::thread::sleep(Duration::from_secs(1));
    let now = sampler.finish();
    let last = now.last().unwrap();
    let others: BTreeSet<String> = fleet.hosts[2..].iter().map(|h| h.name.clone()).collect();
    assert!(
        others.is_subset(&last.verified["v2"]),
        "still offering v2: {last:?}"
    );
    assert!(last.drained.is_subset(&canaries), "{last:?}");
    // One canary failing halts it (max_failures 1); the other may have started first.
    let status = rollout_status(&fleet);
    let failed: BTreeSet<String> = names(&status["failed"]).into_iter().collect();
    assert!(
        !failed.is_empty() && failed.is_subset(&canaries),
        "{status:#}"
    );
    assert!(
        status["halted"]
            .as_str()
            .is_some_and(|h| h.contains("failure")),
        "{status:#}"
    );

    eprintln!("phase v3 done at {:?}", started.elapsed());
    // A revert: the canaries offer v2 again and give their units back.
    fleet.assign("v2");
    fleet.wait(60, "v2 verified again", |i| fleet.verified(i, "v2"));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status = rollout_status(&fleet);
        if status["failed"].as_array().unwrap().is_empty() && status["budget"][0] == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "{status:#}");
        std::thread::sleep(Duration::from_millis(200));
    }

    eprintln!("phase revert done at {:?}", started.elapsed());
    // v4, paused once the first host after the canaries verified it, resumed later.
    for i in 0..12 {
        fleet.fault(i, Fault::Slow, "800");
    }
    fleet.assign("v4");
    let deadline = Instant::now() + Duration::from_secs(120);
    while !(2..12).any(|i| fleet.verified(i, "v4")) {
        assert!(Instant::now() < deadline, "{}", fleet.report());
        std::thread::sleep(Duration::from_millis(50));
    }
    fleet.set_rollout(&format!(
        "  max_unavailable: 2\n  canary: 2\n  min_verified_seconds: {bake}\n  max_failures: 1\n  lease_seconds: 10\n  paused: true\n"
    ));
    // The hosts under way finish; then nothing moves.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status = rollout_status(&fleet);
        if status["paused"] == true && status["budget"][0] == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "{status:#}");
        std::thread::sleep(Duration::from_millis(200));
    }
    eprintln!("phase paused at {:?}", started.elapsed());
    let calls =
        |f: &Fleet| -> usize { f.hosts.iter().map(|h| h.calls_with(&f.afu_sha("v4"))).sum() };
    let before = calls(&fleet);
    std::thread::sleep(Duration::from_secs(6));
    assert_eq!(
        calls(&fleet),
        before,
        "a host started while paused:\n{}",
        fleet.report()
    );
    let verified = (0..12).filter(|i| fleet.verified(*i, "v4")).count();
    assert!(
        (3..12).contains(&verified),
        "paused mid-way: {verified} of 12 on v4"
    );
    let waiting = fleet.hosts.iter().filter_map(|h| h.status()).filter(|s| {
        s.status
            .slots
            .iter()
            .any(|x| x.state == SlotState::Waiting && x.message.contains("paused"))
    });
    assert_eq!(waiting.count(), 12 - verified, "{}", fleet.report());
    fleet.set_rollout(&format!(
        "  max_unavailable: 2\n  canary: 2\n  min_verified_seconds: {bake}\n  max_failures: 1\n  lease_seconds: 10\n"
    ));
    fleet.wait(180, "v4 verified after the pause", |i| {
        fleet.verified(i, "v4")
    });
    fleet.stop_all();
    eprintln!("12-host rollout test took {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_host_killed_holding_the_only_unit_stops_the_others_for_the_lease_at_most() {
    let lease = 6;
    let mut fleet = Fleet::new(
        4,
        1,
        &format!("  max_unavailable: 1\n  lease_seconds: {lease}\n"),
    )
    .await;
    fleet.start_all(&AGENT_SHORT_LOCK);
    fleet.wait(90, "v1 verified", |i| fleet.verified(i, "v1"));
    // Whoever takes the unit first holds it for a minute.
    for i in 0..4 {
        fleet.fault(i, Fault::Slow, "60000");
    }
    let sampler = fleet.sampler(Duration::from_millis(200), &[]);
    fleet.assign("v2");
    let deadline = Instant::now() + Duration::from_secs(60);
    // Killed once its slot is drained (it takes the unit first, then drains).
    let holder = loop {
        if let Some(h) = sampler
            .samples()
            .last()
            .and_then(|s| s.holders.intersection(&s.drained).next().cloned())
        {
            break h;
        }
        assert!(
            Instant::now() < deadline,
            "nobody took the unit:\n{}",
            fleet.report()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let dead = fleet.hosts.iter().position(|h| h.name == holder).unwrap();
    fleet.kill(dead);
    // The unit is an allocation of its own consumer type, told apart from Nova's servers,
    // claims and leases (Placement 1.38).
    let session = crate::support::cloud::local_cloud()
        .session(crate::support::cloud::NOAUTH)
        .await;
    let unit = fpga_sync::cloud::placement::Placement::new(&session)
        .consumer(&fleet.holder(dead))
        .await
        .unwrap();
    assert_eq!(
        unit.consumer_type.as_deref(),
        Some("FPGA_SYNC_ROLLOUT"),
        "{unit:?}"
    );
    assert_eq!(unit.user_id.as_deref(), Some(holder.as_str()), "{unit:?}");
    let killed = sampler.started.elapsed();
    for i in (0..4).filter(|i| *i != dead) {
        fleet.clear_fault(i, Fault::Slow);
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    let next = loop {
        if let Some(s) = first(&sampler.samples(), |s| {
            s.at > killed && s.holders.iter().any(|h| *h != holder)
        }) {
            break s.at;
        }
        assert!(
            Instant::now() < deadline,
            "nobody took the unit back:\n{}",
            fleet.report()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let stopped = next - killed;
    // Not before the lease ran out (less the renewal interval, a fifth of it), and within
    // the documented reclaim time (docs/rollouts.md): the lease plus two verify intervals
    // (a waiting host first sees the last renewal at its next pass, and sees it expired at
    // the pass after the lease), 8 s here; with 7 s of slack for a loaded machine (not a
    // timing test: a unit never taken back fails it, a fast machine passes it).
    assert!(
        stopped >= Duration::from_millis(lease * 1000 * 4 / 5 - 500),
        "{stopped:?}"
    );
    let documented = Duration::from_secs(lease + 2);
    assert!(
        stopped <= documented + Duration::from_secs(7),
        "{stopped:?} (documented {documented:?})"
    );
    eprintln!("the killed holder stopped the others for {stopped:?} (lease {lease} s)");
    fleet.wait(90, "v2 verified, but the dead host", |i| {
        i == dead || fleet.verified(i, "v2")
    });
    let samples = sampler.finish();
    assert!(max_holders(&samples) <= 1);
    // Its card never got v2; it offers nothing meanwhile. Restarted, it catches up.
    assert!(!fleet.verified(dead, "v2"));
    assert!(
        samples.last().unwrap().drained.contains(&holder),
        "{:?}\n{}\n{}",
        samples.last(),
        fleet.report(),
        fleet.hosts[dead].log()
    );
    fleet.clear_fault(dead, Fault::Slow);
    fleet.start(dead, &AGENT_SHORT_LOCK);
    fleet.wait(60, "v2 verified", |i| fleet.verified(i, "v2"));
    fleet.stop_all();
}

/// The `cloud_requests` of every `pass finished` event of host `i` since its log had
/// `from` bytes, for the passes that programmed nothing.
fn idle_requests(fleet: &Fleet, i: usize, from: usize) -> Vec<u64> {
    let log = fleet.hosts[i].log();
    log.get(from..)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["message"] == "pass finished" && e["programmed"] == 0)
        .filter_map(|e| e["cloud_requests"].as_u64())
        .collect()
}

fn placement_log_lines() -> usize {
    let log = crate::support::cloud::local_cloud()
        .state
        .join("noauth-placement/access.log");
    std::fs::read_to_string(log).map_or(0, |t| t.lines().count())
}

/// The fleet benchmark (`bench/fleet/run.sh`): `FLEET_HOSTS` agents (50) with
/// `FLEET_DEVICES` cards each (2), `max_unavailable: 10%`, `--verify-every FLEET_VERIFY`
/// (5), `FLEET_SETTLE` seconds before the idle window; prints the time from the commit to
/// every host verified, the most hosts drained
/// at once, and the Placement requests per host per idle pass (from the agents' logs and
/// from Placement's access log).
#[tokio::test(flavor = "multi_thread")]
#[ignore = "a benchmark, not a test: bench/fleet/run.sh runs it"]
async fn fleet_benchmark() {
    let var = |k: &str, d: usize| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let (n, devices, verify) = (
        var("FLEET_HOSTS", 50),
        var("FLEET_DEVICES", 2),
        var("FLEET_VERIFY", 5),
    );
    let verify_s = verify.to_string();
    let args = [
        "--verify-every",
        &verify_s,
        "--poll",
        "5",
        "--max-backoff",
        "30",
        "--log-format",
        "json",
    ];
    let t = Instant::now();
    let mut fleet = Fleet::new(
        n,
        devices,
        "  max_unavailable: \"10%\"\n  lease_seconds: 120\n",
    )
    .await;
    eprintln!(
        "fleet of {n} hosts x {devices} cards set up in {:?}",
        t.elapsed()
    );
    let t = Instant::now();
    fleet.start_all(&args);
    fleet.wait(1800, "v1 verified", |i| fleet.verified(i, "v1"));
    eprintln!(
        "all {n} agents started and verified v1 in {:?}",
        t.elapsed()
    );

    // Idle: nothing changes anywhere for a while. The first read-back after a host wrote
    // its providers reads them again (their generations moved); `FLEET_SETTLE` seconds
    // (default two verify intervals) let a large fleet get past those first.
    std::thread::sleep(Duration::from_secs(var("FLEET_SETTLE", 2 * verify) as u64));
    let marks: Vec<usize> = fleet.hosts.iter().map(|h| h.log().len()).collect();
    let placement_before = placement_log_lines();
    let window = Duration::from_secs(6 * verify as u64);
    std::thread::sleep(window);
    let placement_after = placement_log_lines();
    let idle: Vec<u64> = (0..n)
        .flat_map(|i| idle_requests(&fleet, i, marks[i]))
        .collect();
    let passes = idle.len().max(1);
    eprintln!(
        "idle passes: {passes} in {window:?}; Placement requests per host per idle pass: mean {:.2}, max {} (agents' count); access log: {} requests = {:.2} per pass",
        idle.iter().sum::<u64>() as f64 / passes as f64,
        idle.iter().max().unwrap_or(&0),
        placement_after - placement_before,
        (placement_after - placement_before) as f64 / passes as f64
    );

    let sampler = fleet.sampler(Duration::from_millis(1000), &[]);
    let t = Instant::now();
    fleet.assign("v2");
    fleet.wait(3600, "v2 verified", |i| fleet.verified(i, "v2"));
    let took = t.elapsed();
    let samples = sampler.finish();
    eprintln!(
        "commit -> all {n} hosts x {devices} cards verified: {took:?}; at most {} hosts drained and {} units held at once (budget {})",
        max_drained(&samples),
        max_holders(&samples),
        (n / 10).max(1)
    );
    fleet.stop_all();
}

#[tokio::test(flavor = "multi_thread")]
async fn apply_host_takes_a_unit_programs_and_gives_it_back() {
    let mut fleet = Fleet::new(1, 1, "  max_unavailable: 1\n").await;
    fleet.assign("v2");
    let host = &fleet.hosts[0];
    let (agent, sim) = (host.dir.join("agent"), host.sim());
    let out = fleet
        .command(&[
            "apply",
            "--dir",
            "state",
            "--auto-approve",
            "--host",
            &host.name,
            "--state-dir",
            agent.to_str().unwrap(),
            "--sim-root",
            sim.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("programmed"), "{text}");
    let status = rollout_status(&fleet);
    assert_eq!(status["budget"], serde_json::json!([0, 1]), "{status:#}");
    assert_eq!(
        names(&status["verified"]),
        vec![fleet.hosts[0].name.clone()]
    );
    // Nothing left to do: a second apply reads no rollout and changes nothing.
    let out = fleet
        .command(&[
            "plan",
            "--dir",
            "state",
            "--host",
            &fleet.hosts[0].name,
            "--state-dir",
            agent.to_str().unwrap(),
            "--sim-root",
            sim.to_str().unwrap(),
            "--detailed-exitcode",
        ])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}
