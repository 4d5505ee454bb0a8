//! The command line: subcommands, their options and `--help` texts (clap derive), the
//! combinations the parser refuses (flags that would be ignored), and the conversions of
//! arguments into the options of the operations layer (defaults resolved from the
//! environment, e.g. the cache folder).
//!
//! One grammar across commands: `--format human|json` (`markdown` where a plan is shown;
//! `table` is accepted for `human`), `-o/--out`, `-y/--auto-approve`, `-q/--quiet`,
//! `-v/--verbose`, and `--allow-*` for each override. Every flag of `watch` and of the host
//! agent has an `FPGA_SYNC_*` environment variable (its `[env: ...]` in `--help`), so an
//! agent's whole configuration can live in its environment.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::builder::BoolishValueParser;
use clap::error::ErrorKind;
use clap::parser::ValueSource;
use clap::{
    ArgAction, ArgGroup, ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand,
    ValueEnum,
};

/// Declarative GitOps reconciler for FPGA clouds on OpenStack.
///
/// The desired state (bitstream images, traits, resource classes, flavors, and which
/// bitstream each host's FPGAs carry) is YAML in a git repository; fpga-sync checks it,
/// plans the changes against Glance, Placement, Nova and the hosts, and applies them.
#[derive(Debug, Parser)]
#[command(
    name = "fpga-sync",
    version = env!("FPGA_SYNC_VERSION"),
    propagate_version = true
)]
pub struct Cli {
    /// When to colour output: `auto` colours a terminal unless `NO_COLOR` is set.
    #[arg(long, global = true, value_enum, default_value_t = Color::Auto, help_heading = "Global options")]
    pub color: Color,
    /// Print less: errors, warnings and the output asked for; no progress or notes.
    #[arg(short, long, global = true, help_heading = "Global options")]
    pub quiet: bool,
    /// Log more (repeatable): `-v` info, `-vv` debug with one line per HTTP request
    /// (method, URL, status, request id, time; secrets redacted), `-vvv` trace. Without
    /// it, `RUST_LOG` sets the level.
    #[arg(
        short,
        long,
        global = true,
        action = ArgAction::Count,
        conflicts_with = "quiet",
        help_heading = "Global options"
    )]
    pub verbose: u8,
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
    /// Existing files are not overwritten without `--overwrite`. Exits 0 when written.
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
    /// refused unless `--allow-managed` (the next reconcile puts its assigned bitstream
    /// back), a busy one unless `--allow-busy`. The interface check is never skipped.
    Program(ProgramArgs),
    /// Keep this host's FPGAs and their Placement records converged, as a service.
    ///
    /// Reconciles `--host` when the repository changes (a local checkout is watched; a
    /// remote branch is fetched every `--poll` with jitter), when the hardware drifts (read
    /// back every `--verify-every`), and every `--resync-every`. Failing devices back off
    /// exponentially. SIGTERM or Ctrl-C stops it after the device being programmed.
    Watch(WatchArgs),
    /// Show or break the lease a running apply holds on a site (or a host).
    ///
    /// `apply` holds its site's lease, and `apply --host` (and each `watch` pass that
    /// programs) its host's, while it changes anything; the lease lives in Placement (see
    /// docs/locking.md). `lock status` shows who holds it; `lock break ID` removes it, as
    /// Terraform's `force-unlock`.
    Lock(LockArgs),
    /// Claim a free FPGA slot on a host through Placement: the seed's claim API.
    ///
    /// Picks a slot of `--host` whose provider offers the resource class and traits asked
    /// for and that Placement can allocate now (allocation candidates below the host's
    /// compute node), allocates one unit of it for `--consumer` in one atomic write, and
    /// prints its PCI address. With `--bitstream` or `--function`, the slot must carry it: a
    /// managed slot already verified with it, or a `policy: manual` slot, which is
    /// programmed first; without, nothing is programmed. The reconciler leaves a claimed
    /// slot alone until `fpga-sync release`. Runs on the host (it reads the slot back).
    Claim(ClaimArgs),
    /// Free what `fpga-sync claim` allocated for a consumer.
    ///
    /// Only a claim's allocations are freed: a Nova server's are refused (delete the
    /// server instead).
    Release(ReleaseArgs),
    /// Show the host agent's last pass, from the status file `watch` writes.
    ///
    /// Each slot's state (verified, pending, blocked, FAILED, manual) and message, the
    /// commit, when and why the pass ran, the slots backing off and the pass's error.
    /// Exits 0 when the agent is healthy (no error, every managed slot verified, and with
    /// `--max-age`, a recent pass), 1 otherwise: usable as a monitoring check.
    Status(StatusArgs),
    /// Print a JSON Schema: of desired-state documents (default), or of an output format.
    ///
    /// The desired-state schema is committed as `schema/fpga-sync.schema.json`; point
    /// yaml-language-server at it with a `# yaml-language-server: $schema=...` modeline.
    /// The schemas of the JSON outputs (`plan`, `observe`, `validate`, `apply`, `status`,
    /// `error`, `rollout`) are committed under `schema/` too; docs/json.md describes them.
    Schema(SchemaArgs),
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
    /// A local git checkout or folder, or a remote git URL (`https://`, `ssh://`,
    /// `user@host:path`, `file://`).
    #[arg(
        long,
        default_value = ".",
        value_name = "PATH|URL",
        env = "FPGA_SYNC_REPO",
        hide_env_values = true
    )]
    pub repo: String,
    /// The branch, tag or commit to read (default: HEAD, or the remote's default branch).
    #[arg(long = "ref", value_name = "REF", env = "FPGA_SYNC_REF")]
    pub reference: Option<String>,
    /// The sub-folder of the repository that holds the desired state.
    #[arg(long, value_name = "DIR", env = "FPGA_SYNC_DIR")]
    pub dir: Option<String>,
    /// Read the files of the work tree, uncommitted edits included, instead of a commit.
    #[arg(long, env = "FPGA_SYNC_WORKTREE", value_parser = BoolishValueParser::new())]
    pub worktree: bool,
    /// Where remote repositories are cloned (default: `$XDG_CACHE_HOME/fpga-sync` or
    /// `~/.cache/fpga-sync`).
    #[arg(long, value_name = "DIR", env = "FPGA_SYNC_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,
    /// For an SSH remote: the private key to use (a deploy key), instead of ssh-agent and
    /// `~/.ssh/id_*`.
    #[arg(long, value_name = "FILE", env = "FPGA_SYNC_SSH_KEY")]
    pub ssh_key: Option<PathBuf>,
    /// For an SSH remote: the known_hosts file to check the server's host key against,
    /// instead of `~/.ssh/known_hosts` (unknown or changed host keys are always refused).
    #[arg(long, value_name = "FILE", env = "FPGA_SYNC_SSH_KNOWN_HOSTS")]
    pub ssh_known_hosts: Option<PathBuf>,
    /// Use only commits signed by a key of this SSH `allowed_signers` file, checked as
    /// `git verify-commit` does with `gpg.format=ssh`; anything else is refused and nothing
    /// is changed.
    #[arg(
        long,
        value_name = "FILE",
        env = "FPGA_SYNC_REQUIRE_SIGNED_BY",
        conflicts_with = "worktree"
    )]
    pub require_signed_by: Option<PathBuf>,
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

