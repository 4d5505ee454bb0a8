//! The command line: subcommands, their options and `--help` texts (clap derive), and the
//! conversions of arguments into the options of the operations layer (defaults resolved
//! from the environment, e.g. the cache folder).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Declarative GitOps reconciler for FPGA clouds on OpenStack.
///
/// The desired state (bitstream images, traits, resource classes, flavors, and which
/// bitstream each host's FPGAs carry) is YAML in a git repository; fpga-sync checks it,
/// plans the changes against Glance, Placement, Nova and the hosts, and applies them.
#[derive(Debug, Parser)]
#[command(name = "fpga-sync", version, propagate_version = true)]
pub struct Cli {
    /// When to colour output: `auto` colours a terminal unless `NO_COLOR` is set.
    #[arg(long, global = true, value_enum, default_value_t = Color::Auto)]
    pub color: Color,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check the desired state: YAML, schema, references, bitstream files and digests.
    ///
    /// Reads the files of one commit (default: HEAD) of a local checkout or remote URL, or
    /// a plain folder. Prints every problem with its file, line and column. Exits 0 when
    /// the desired state is valid and 1 when it is not.
    Validate(ValidateArgs),
    /// Show what would change to make the cloud match the desired state.
    ///
    /// Reads the desired state at a commit, observes Glance, Placement and Nova, and prints
    /// the ordered actions: `+` create, `~` change in place, `-/+` replace (with the field
    /// that forces it), `-` delete, and a summary line. Changes nothing.
    Plan(PlanArgs),
    /// Make the cloud match the desired state.
    ///
    /// With a FILE from `plan --out`, re-observes the cloud, refuses the plan if anything it
    /// depends on moved, and carries it out. Without one, plans, shows the plan and asks
    /// for confirmation on a terminal (elsewhere it needs `--auto-approve`).
    Apply(ApplyArgs),
    /// Show what the cloud holds that fpga-sync cares about.
    ///
    /// FPGA-tagged images with their bitstream metadata, custom traits and resource
    /// classes, FPGA device providers with inventories and traits, and flavors whose extra
    /// specs ask for FPGA resources. The cloud comes from clouds.yaml (`--os-cloud` or
    /// `OS_CLOUD`) or the `OS_*` variables, as for the `openstack` CLI.
    Observe(ObserveArgs),
    /// Write desired-state YAML for what a cloud already holds, to move it to fpga-sync.
    ///
    /// Observes the cloud and writes into `--to DIR`: `bitstreams.yaml`, one Bitstream per
    /// active FPGA-tagged image, its data downloaded and verified into `bitstreams/files/`,
    /// sha256 pinned, `adopt: true`; `placement.yaml`, the custom traits and resource
    /// classes; `flavors.yaml`, the flavors with FPGA requests, `adopt: true`; and
    /// `fpga-sync.schema.json` for editors. Metadata an image lacks is never made up: its
    /// document gets `# TODO` comments and a warning, and `validate` points at the gaps.
    /// Existing files are not overwritten without `--force`. Exits 0 when written.
    Import(ImportArgs),
    /// List the FPGA devices and regions this host's driver backends see.
    ///
    /// For each device: its PCI address (or FPGA manager name) and id, what the whole
    /// device and each region carries, the interface ids each region accepts, whether it is
    /// busy (or assigned to an SR-IOV VF), and why it cannot be programmed. The backends
    /// are those the repository assigns to `--host`, or the ones given with `--backend`.
    Devices(DevicesArgs),
    /// Program one device or region by hand: the seed's program API for FPGA developers.
    ///
    /// Loads a bitstream of the repository (fetched from Glance and verified) or a local
    /// FILE, then reads it back. It works on `policy: manual` devices; a managed device is
    /// refused unless `--force` (the next reconcile puts its assigned bitstream back). The
    /// interface check is never skipped.
    Program(ProgramArgs),
    /// Keep this host's FPGAs and their Placement records converged, as a service.
    ///
    /// Reconciles `--host` when the repository changes (a local checkout is watched; a
    /// remote branch is fetched every `--poll` with jitter), when the hardware drifts (read
    /// back every `--verify-every`), and every `--resync-every`. Failing devices back off
    /// exponentially. SIGTERM or Ctrl-C stops it after the device being programmed.
    Watch(WatchArgs),
    /// Print the JSON Schema of desired-state documents, for editors and other tools.
    ///
    /// The same schema is committed as `schema/fpga-sync.schema.json`; point
    /// yaml-language-server at it with a `# yaml-language-server: $schema=...` modeline.
    Schema,
    /// See the staged rollouts of host groups (`rollout:`) across the fleet.
    #[command(subcommand)]
    Rollout(RolloutCommand),
    /// Print the completion script of a shell (bash, zsh, fish, elvish, powershell).
    ///
    /// For example `fpga-sync completions bash > /etc/bash_completion.d/fpga-sync`; the
    /// Debian package installs them.
    Completions(CompletionsArgs),
    /// Write the manual pages (roff): `fpga-sync.1` and one per command.
    ///
    /// Without `--dir`, prints `fpga-sync.1` (`fpga-sync man | man -l -`).
    Man(ManArgs),
}

