//! The safety promise, through the binary against the real local Placement and Glance: a
//! slot whose card does not carry its assignment stops being offered at once, whatever
//! fails next. A verified sim slot loses its bitstream (a power cycle) or is loaded by hand
//! with another function; the download that would repair it fails (Glance unreachable, or
//! the bitstream cache cannot be written). The pass must fail loudly and leave the provider
//! reserved, without function or verified traits, out of every allocation-candidates
//! answer, and shown as withdrawn by the fleet view and `observe`; once the fault is gone,
//! the next pass programs, verifies and offers the slot again. A backend that cannot run is
//! an error naming the path, never "no devices", and removes no provider.

use std::path::Path;

use fpga_sync::cloud::placement::Placement;
use fpga_sync::host::discover::backends::sim;
use fpga_sync::host::id::Id128;
use fpga_sync::host::plan::provider as report;

use crate::support::cloud::{NOAUTH, local_cloud};
use crate::support::fake_host::FakeHost;
use crate::support::host_site::*;

/// One sim host of `site` whose slot carries `aes-a`, verified and offered.
async fn verified_sim_host(site: &HostSite, placement: &Placement<'_>) -> (String, FakeHost) {
    let host = site.host(1);
    compute_node(placement, &host).await;
    let fake = FakeHost::new();
    let root = fake.config().sim_root;
    sim::add_device(&root, ADDR, "8086:09c4", "simulated PAC", None).unwrap();
    sim::add_region(&root, ADDR, "0", Some(IFACE), None).unwrap();
    let (code, out) = site.apply_host(&host, &HostDirs::of(&fake), &[]);
    assert_eq!(code, 0, "{out}");
    assert_offered(site, placement, &host, true).await;
    (host, fake)
}

/// The allocation-candidates query a flavor asking for `aes-a` makes.
fn aes_query(site: &HostSite) -> Vec<(String, String)> {
    vec![
        ("resources".into(), format!("CUSTOM_{}_PF:1", site.token)),
        ("required".into(), function_trait(site.afu[0])),
    ]
}

/// Whether the slot is offered for `aes-a`: its provider's traits and inventory, and
/// Placement's allocation candidates, must agree.
async fn assert_offered(site: &HostSite, placement: &Placement<'_>, host: &str, offered: bool) {
    let name = format!("{host}_{ADDR}");
    let (uuid, traits, inventory, _) = provider_of(placement, &name).await;
    let candidates = placement
        .allocation_candidates(&aes_query(site))
        .await
        .unwrap();
    let on_slot = candidates.iter().any(|c| c.contains_key(&uuid));
    if offered {
        assert!(traits.contains(&function_trait(site.afu[0])), "{traits:?}");
        assert!(traits.contains(report::VERIFIED_TRAIT), "{traits:?}");
        assert_eq!(inventory.reserved, 0);
        assert!(on_slot, "the scheduler is offered the slot: {candidates:?}");
    } else {
        assert!(
            !traits.contains(&function_trait(site.afu[0])),
            "function trait withdrawn: {traits:?}"
        );
        assert!(!traits.contains(report::VERIFIED_TRAIT), "{traits:?}");
        assert!(
            !traits
                .iter()
                .any(|t| t.starts_with(report::BITSTREAM_TRAIT_PREFIX)),
            "{traits:?}"
        );
        assert_eq!(inventory.reserved, inventory.total, "everything reserved");
        assert!(
            !on_slot,
            "allocation candidates still offer the slot: {candidates:?}"
        );
    }
}

/// A clouds.yaml whose `local-noauth` cloud reaches the real Placement but a Glance
/// endpoint where nothing listens: Glance stopped, as the host sees it.
fn clouds_without_glance(dir: &Path) -> Vec<(&'static str, String)> {
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let text = std::fs::read_to_string(local_cloud().state.join("clouds.yaml")).unwrap();
    let glance = local_cloud()
        .var("FPGA_SYNC_CLOUD_NOAUTH_GLANCE_URL")
        .to_owned();
    let text = text.replace(
        &format!("image_endpoint_override: {glance}"),
        &format!("image_endpoint_override: http://127.0.0.1:{closed}"),
    );
    assert!(text.contains(&format!("127.0.0.1:{closed}")), "{text}");
    let path = dir.join("clouds-no-glance.yaml");
    std::fs::write(&path, text).unwrap();
    vec![("OS_CLIENT_CONFIG_FILE", path.display().to_string())]
}

