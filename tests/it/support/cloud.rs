//! The local cloud for tests: real Keystone, Placement, Glance and Nova API started once per
//! test run by `scripts/local-cloud/local-cloud` (both auth modes side by side) with the
//! compute profile (RabbitMQ, MariaDB, nova-conductor, nova-scheduler and one nova-compute
//! per simulated host beside the keystone set, so servers really boot), reused when already
//! up. One cloud for the whole run: the profile extends the keystone set in place, and
//! everything the other tests do works on it. If it cannot start, every test that needs it
//! fails with the script's reason.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use fpga_sync::cloud::config::{self, CloudConfig};
use fpga_sync::cloud::session::{Session, SessionOptions};

/// The keystone-mode cloud in the generated clouds.yaml.
pub const KEYSTONE: &str = "local-keystone";
/// The noauth-mode cloud (fixed endpoints, `admin_token`).
pub const NOAUTH: &str = "local-noauth";
/// Both, for tests that run in each mode.
pub const MODES: [&str; 2] = [KEYSTONE, NOAUTH];

/// A running local cloud.
pub struct LocalCloud {
    /// Its state folder.
    pub state: PathBuf,
    /// `STATE/env`.
    pub env: BTreeMap<String, String>,
}

/// The local cloud, started on first use.
pub fn local_cloud() -> &'static LocalCloud {
    static CLOUD: OnceLock<Result<LocalCloud, String>> = OnceLock::new();
    CLOUD.get_or_init(start).as_ref().unwrap_or_else(|e| {
        panic!("the local OpenStack cloud is not available, so this test cannot run:\n{e}")
    })
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/local-cloud/local-cloud")
}

/// The state folder: `FPGA_SYNC_TEST_CLOUD_STATE`, or one under cargo's target folder.
pub fn state_dir() -> PathBuf {
    std::env::var_os("FPGA_SYNC_TEST_CLOUD_STATE")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_TARGET_TMPDIR")).join("local-cloud"))
}

fn start() -> Result<LocalCloud, String> {
    let state = state_dir();
    let up = Command::new(script())
        .args(["status", "--profile", "compute"])
        .arg(&state)
        .output()
        .map_err(|e| format!("cannot run {}: {e}", script().display()))?;
    if !up.status.success() {
        let started = Command::new(script())
            .args(["start", "--profile", "compute", "--auth", "both"])
            .arg(&state)
            .output()
            .map_err(|e| format!("cannot run {}: {e}", script().display()))?;
        if !started.status.success() {
            return Err(format!(
                "`local-cloud start --profile compute --auth both {}` failed ({}):\n{}",
                state.display(),
                started.status,
                String::from_utf8_lossy(&started.stderr)
            ));
        }
    }
    let env_text = std::fs::read_to_string(state.join("env"))
        .map_err(|e| format!("no {}/env: {e}", state.display()))?;
    let env = env_text
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    Ok(LocalCloud { state, env })
}

impl LocalCloud {
    /// The environment a user of this cloud would have: clouds.yaml and secure.yaml.
    pub fn os_env(&self) -> BTreeMap<String, String> {
        let mut env = BTreeMap::new();
        env.insert(
            "OS_CLIENT_CONFIG_FILE".into(),
            self.state.join("clouds.yaml").display().to_string(),
        );
        env.insert(
            "OS_CLIENT_SECURE_FILE".into(),
            self.state.join("secure.yaml").display().to_string(),
        );
        env
    }

    /// The configuration of `cloud` (a name of the generated clouds.yaml).
    pub fn config(&self, cloud: &str) -> CloudConfig {
        let env = self.os_env();
        config::resolve(Some(cloud), &|k: &str| env.get(k).cloned())
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// A session on `cloud`.
    pub async fn session(&self, cloud: &str) -> Session {
        Session::connect(self.config(cloud), SessionOptions::default())
            .await
            .unwrap_or_else(|e| panic!("connecting to {cloud}: {e}"))
    }

    /// A value of `STATE/env`.
    pub fn var(&self, key: &str) -> &str {
        self.env
            .get(key)
            .map(String::as_str)
            .unwrap_or_else(|| panic!("{key} is not in {}/env", self.state.display()))
    }

    /// The simulated compute hosts, each with its nova-compute (`FPGA_SYNC_CLOUD_COMPUTES`).
    pub fn computes(&self) -> Vec<String> {
        self.var("FPGA_SYNC_CLOUD_COMPUTES")
            .split([',', ' '])
            .filter(|h| !h.is_empty())
            .map(str::to_owned)
            .collect()
    }

    /// Restarts one nova-compute (`local-cloud restart-compute`); returns once it reported
    /// again.
    pub fn restart_compute(&self, host: &str) {
        let out = Command::new(script())
            .args(["restart-compute", host])
            .arg(&self.state)
            .output()
            .expect("run local-cloud");
        assert!(
            out.status.success(),
            "local-cloud restart-compute {host}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The admin password (tests that need to log in by hand).
    pub fn admin_password(&self) -> String {
        let text = std::fs::read_to_string(self.state.join("secure.yaml")).expect("secure.yaml");
        text.lines()
            .find_map(|l| l.trim().strip_prefix("password:"))
            .map(|p| p.trim().trim_matches('\'').trim_matches('"').to_owned())
            .expect("a password in secure.yaml")
    }
}

/// A name no other test uses: `PREFIX_<12 upper-case hex>`.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}_{:012X}", rand::random::<u64>() & 0xFFFF_FFFF_FFFF)
}