/// The `rollout` subcommands.
#[derive(Debug, Subcommand)]
pub enum RolloutCommand {
    /// Show every rollout as the fleet reports it.
    ///
    /// Per rollout: the transition (`aes-1.0 → aes-1.1`), its hosts verified, in progress
    /// (holding a unit of the budget), waiting and failed, the canaries, the current wave,
    /// the budget, and whether it is paused or halted and why. Read from the providers the
    /// host agents report and the rollouts' budgets in Placement; changes nothing.
    Status(RolloutStatusArgs),
}

/// Options of `rollout status`.
#[derive(Debug, Args)]
pub struct RolloutStatusArgs {
    /// Where to read the desired state from.
    #[command(flatten)]
    pub source: SourceArgs,
    /// The cloud.
    #[command(flatten)]
    pub cloud: CloudArgs,
    /// The site whose rollouts to show.
    #[command(flatten)]
    pub site: SiteArgs,
    /// `human`, `json` or `markdown` (for a merge-request comment).
    #[arg(long, value_enum, default_value_t = PlanFormat::Human)]
    pub format: PlanFormat,
}

/// Options of `completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// Options of `man`.
#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write every page into DIR instead of printing `fpga-sync.1`.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// Where the desired state is read from.
#[derive(Debug, Args)]
pub struct SourceArgs {
    /// A local git checkout or folder, or a remote git URL (`https://`, `file://`).
    #[arg(
        long,
        env = "FPGA_SYNC_REPO",
        default_value = ".",
        value_name = "PATH|URL"
    )]
    pub repo: String,
    /// The branch, tag or commit to read (default: HEAD, or the remote's default branch).
    #[arg(long = "ref", env = "FPGA_SYNC_REF", value_name = "REF")]
    pub reference: Option<String>,
    /// The sub-folder of the repository that holds the desired state.
    #[arg(long, env = "FPGA_SYNC_DIR", value_name = "DIR")]
    pub dir: Option<String>,
    /// Read the files of the work tree, uncommitted edits included, instead of a commit.
    #[arg(long, conflicts_with = "reference")]
    pub worktree: bool,
    /// Where remote repositories are cloned (default: `$XDG_CACHE_HOME/fpga-sync` or
    /// `~/.cache/fpga-sync`).
    #[arg(long, value_name = "DIR", env = "FPGA_SYNC_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,
}

/// Options of `validate`.
#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Where to read from.
    #[command(flatten)]
    pub source: SourceArgs,
    /// Output for people (`human`) or machines (`json`).
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
}

/// The fpga-sync site: one desired-state repository's name in the marks on what it owns.
#[derive(Debug, Args, Clone)]
pub struct SiteArgs {
    /// The site this repository manages: fpga-sync owns only objects marked with it, so
    /// several repositories can share a cloud.
    #[arg(
        id = "site",
        long = "site",
        env = "FPGA_SYNC_SITE",
        default_value = "default",
        value_name = "NAME"
    )]
    pub name: String,
}