/// How a run takes the lease of its site or host (docs/locking.md).
#[derive(Debug, Args, Clone)]
#[command(next_help_heading = "Lease")]
pub struct LeaseArgs {
    /// How long to wait for another run's lease on the same site (or host) before
    /// failing, in seconds; 0 fails at once, naming the holder.
    #[arg(
        long,
        env = "FPGA_SYNC_LOCK_TIMEOUT",
        default_value_t = 300,
        value_name = "SECONDS"
    )]
    pub lock_timeout: u64,
    /// The lease's time to live, in seconds: this run renews it every third of that while
    /// it works; a run that waits and sees no renewal for this long breaks it (a killed
    /// run costs the next one this much waiting).
    #[arg(
        long,
        env = "FPGA_SYNC_LOCK_TTL",
        default_value_t = 120,
        value_name = "SECONDS",
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub lock_ttl: u64,
}

impl LeaseArgs {
    /// The lease options for `operation`.
    pub fn options(&self, operation: &str) -> crate::reconcile::lease::LeaseOptions {
        crate::reconcile::lease::LeaseOptions {
            ttl: std::time::Duration::from_secs(self.lock_ttl),
            timeout: std::time::Duration::from_secs(self.lock_timeout),
            operation: operation.to_owned(),
            commit: None,
        }
    }
}