fn with(dirs: &HostDirs, extra: Vec<(&'static str, String)>) -> Vec<(&'static str, String)> {
    let mut env = dirs.env();
    env.extend(extra);
    env
}

fn apply_args(host: &str) -> Vec<&str> {
    vec!["apply", "--repo", ".", "--auto-approve", "--host", host]
}

/// The fault that makes the repairing download fail, and how to undo it.
enum Fault {
    GlanceStopped,
    CacheUnwritable,
}

impl Fault {
    /// Empties the bitstream cache (so the image must come from Glance) and breaks the
    /// download; returns the extra environment of the failing run.
    fn inject(&self, site: &HostSite, dirs: &HostDirs) -> Vec<(&'static str, String)> {
        let cache = dirs.state.join("cache/bitstreams");
        std::fs::remove_dir_all(&cache).unwrap();
        match self {
            Fault::GlanceStopped => clouds_without_glance(site.path()),
            Fault::CacheUnwritable => {
                // A file where the folder must be: even root cannot write below it.
                std::fs::write(&cache, "not a folder").unwrap();
                Vec::new()
            }
        }
    }

    /// What the failing pass must say about the fault.
    fn named_in(&self, out: &str) -> bool {
        match self {
            Fault::GlanceStopped => out.contains("Glance"),
            Fault::CacheUnwritable => out.contains("cache/bitstreams"),
        }
    }

    fn clear(&self, dirs: &HostDirs) {
        if let Fault::CacheUnwritable = self {
            std::fs::remove_file(dirs.state.join("cache/bitstreams")).unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slot_that_lost_its_bitstream_is_withdrawn_though_the_repair_cannot_download() {
    let session = local_cloud().session(NOAUTH).await;
    let placement = Placement::new(&session);
    for fault in [Fault::GlanceStopped, Fault::CacheUnwritable] {
        let site = HostSite::new("sim", &["-h1"]);
        let (host, fake) = verified_sim_host(&site, &placement).await;
        let dirs = HostDirs::of(&fake);
        let root = fake.config().sim_root;

        sim::power_cycle(&root).unwrap();
        let env = fault.inject(&site, &dirs);
        let (code, out) = site.run(&apply_args(&host), &with(&dirs, env));
        assert_ne!(code, 0, "the pass must fail: {out}");
        assert!(out.contains("FAILED"), "{out}");
        assert!(fault.named_in(&out), "{out}");
        assert_eq!(sim::calls(&root).len(), 1, "nothing was programmed: {out}");
        assert_offered(&site, &placement, &host, false).await;
        let (_, traits, _, _) = provider_of(&placement, &format!("{host}_{ADDR}")).await;
        assert!(traits.contains(report::WITHDRAWN_TRAIT), "{traits:?}");
        assert!(
            traits.contains(&format!("{}NOTHING", report::CARRIES_TRAIT_PREFIX)),
            "{traits:?}"
        );

        // The fleet view and `observe` say so.
        let (code, fleet) = site.run(&["plan", "--repo", "."], &[]);
        assert_eq!(code, 0, "{fleet}");
        assert!(
            fleet.contains(&format!("withdrawn {host}_{ADDR}"))
                && fleet.contains(&format!(
                    "carries nothing (expected `aes-a-{}`)",
                    site.lower
                )),
            "{fleet}"
        );
        let (code, observed) = site.run(&["observe"], &[]);
        assert_eq!(code, 0, "{observed}");
        let line = observed
            .lines()
            .find(|l| l.contains(&format!("{host}_{ADDR}")))
            .unwrap_or_else(|| panic!("{observed}"));
        assert!(line.contains("withdrawn: carries nothing"), "{line}");

        // The fault gone, the next pass repairs the card and offers the slot again.
        fault.clear(&dirs);
        let (code, out) = site.run(&apply_args(&host), &dirs.env());
        assert_eq!(code, 0, "{out}");
        assert_eq!(sim::calls(&root).len(), 2, "programmed once more");
        assert_offered(&site, &placement, &host, true).await;
        let (_, traits, _, _) = provider_of(&placement, &format!("{host}_{ADDR}")).await;
        assert!(
            !traits.iter().any(
                |t| t == report::WITHDRAWN_TRAIT || t.starts_with(report::CARRIES_TRAIT_PREFIX)
            ),
            "{traits:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slot_loaded_by_hand_with_another_function_is_withdrawn_before_the_download() {
    let session = local_cloud().session(NOAUTH).await;
    let placement = Placement::new(&session);
    let site = HostSite::new("sim", &["-h1"]);
    let (host, fake) = verified_sim_host(&site, &placement).await;
    let dirs = HostDirs::of(&fake);
    let root = fake.config().sim_root;
    let by_hand = Id128(0x0bad_cafe_0000_4000_8000_0000_0000_00aa);
    sim::add_region(&root, ADDR, "0", Some(IFACE), Some(by_hand)).unwrap();

    // The plan says what will happen first.
    let mut args = vec!["plan", "--repo", ".", "--host", &host, "--format", "json"];
    args.push("--detailed-exitcode");
    let (code, out) = site.run(&args, &dirs.env());
    assert_eq!(code, 2, "{out}");
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    let slot = json["slots"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["slot"]["region"] == "0")
        .unwrap();
    assert_eq!(slot["withdraw"], true, "{slot}");
    assert_eq!(slot["current"]["detail"], by_hand.to_string(), "{slot}");

    let env = Fault::GlanceStopped.inject(&site, &dirs);
    let (code, out) = site.run(&apply_args(&host), &with(&dirs, env));
    assert_ne!(code, 0, "{out}");
    assert_offered(&site, &placement, &host, false).await;
    let (_, traits, _, _) = provider_of(&placement, &format!("{host}_{ADDR}")).await;
    assert!(
        traits.contains(&format!(
            "{}{}",
            report::CARRIES_TRAIT_PREFIX,
            by_hand.upper()
        )),
        "{traits:?}"
    );
    let (_, fleet) = site.run(&["plan", "--repo", "."], &[]);
    assert!(
        fleet.contains(&format!("carries {by_hand} (expected `aes-a-")),
        "{fleet}"
    );

    let (code, out) = site.run(&apply_args(&host), &dirs.env());
    assert_eq!(code, 0, "{out}");
    assert_offered(&site, &placement, &host, true).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_backend_that_cannot_run_is_an_error_naming_the_path_and_removes_no_provider() {
    let session = local_cloud().session(NOAUTH).await;
    let placement = Placement::new(&session);

    // `devices` with a tool that is not there, and with a sysfs root that is not there.
    let fake = FakeHost::new();
    fake.add_dfl_card(ADDR, "8086:09c4", IFACE, None);
    let sysfs = fake.config().sysfs_root.display().to_string();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_fpga-sync"))
        .args([
            "devices",
            "--backend",
            "xrt",
            "--xrt-smi",
            "/nonexistent/xrt-smi",
        ])
        .args(["--xbutil", "/nonexistent/xbutil", "--sysfs-root", &sysfs])
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("/nonexistent/xrt-smi") && text.contains("--xrt-smi"),
        "{text}"
    );
    assert!(!text.contains("no FPGA devices"), "{text}");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_fpga-sync"))
        .args([
            "devices",
            "--backend",
            "opae",
            "--sysfs-root",
            "/nonexistent/sys",
        ])
        .args(["--fpgaconf", &fake.config().fpgaconf.display().to_string()])
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("/nonexistent/sys") && text.contains("--sysfs-root"),
        "{text}"
    );

    // `apply --host` on a verified host whose sim tree or fpgaconf is not where the flags
    // say: non-zero, the path named, the provider kept as it was.
    let site = HostSite::new("sim", &["-h1"]);
    let (host, fake) = verified_sim_host(&site, &placement).await;
    let dirs = HostDirs::of(&fake);
    let mut env = dirs.env();
    env.retain(|(k, _)| *k != "FPGA_SYNC_SIM_ROOT");
    env.push(("FPGA_SYNC_SIM_ROOT", "/nonexistent/sim".into()));
    let (code, out) = site.run(&apply_args(&host), &env);
    assert_ne!(code, 0, "{out}");
    assert!(
        out.contains("/nonexistent/sim") && out.contains("--sim-root"),
        "{out}"
    );
    assert_offered(&site, &placement, &host, true).await;

    let site = HostSite::new("opae", &["-h1"]);
    let (host, _, fake, dirs) = one_dfl_card(&site, &placement).await;
    let (code, out) = site.apply_host(&host, &dirs, &[]);
    assert_eq!(code, 0, "{out}");
    let mut env = dirs.env();
    env.retain(|(k, _)| *k != "FPGA_SYNC_FPGACONF");
    env.push(("FPGA_SYNC_FPGACONF", "/nonexistent/fpgaconf".into()));
    let (code, out) = site.run(&apply_args(&host), &env);
    assert_ne!(code, 0, "{out}");
    assert!(
        out.contains("/nonexistent/fpgaconf") && out.contains("--fpgaconf"),
        "{out}"
    );
    let name = format!("{host}_{ADDR}");
    assert_eq!(
        placement.providers(Some(&name), None).await.unwrap().len(),
        1,
        "the provider is still there"
    );
    let (_, traits, _, _) = provider_of(&placement, &name).await;
    assert!(
        traits.contains(report::VERIFIED_TRAIT),
        "untouched: {traits:?}"
    );
    assert_eq!(fpgaconf_calls(&fake), 1);
}