/// Which objects plans own and how they may delete.
#[derive(Debug, Args)]
pub struct PruneArgs {
    /// The site.
    #[command(flatten)]
    pub site: SiteArgs,
    /// Delete images and flavors fpga-sync created that left the repository.
    #[arg(long)]
    pub prune: bool,
    /// With `--prune`, refuse to delete more than this share of what fpga-sync manages.
    #[arg(long, value_name = "SHARE", default_value_t = 0.5)]
    pub max_delete_share: f64,
    /// Lift the `--max-delete-share` guard.
    #[arg(long)]
    pub allow_mass_delete: bool,
}

/// Where the host agent finds the hardware and the vendor tools.
#[derive(Debug, Args, Clone)]
#[command(next_help_heading = "Host agent")]
pub struct DriverArgs {
    /// The sysfs root.
    #[arg(
        long,
        env = "FPGA_SYNC_SYSFS_ROOT",
        default_value = "/sys",
        value_name = "DIR"
    )]
    pub sysfs_root: PathBuf,
    /// The device node root.
    #[arg(
        long,
        env = "FPGA_SYNC_DEV_ROOT",
        default_value = "/dev",
        value_name = "DIR"
    )]
    pub dev_root: PathBuf,
    /// The procfs root (for the boot id).
    #[arg(
        long,
        env = "FPGA_SYNC_PROC_ROOT",
        default_value = "/proc",
        value_name = "DIR"
    )]
    pub proc_root: PathBuf,
    /// The firmware directory the fpga-manager backend loads images from.
    #[arg(
        long,
        env = "FPGA_SYNC_FIRMWARE_DIR",
        default_value = "/lib/firmware",
        value_name = "DIR"
    )]
    pub firmware_dir: PathBuf,
    /// Where the agent keeps fetched bitstreams, its ledger and its status file.
    #[arg(
        long,
        env = "FPGA_SYNC_STATE_DIR",
        default_value = "/var/lib/fpga-sync",
        value_name = "DIR"
    )]
    pub state_dir: PathBuf,
    /// The `sim` backend's device tree.
    #[arg(long, env = "FPGA_SYNC_SIM_ROOT", value_name = "DIR")]
    pub sim_root: Option<PathBuf>,
    /// OPAE `fpgaconf`.
    #[arg(
        long,
        env = "FPGA_SYNC_FPGACONF",
        default_value = "/usr/bin/fpgaconf",
        value_name = "PATH"
    )]
    pub fpgaconf: PathBuf,
    /// XRT `xrt-smi` (`xbutil` is used when it is missing).
    #[arg(
        long,
        env = "FPGA_SYNC_XRT_SMI",
        default_value = "/opt/xilinx/xrt/bin/xrt-smi",
        value_name = "PATH"
    )]
    pub xrt_smi: PathBuf,
    /// XRT `xbutil`, for XRT before 2.18.
    #[arg(
        long,
        env = "FPGA_SYNC_XBUTIL",
        default_value = "/opt/xilinx/xrt/bin/xbutil",
        value_name = "PATH"
    )]
    pub xbutil: PathBuf,
    /// Seconds a program call may take before the tool is killed.
    #[arg(
        long,
        env = "FPGA_SYNC_PROGRAM_TIMEOUT",
        default_value_t = 600,
        value_name = "SECONDS"
    )]
    pub program_timeout: u64,
}

/// One host's part (`plan --host`, `apply --host`).
#[derive(Debug, Args, Clone)]
pub struct HostArgs {
    /// Plan or apply this compute host's part: its devices' programming and Placement
    /// records, instead of the cloud-wide objects. The name the repository's host groups
    /// use (the compute node's provider is found by it, FQDN or short).
    #[arg(long, env = "FPGA_SYNC_HOST", value_name = "NAME")]
    pub host: Option<String>,
    /// With `--host`: program devices that are in use (Placement allocations, or busy as
    /// the driver sees it). Never skips the interface check.
    #[arg(long, requires = "host")]
    pub force: bool,
    /// With `--host`: also write the result as JSON to FILE.
    #[arg(long, value_name = "FILE", requires = "host")]
    pub status_file: Option<PathBuf>,
    /// The hardware and tools.
    #[command(flatten)]
    pub driver: DriverArgs,
}