/// Options of `lock`.
#[derive(Debug, Args)]
pub struct LockArgs {
    /// What to do with the lease.
    #[command(subcommand)]
    pub action: LockAction,
}

/// `lock status` and `lock break`.
#[derive(Debug, Subcommand)]
pub enum LockAction {
    /// Show who holds the lease: host, pid, operation, commit, since when, its TTL and id.
    ///
    /// Exit 0 whether it is held or free; 1 when Placement cannot be read.
    Status(LockStatusArgs),
    /// Break the lease held under ID (as shown by `lock status`), as Terraform's
    /// `force-unlock`.
    ///
    /// Refused unless ID holds the lease now. If its run is still working, it stops before
    /// its next action once it notices (within a third of its TTL), and may leave what it
    /// was doing for the next apply to finish: break only a run you know is gone, or one
    /// that must stop.
    Break(LockBreakArgs),
}

/// Which lease, in which cloud.
#[derive(Debug, Args)]
pub struct LockScopeArgs {
    /// The site whose lease it is (central `apply`).
    #[command(flatten)]
    pub site: SiteArgs,
    /// The lease of this host's programming (`apply --host`, `watch`) instead of the
    /// site's.
    #[arg(long, value_name = "NAME")]
    pub host: Option<String>,
    /// The cloud.
    #[command(flatten)]
    pub cloud: CloudArgs,
}

impl LockScopeArgs {
    /// The lease's scope.
    pub fn scope(&self) -> crate::reconcile::lease::Scope {
        use crate::reconcile::lease::Scope;
        match &self.host {
            Some(h) => Scope::Host(h.clone()),
            None => Scope::Site(self.site.name.clone()),
        }
    }
}

/// Options of `lock status`.
#[derive(Debug, Args)]
pub struct LockStatusArgs {
    /// Which lease.
    #[command(flatten)]
    pub scope: LockScopeArgs,
    /// Output for people (`human`) or machines (`json`).
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
}

/// Options of `lock break`.
#[derive(Debug, Args)]
pub struct LockBreakArgs {
    /// The lease id, as `lock status` or the waiting run's message shows it.
    #[arg(value_name = "ID")]
    pub id: String,
    /// Which lease.
    #[command(flatten)]
    pub scope: LockScopeArgs,
}

/// Where the host agent finds the hardware and the vendor tools.
#[derive(Debug, Args, Clone)]
#[command(next_help_heading = "Hardware")]
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

/// One host's part (`plan --host`, `apply --host`). The hardware flags are hidden from
/// `plan --help` and `apply --help` (see [`command`]); `watch --help` lists them.
#[derive(Debug, Args, Clone)]
#[command(next_help_heading = "Host agent (one host's part instead of the cloud's)")]
pub struct HostArgs {
    /// Plan or apply this compute host's part: its devices' programming and Placement
    /// records, instead of the cloud-wide objects. The name the repository's host groups
    /// use (the compute node's provider is found by it, FQDN or short).
    #[arg(long, env = "FPGA_SYNC_HOST", value_name = "NAME")]
    pub host: Option<String>,
    /// With `--host`: program slots that are in use (Placement allocations, or busy as
    /// the driver sees it). Never skips the interface check.
    #[arg(long, alias = "force")]
    pub allow_busy: bool,
    /// With `--host`: also write the result as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    pub status_file: Option<PathBuf>,
    /// The hardware and tools.
    #[command(flatten)]
    pub driver: DriverArgs,
}

/// Options of `devices`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("which").args(["host", "backend"]).required(true).multiple(true)))]
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
    /// Output for people (`human`) or machines (`json`).
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
    /// The hardware and tools.
    #[command(flatten)]
    pub driver: DriverArgs,
}

/// Options of `program`.
#[derive(Debug, Args)]
pub struct ProgramArgs {
    /// The device's PCI address, e.g. `0000:5e:00.0` (or `5e:00.0` as `lspci` prints it),
    /// or for an FPGA without a PCI device its FPGA manager's name, e.g. `fpga0`.
    #[arg(long, value_name = "ADDRESS", value_parser = device_address)]
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
    /// This host, as the repository names it: its host groups say whether the device may
    /// be programmed by hand.
    #[arg(long, env = "FPGA_SYNC_HOST", value_name = "NAME", required = true)]
    pub host: Option<String>,
    /// Program a device the repository manages: its provider is withdrawn from scheduling
    /// first, and the next reconcile programs its assigned bitstream again.
    #[arg(long)]
    pub allow_managed: bool,
    /// Program a device or region that is in use.
    #[arg(long)]
    pub allow_busy: bool,
    /// The old spelling of `--allow-managed --allow-busy`.
    #[arg(long, hide = true)]
    pub force: bool,
    /// Output for people (`human`) or machines (`json`).
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
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

/// Options of `claim`.
#[derive(Debug, Args)]
pub struct ClaimArgs {
    /// The host whose slot to claim, as the repository names it.
    #[arg(long, env = "FPGA_SYNC_HOST", value_name = "NODE")]
    pub host: String,
    /// The slot must carry this Bitstream of the repository (a `manual` slot is programmed
    /// with it).
    #[arg(long, value_name = "NAME", conflicts_with = "function")]
    pub bitstream: Option<String>,
    /// The slot must carry a bitstream of this function (`function_name` in the
    /// repository's metadata).
    #[arg(long, value_name = "NAME")]
    pub function: Option<String>,
    /// A trait the slot's provider must have (repeat for several).
    #[arg(long = "trait", value_name = "TRAIT")]
    pub traits: Vec<String>,
    /// The resource class to allocate one unit of (default: the class the slot reports).
    #[arg(long, value_name = "RC")]
    pub resource_class: Option<String>,
    /// The consumer uuid that holds the claim (default: a new one, printed).
    #[arg(long, value_name = "UUID")]
    pub consumer: Option<String>,
    /// Output for people (`human`) or machines (`json`).
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
    /// Where to read the desired state from.
    #[command(flatten)]
    pub source: SourceArgs,
    /// The cloud.
    #[command(flatten)]
    pub cloud: CloudArgs,
    /// The site whose images are used.
    #[command(flatten)]
    pub site: SiteArgs,
    /// The hardware and tools.
    #[command(flatten)]
    pub driver: DriverArgs,
}

/// Options of `release`.
#[derive(Debug, Args)]
pub struct ReleaseArgs {
    /// The consumer uuid `fpga-sync claim` printed.
    #[arg(long, value_name = "UUID")]
    pub consumer: String,
    /// Output for people (`human`) or machines (`json`).
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
    /// The cloud.
    #[command(flatten)]
    pub cloud: CloudArgs,
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
    /// Program slots that are in use (Placement allocations, or busy as the driver sees
    /// it). Never skips the interface check.
    #[arg(
        long,
        alias = "force",
        env = "FPGA_SYNC_ALLOW_BUSY",
        value_parser = BoolishValueParser::new()
    )]
    pub allow_busy: bool,
    /// Log lines as `text` or `json`.
    #[arg(long, value_enum, env = "FPGA_SYNC_LOG_FORMAT", default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// The status file (default: `<state-dir>/status.json`).
    #[arg(long, value_name = "FILE", env = "FPGA_SYNC_STATUS_FILE")]
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
    /// The host's lease, for passes that program.
    #[command(flatten)]
    pub lease: LeaseArgs,
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
    #[arg(short, long, value_name = "FILE")]
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
    /// A plan saved by `plan --out`; without it, apply plans first. The plan names its
    /// repository, commit, folder and deletion settings, so those flags are refused with it.
    #[arg(value_name = "FILE")]
    pub plan: Option<PathBuf>,
    /// Where to read the desired state from (without FILE).
    #[command(flatten)]
    pub source: SourceArgs,
    /// The cloud (with FILE, the plan's cloud unless given).
    #[command(flatten)]
    pub cloud: CloudArgs,
    /// Deletion settings (without FILE).
    #[command(flatten)]
    pub prune: PruneArgs,
    /// Apply without asking.
    #[arg(short = 'y', long, visible_alias = "yes")]
    pub auto_approve: bool,
    /// How many actions of one phase run at once.
    #[arg(long, default_value_t = 4, value_name = "N")]
    pub parallel: usize,
    /// The site's (with `--host`, the host's) lease.
    #[command(flatten)]
    pub lease: LeaseArgs,
    /// Progress and result for people (`human`, on stderr) or machines (`json`: one
    /// event object per line on stdout, then a result object; see docs/json.md).
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
    /// One host's part instead of the cloud's.
    #[command(flatten)]
    pub host: HostArgs,
}