/// Options of `devices`.
#[derive(Debug, Args)]
pub struct DevicesArgs {
    /// Use the backends the repository assigns to this host.
    #[arg(long, env = "FPGA_SYNC_HOST", value_name = "NAME")]
    pub host: Option<String>,
    /// Use these backends (repeat, or comma-separate).
    #[arg(long, value_enum, value_delimiter = ',')]
    pub backend: Vec<crate::desired::host_group::Backend>,
    /// Where to read the desired state from (with `--host`).
    #[command(flatten)]
    pub source: SourceArgs,
    /// `table` or `json`.
    #[arg(long, value_enum, default_value_t = TableFormat::Table)]
    pub format: TableFormat,
    /// The hardware and tools.
    #[command(flatten)]
    pub driver: DriverArgs,
}

/// Options of `program`.
#[derive(Debug, Args)]
pub struct ProgramArgs {
    /// The device's PCI address, e.g. `0000:5e:00.0`, or for an FPGA without a PCI device
    /// its FPGA manager's name, e.g. `fpga0`.
    #[arg(long, value_name = "ADDRESS")]
    pub device: String,
    /// The region (port) to program; without it, the whole device.
    #[arg(long, value_name = "NAME")]
    pub region: Option<String>,
    /// A Bitstream of the repository (by name), or a local bitstream FILE.
    #[arg(long, value_name = "NAME|FILE")]
    pub bitstream: String,
    /// The backend that drives the device (default: the one the repository assigns to
    /// `--host`).
    #[arg(long, value_enum)]
    pub backend: Option<crate::desired::host_group::Backend>,
    /// This host, as the repository names it.
    #[arg(long, env = "FPGA_SYNC_HOST", value_name = "NAME")]
    pub host: Option<String>,
    /// Program a device fpga-sync manages, or one in use.
    #[arg(long)]
    pub force: bool,
    /// Where to read the desired state from.
    #[command(flatten)]
    pub source: SourceArgs,
    /// The cloud (to fetch a repository bitstream from Glance).
    #[command(flatten)]
    pub cloud: CloudArgs,
    /// The site whose images are used.
    #[command(flatten)]
    pub site: SiteArgs,
    /// The hardware and tools.
    #[command(flatten)]
    pub driver: DriverArgs,
}

/// Log line formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One readable line per event.
    Text,
    /// One JSON object per line (for journald/Loki/Elasticsearch).
    Json,
}