/// Plan output formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum PlanFormat {
    /// For a terminal (`table` is accepted too).
    #[value(alias = "table")]
    Human,
    /// Versioned JSON, as saved by `--out`.
    Json,
    /// Markdown for a merge-request comment.
    Markdown,
}

/// Which cloud to talk to.
#[derive(Debug, Args)]
pub struct CloudArgs {
    /// The cloud of clouds.yaml to use (without it, the `OS_*` variables of an openrc
    /// file describe the cloud).
    #[arg(long = "os-cloud", value_name = "NAME", env = "OS_CLOUD")]
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
    #[arg(long, alias = "force")]
    pub overwrite: bool,
    /// Import only the images and flavors whose name matches this glob (e.g.
    /// `'*crypto*'`), with the traits and resource classes those flavors use; repeat for
    /// several. Default: everything.
    #[arg(long = "match", value_name = "GLOB")]
    pub matching: Vec<String>,
    /// The files written, for people (`human`) or machines (`json`).
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
}

/// Options of `observe`.
#[derive(Debug, Args)]
pub struct ObserveArgs {
    /// The cloud.
    #[command(flatten)]
    pub cloud: CloudArgs,
    /// Output for people (`human`: tables) or machines (`json`).
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
}

/// Options of `status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The status file `watch` (or `apply --host --status-file`) writes (default:
    /// `<state-dir>/status.json`).
    #[arg(long, value_name = "FILE", env = "FPGA_SYNC_STATUS_FILE")]
    pub status_file: Option<PathBuf>,
    /// The agent's state folder.
    #[arg(
        long,
        env = "FPGA_SYNC_STATE_DIR",
        default_value = "/var/lib/fpga-sync",
        value_name = "DIR"
    )]
    pub state_dir: PathBuf,
    /// Unhealthy when the last pass finished longer ago than this many seconds (the agent
    /// stopped or hangs); e.g. twice `--verify-every`.
    #[arg(long, value_name = "SECONDS")]
    pub max_age: Option<u64>,
    /// Output for people (`human`) or machines (`json`).
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
}

/// Options of `schema`.
#[derive(Debug, Args)]
pub struct SchemaArgs {
    /// Which schema.
    #[arg(value_enum, default_value_t = SchemaKind::Document)]
    pub which: SchemaKind,
}

/// The schemas `schema` prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SchemaKind {
    /// A desired-state document (`schema/fpga-sync.schema.json`).
    Document,
    /// `plan --format json` and saved plans.
    Plan,
    /// `observe --format json`.
    Observe,
    /// `validate --format json`.
    Validate,
    /// One line of `apply --format json`.
    Apply,
    /// `status --format json`.
    Status,
    /// `rollout status --format json`.
    Rollout,
    /// What `--format json` prints when a command fails.
    Error,
}