/// Options of `watch`.
#[derive(Debug, Args)]
pub struct WatchArgs {
    /// An agent configuration file: `KEY=VALUE` lines of environment variables (every
    /// option's `FPGA_SYNC_*` variable, `OS_*`, `RUST_LOG`), as systemd's
    /// `EnvironmentFile=` reads it. The environment and the command line win over it.
    #[arg(long, env = "FPGA_SYNC_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// This host, as the repository names it.
    #[arg(long, env = "FPGA_SYNC_HOST", value_name = "NAME")]
    pub host: String,
    /// Where to read the desired state from.
    #[command(flatten)]
    pub source: SourceArgs,
    /// The cloud.
    #[command(flatten)]
    pub cloud: CloudArgs,
    /// The site whose images are used.
    #[command(flatten)]
    pub site: SiteArgs,
    /// How often a remote repository is fetched, in seconds (plus up to 20% jitter).
    #[arg(
        long,
        env = "FPGA_SYNC_POLL",
        default_value_t = 60,
        value_name = "SECONDS"
    )]
    pub poll: u64,
    /// How long a local checkout must be quiet after a change before reconciling, in ms.
    #[arg(
        long,
        env = "FPGA_SYNC_DEBOUNCE",
        default_value_t = 500,
        value_name = "MS"
    )]
    pub debounce: u64,
    /// How often the cards are read back to catch drift (power cycle, driver reload), in
    /// seconds.
    #[arg(
        long,
        env = "FPGA_SYNC_VERIFY_EVERY",
        default_value_t = 60,
        value_name = "SECONDS"
    )]
    pub verify_every: u64,
    /// A full reconcile at least this often, in seconds.
    #[arg(
        long,
        env = "FPGA_SYNC_RESYNC_EVERY",
        default_value_t = 600,
        value_name = "SECONDS"
    )]
    pub resync_every: u64,
    /// The longest backoff of a failing device, in seconds. A device that fails is
    /// retried after min(10 s, `--verify-every`), then twice as long each time up to this;
    /// a repository change retries it at once.
    #[arg(
        long,
        env = "FPGA_SYNC_MAX_BACKOFF",
        default_value_t = 900,
        value_name = "SECONDS"
    )]
    pub max_backoff: u64,
    /// Program devices that are in use.
    #[arg(long)]
    pub force: bool,
    /// Log lines as `text` or `json`.
    #[arg(long, env = "FPGA_SYNC_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// The status file (default: `<state-dir>/status.json`).
    #[arg(long, env = "FPGA_SYNC_STATUS_FILE", value_name = "FILE")]
    pub status_file: Option<PathBuf>,
    /// Where to serve Prometheus metrics (`/metrics`) and the health check (`/healthz`):
    /// an address and port, or `none`.
    #[arg(
        long,
        env = "FPGA_SYNC_METRICS_ADDRESS",
        default_value = "127.0.0.1:9847",
        value_name = "ADDR:PORT|none"
    )]
    pub metrics_address: String,
    /// Stop after this many reconciles (for tests and benchmarks).
    #[arg(long, hide = true)]
    pub max_runs: Option<u64>,
    /// The hardware and tools.
    #[command(flatten)]
    pub driver: DriverArgs,
}

/// Options of `plan`.
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Where to read the desired state from.
    #[command(flatten)]
    pub source: SourceArgs,
    /// The cloud.
    #[command(flatten)]
    pub cloud: CloudArgs,
    /// Deletion settings.
    #[command(flatten)]
    pub prune: PruneArgs,
    /// `human`, `json` (the saved-plan format) or `markdown` (for a merge-request comment).
    #[arg(long, value_enum, default_value_t = PlanFormat::Human)]
    pub format: PlanFormat,
    /// Save the plan to FILE, for `apply FILE`.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Exit 0 when there are no changes, 2 when there are, 1 on error.
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// One host's part instead of the cloud's.
    #[command(flatten)]
    pub host: HostArgs,
}

/// Options of `apply`.
#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// A plan saved by `plan --out`; without it, apply plans first.
    #[arg(value_name = "FILE")]
    pub plan: Option<PathBuf>,
    /// Where to read the desired state from (ignored with FILE: the plan names it).
    #[command(flatten)]
    pub source: SourceArgs,
    /// The cloud (with FILE, the plan's cloud unless given).
    #[command(flatten)]
    pub cloud: CloudArgs,
    /// Deletion settings (without FILE).
    #[command(flatten)]
    pub prune: PruneArgs,
    /// Apply without asking.
    #[arg(long)]
    pub auto_approve: bool,
    /// How many actions of one phase run at once.
    #[arg(long, default_value_t = 4, value_name = "N")]
    pub parallel: usize,
    /// One host's part instead of the cloud's.
    #[command(flatten)]
    pub host: HostArgs,
}

/// Plan output formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum PlanFormat {
    /// For a terminal.
    Human,
    /// Versioned JSON, as saved by `--out`.
    Json,
    /// Markdown for a merge-request comment.
    Markdown,
}