/// Output formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// For people: rendered text and tables (`table` is accepted too).
    #[value(alias = "table")]
    Human,
    /// JSON (see docs/json.md).
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
            ssh: crate::source::SshOptions {
                key: self.ssh_key.clone(),
                known_hosts: self.ssh_known_hosts.clone(),
            },
            require_signed_by: self.require_signed_by.clone(),
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

    /// The host agent's options for `host` of `site`; `allow_busy` programs slots in use.
    pub fn host_options(
        &self,
        host: &str,
        site: &str,
        allow_busy: bool,
    ) -> crate::reconcile::host::HostOptions {
        crate::reconcile::host::HostOptions {
            host: host.to_owned(),
            site: site.to_owned(),
            force: allow_busy,
            drivers: self.config(),
            cache_dir: self.state_dir.join("cache"),
            timeout: std::time::Duration::from_secs(self.program_timeout),
            deferred: Default::default(),
            rollouts: Default::default(),
        }
    }
}

/// The ids of the hardware flags ([`DriverArgs`]): hidden from `plan --help` and
/// `apply --help`, where only `--host` uses them.
pub const DRIVER_ARGS: [&str; 10] = [
    "sysfs_root",
    "dev_root",
    "proc_root",
    "firmware_dir",
    "state_dir",
    "sim_root",
    "fpgaconf",
    "xrt_smi",
    "xbutil",
    "program_timeout",
];

/// The command line as parsed: the derived definitions, with the hardware flags hidden
/// from the cloud-wide commands' help. Completions and man pages are generated from this.
pub fn command() -> clap::Command {
    let mut cmd = Cli::command();
    for name in ["plan", "apply"] {
        cmd = cmd.mut_subcommand(name, |mut sub| {
            for id in DRIVER_ARGS {
                sub = sub.mut_arg(id, |a| a.hide(true));
            }
            sub.after_help(
                "With `--host`, the hardware flags of `fpga-sync watch --help` (--sysfs-root, --state-dir, --sim-root, --fpgaconf, ...) apply too.",
            )
        });
    }
    cmd
}

/// Parses the process's arguments; prints the error and exits 2 on a bad command line.
pub fn parse() -> Cli {
    try_parse_from(std::env::args_os()).unwrap_or_else(|e| e.exit())
}

/// Parses `args` (the program name first), refusing combinations that would be ignored.
pub fn try_parse_from<I, T>(args: I) -> Result<Cli, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let mut cmd = command();
    let matches = cmd.try_get_matches_from_mut(args)?;
    if let Some((name, sub)) = matches.subcommand()
        && let Some(message) = refused_combination(name, sub)
    {
        let sub_cmd = cmd
            .find_subcommand_mut(name)
            .expect("the subcommand just parsed");
        return Err(sub_cmd.error(ErrorKind::ArgumentConflict, message));
    }
    let mut cli = Cli::from_arg_matches(&matches).map_err(|e| e.format(&mut cmd))?;
    // A saved plan is applied to the cloud it was made for, unless `--os-cloud` says
    // otherwise on the command line: an `OS_CLOUD` of the environment does not redirect it.
    if let Command::Apply(args) = &mut cli.command
        && args.plan.is_some()
        && let Some((_, sub)) = matches.subcommand()
        && !given(sub, "os_cloud")
    {
        args.cloud.os_cloud = None;
    }
    Ok(cli)
}

/// Whether `id` was given on the command line (not from the environment or a default).
fn given(m: &ArgMatches, id: &str) -> bool {
    matches!(m.value_source(id), Some(ValueSource::CommandLine))
}

/// `--flag` for an argument id.
fn flag(id: &str) -> String {
    match id {
        "reference" => "--ref".into(),
        "site" => "--site".into(),
        other => format!("--{}", other.replace('_', "-")),
    }
}

/// The first of `ids` given on the command line.
fn first_given<'a>(m: &ArgMatches, ids: &[&'a str]) -> Option<&'a str> {
    ids.iter().copied().find(|id| given(m, id))
}