/// Which cloud to talk to.
#[derive(Debug, Args)]
pub struct CloudArgs {
    /// The cloud of clouds.yaml to use (default: `OS_CLOUD`, else the `OS_*` variables).
    #[arg(long = "os-cloud", value_name = "NAME")]
    pub os_cloud: Option<String>,
}

/// Options of `import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The cloud.
    #[command(flatten)]
    pub cloud: CloudArgs,
    /// The folder to write the desired state into (made when missing).
    #[arg(long, value_name = "DIR")]
    pub to: PathBuf,
    /// Overwrite files of an earlier import (or any others of the same names) in DIR.
    #[arg(long)]
    pub force: bool,
    /// Import only the images, traits, resource classes and flavors whose name matches
    /// this glob (e.g. `'*crypto*'`); repeat for several. Default: everything.
    #[arg(long = "match", value_name = "GLOB")]
    pub matching: Vec<String>,
}

/// Options of `observe`.
#[derive(Debug, Args)]
pub struct ObserveArgs {
    /// The cloud.
    #[command(flatten)]
    pub cloud: CloudArgs,
    /// Output for people (`table`) or machines (`json`).
    #[arg(long, value_enum, default_value_t = TableFormat::Table)]
    pub format: TableFormat,
}

/// Output formats of listings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum TableFormat {
    /// Aligned tables.
    Table,
    /// One JSON object (documented in the README).
    Json,
}

/// Output formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Rendered diagnostics with source snippets.
    Human,
    /// One JSON object (documented in the README).
    Json,
}

/// Colour choice.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Color {
    /// Colour a terminal, unless `NO_COLOR` is set.
    Auto,
    /// Always colour.
    Always,
    /// Never colour.
    Never,
}

impl SourceArgs {
    /// The source to read: the cache folder defaults to `$XDG_CACHE_HOME/fpga-sync`
    /// (`~/.cache/fpga-sync`).
    pub fn spec(&self) -> crate::source::RepoSpec {
        let cache_dir = self.cache_dir.clone().unwrap_or_else(|| {
            std::env::var_os("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
                .unwrap_or_else(std::env::temp_dir)
                .join("fpga-sync")
        });
        crate::source::RepoSpec {
            repo: self.repo.clone(),
            reference: self.reference.clone(),
            dir: self.dir.clone(),
            worktree: self.worktree,
            cache_dir,
        }
    }
}

impl PruneArgs {
    /// The planner's settings.
    pub fn settings(&self) -> crate::plan::PlanSettings {
        crate::plan::PlanSettings {
            site: self.site.name.clone(),
            prune: self.prune,
            max_delete_share: self.max_delete_share,
            allow_mass_delete: self.allow_mass_delete,
        }
    }
}

impl DriverArgs {
    /// Where the drivers find hardware and tools.
    pub fn config(&self) -> crate::host::discover::backends::DriverConfig {
        crate::host::discover::backends::DriverConfig {
            sysfs_root: self.sysfs_root.clone(),
            dev_root: self.dev_root.clone(),
            firmware_dir: self.firmware_dir.clone(),
            proc_root: self.proc_root.clone(),
            state_dir: self.state_dir.clone(),
            fpgaconf: self.fpgaconf.clone(),
            xrt_smi: self.xrt_smi.clone(),
            xbutil: self.xbutil.clone(),
            sim_root: self
                .sim_root
                .clone()
                .unwrap_or_else(|| self.state_dir.join("sim")),
            exec: None,
            timeout: std::time::Duration::from_secs(self.program_timeout),
        }
    }

    /// The host agent's options for `host` of `site`.
    pub fn host_options(
        &self,
        host: &str,
        site: &str,
        force: bool,
    ) -> crate::reconcile::host::HostOptions {
        crate::reconcile::host::HostOptions {
            host: host.to_owned(),
            site: site.to_owned(),
            force,
            drivers: self.config(),
            cache_dir: self.state_dir.join("cache"),
            timeout: std::time::Duration::from_secs(self.program_timeout),
            deferred: Default::default(),
            rollouts: Default::default(),
        }
    }
}