/// Why a combination of `plan` or `apply` arguments is refused: each would be ignored.
fn refused_combination(command: &str, m: &ArgMatches) -> Option<String> {
    if !matches!(command, "plan" | "apply") {
        return None;
    }
    let host = m.get_one::<String>("host");
    let host_from = if given(m, "host") {
        "`--host`".to_owned()
    } else {
        "`--host` (from FPGA_SYNC_HOST)".to_owned()
    };
    let saved = command == "apply" && m.get_one::<PathBuf>("plan").is_some();
    if saved {
        if host.is_some() {
            return Some(format!(
                "a saved plan FILE is a cloud-wide plan, and {host_from} applies one host's part: give one of them"
            ));
        }
        if let Some(id) = first_given(m, &["repo", "reference", "dir", "worktree"]) {
            return Some(format!(
                "`{}` cannot be used with a saved plan FILE: the plan names its repository, commit and folder",
                flag(id)
            ));
        }
        if let Some(id) = first_given(
            m,
            &["prune", "max_delete_share", "allow_mass_delete", "site"],
        ) {
            return Some(format!(
                "`{}` cannot be used with a saved plan FILE: the plan was made with its own site and deletion settings; plan again with it",
                flag(id)
            ));
        }
    }
    let cloud_only: &[&str] = if command == "plan" {
        &["out", "prune", "max_delete_share", "allow_mass_delete"]
    } else {
        &["prune", "max_delete_share", "allow_mass_delete", "parallel"]
    };
    if host.is_some() {
        if let Some(id) = first_given(m, cloud_only) {
            return Some(format!(
                "`{}` is for the cloud-wide {command}, and {host_from} {command}s one host's part",
                flag(id)
            ));
        }
        if command == "plan" && m.get_one::<PlanFormat>("format") == Some(&PlanFormat::Markdown) {
            return Some(format!(
                "`--format markdown` is for the cloud-wide plan (a merge-request comment); {host_from} plans one host's part: use `human` or `json`"
            ));
        }
        return None;
    }
    let host_only = ["allow_busy", "status_file"];
    if let Some(id) = first_given(m, &host_only).or_else(|| first_given(m, &DRIVER_ARGS)) {
        return Some(format!(
            "`{}` is a host agent flag: it needs `--host NAME` (one host's part)",
            flag(id)
        ));
    }
    None
}

/// A `--device` as given: a PCI address in any of `lspci`'s spellings (`3b:00.0`,
/// `0000:3B:00.0`) in full lower-case form, or an FPGA manager's name as it is.
pub fn device_address(text: &str) -> Result<String, String> {
    let text = text.trim();
    let lower = text.to_ascii_lowercase();
    let parts: Vec<&str> = lower.split([':', '.']).collect();
    let hex = |s: &str, n: usize| {
        s.len() <= n && !s.is_empty() && s.chars().all(|c| c.is_ascii_hexdigit())
    };
    match parts.as_slice() {
        [domain, bus, device, function]
            if hex(domain, 4) && hex(bus, 2) && hex(device, 2) && hex(function, 1) =>
        {
            Ok(format!("{domain:0>4}:{bus:0>2}:{device:0>2}.{function}"))
        }
        [bus, device, function] if hex(bus, 2) && hex(device, 2) && hex(function, 1) => {
            Ok(format!("0000:{bus:0>2}:{device:0>2}.{function}"))
        }
        _ if text.contains(':') => Err(format!(
            "`{text}` is not a PCI address: write it as `lspci` does, e.g. `3b:00.0` or `0000:3b:00.0`"
        )),
        _ => Ok(text.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_addresses_are_read_as_lspci_prints_them() {
        assert_eq!(device_address("3b:00.0").unwrap(), "0000:3b:00.0");
        assert_eq!(device_address("0000:3B:00.0").unwrap(), "0000:3b:00.0");
        assert!(device_address("10000:3b:00.0").is_err());
        assert_eq!(device_address("fpga0").unwrap(), "fpga0");
        assert!(device_address("3b:00").is_err());
    }

    #[test]
    fn the_definitions_are_consistent_and_hide_what_they_say() {
        command().debug_assert();
        let plan = command();
        let plan = plan.find_subcommand("plan").unwrap();
        for id in DRIVER_ARGS {
            let arg = plan.get_arguments().find(|a| a.get_id() == id).unwrap();
            assert!(arg.is_hide_set(), "{id}");
        }
    }
}
