//! The `HostGroup` kind: which bitstream each FPGA device or region carries on a set of
//! compute hosts, named by list or pattern, with per-host overrides, so a fleet of
//! thousands of hosts needs a handful of documents. Plain data and the expansion of a
//! group for one host. Pure: no I/O.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The FPGA assignments of a group of compute hosts.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HostGroup {
    /// Name of the group, unique among host groups.
    #[schemars(length(min = 1, max = 255))]
    pub name: String,
    /// The compute hosts, as Nova names them: exact names (`compute-01.rack-a`) or glob
    /// patterns (`compute-*.rack-a`, `gpu-0[1-4]`).
    #[schemars(length(min = 1), inner(length(min = 1, max = 255)))]
    pub hosts: Vec<String>,
    /// The driver backend that programs and reads the FPGAs on these hosts.
    pub backend: Backend,
    /// The devices and regions, and what each carries.
    #[schemars(length(min = 1))]
    pub devices: Vec<DeviceAssignment>,
    /// Changes for some of the hosts. A device entry here replaces the group's entry for the
    /// same device and region; other entries are added.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub overrides: Vec<HostOverride>,
    /// The commands of the `exec` backend. Required when a host of the group uses it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exec: Option<ExecCommands>,
    /// How a change of the group's assignments reaches its hosts: a few at a time, the
    /// canaries first, halted on failures (docs/rollouts.md). Without it, every host acts
    /// as soon as it sees the commit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<Rollout>,
}

/// A staged rollout: how many hosts may be drained and programmed at once across the whole
/// group (a budget kept in Placement), which hosts go first, how long they must have been
/// verified before the others follow, and when the rollout halts.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Rollout {
    /// How many hosts may have slots drained and being programmed at the same time: a
    /// count (`2`) or a share of the group's hosts (`"10%"`, rounded down, at least 1).
    /// Default `"25%"`. A host whose slot failed keeps its share until it succeeds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_unavailable: Option<Amount>,
    /// The hosts that go first: a list of host names, or a count (`2`: the first two of
    /// the group's hosts in name order). The others wait until every canary has verified
    /// the new bitstream and `min_verified_seconds` passed. Default: no canaries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary: Option<Canary>,
    /// How long the canaries must have been verified before the other hosts start, in
    /// seconds (the bake time), measured by each host on its own clock from when it first
    /// saw them verified. Default 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = 604_800))]
    pub min_verified_seconds: Option<u64>,
    /// The rollout halts (no host starts) while this many hosts have failed to program the
    /// new bitstream. Default 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_failures: Option<u32>,
    /// `true` stops the rollout: no host starts; hosts already under way finish. Remove it
    /// (or set `false`) to resume.
    #[serde(default, skip_serializing_if = "is_false")]
    pub paused: bool,
    /// How long a host's share of the budget outlives its agent, in seconds: a live agent
    /// renews it every fifth of this; one not renewed for this long (on the clock of the
    /// host that sees it) is taken back. Default 300.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 2, max = 86_400))]
    pub lease_seconds: Option<u64>,
}

/// A number of hosts, or a share of them.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(untagged)]
pub enum Amount {
    /// That many hosts.
    Count(#[schemars(range(min = 1))] u32),
    /// A percentage of the hosts, e.g. `"25%"`.
    Percent(#[schemars(regex(pattern = r"^[0-9]{1,3}%$"))] String),
}

/// The percentage of an [`Amount::Percent`] (`"25%"` → 25); `None` when malformed.
pub fn percent(text: &str) -> Option<u32> {
    text.strip_suffix('%')?.parse().ok()
}

/// The canary hosts.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(untagged)]
pub enum Canary {
    /// The first that many hosts of the group, in name order.
    Count(u32),
    /// These hosts (exact names, each one of the group's).
    Hosts(#[schemars(length(min = 1), inner(length(min = 1, max = 255)))] Vec<String>),
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// The commands the `exec` backend runs, each an argv list run without a shell. In
/// `program` and `read_back`, `{address}`, `{region}` (empty for a whole device),
/// `{image}` (the verified local file), `{expected}` (the id the slot reports once
/// loaded, 32 hex digits) and `{force}` (`force` or empty) are replaced inside each
/// argument; an argument that expands to nothing is left out.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ExecCommands {
    /// Prints the devices as JSON on stdout: a list of `{address, pci_id, description,
    /// loaded, busy, regions: [{name, accepts, loaded, busy}]}` (see docs/format.md).
    #[schemars(length(min = 1), inner(length(min = 1)))]
    pub discover: Vec<String>,
    /// Programs `{image}` into the slot; exit code 0 means it did.
    #[schemars(length(min = 1), inner(length(min = 1)))]
    pub program: Vec<String>,
    /// Prints the id the slot carries (any case, dashes allowed), or nothing when empty.
    #[schemars(length(min = 1), inner(length(min = 1)))]
    pub read_back: Vec<String>,
    /// Seconds each command may run before it is killed (default 600).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 86400))]
    pub timeout_seconds: Option<u64>,
}

/// Which functions of the loaded bitstream a device offers to Placement.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Offer {
    /// The physical functions: `pf_num` of the topology (1 without a topology).
    #[default]
    Pf,
    /// The virtual functions: `vf_num` of the topology.
    Vf,
}

/// A host driver backend.
#[derive(
    Clone,
    Copy,
    Debug,
    Deserialize,
    Serialize,
    JsonSchema,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    clap::ValueEnum,
)]
#[serde(rename_all = "kebab-case")]
pub enum Backend {
    /// Intel DFL sysfs and OPAE `fpgaconf`.
    Opae,
    /// AMD/Xilinx XRT `xrt-smi` (or the older `xbutil`).
    Xrt,
    /// The Linux FPGA manager class (`/sys/class/fpga_manager`).
    FpgaManager,
    /// Operator-supplied commands for any other tool.
    Exec,
    /// A simulated device tree, for demos and tests.
    Sim,
}

/// What fpga-sync does with a device.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Policy {
    /// fpga-sync programs the device, verifies it and reports it to Placement.
    #[default]
    Managed,
    /// An FPGA developer's card: fpga-sync leaves it alone (it may be programmed by hand
    /// with `fpga-sync program`, or claimed with `fpga-sync claim` when it names a
    /// `resource_class`).
    Manual,
}

/// One device, or one reconfigurable region of it, and what it carries.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DeviceAssignment {
    /// PCI address of the device, `dddd:bb:dd.f`, e.g. `"0000:5e:00.0"` (quote it). Give
    /// exactly one of `address`, `pci_id` and `manager`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[0-9a-fA-F]{4}:[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7]$"))]
    pub address: Option<String>,
    /// Every device of this PCI `vendor:device` id on the host, e.g. `"8086:09c4"` for each
    /// Intel PAC Arria 10. Give exactly one of `address`, `pci_id` and `manager`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[0-9a-fA-F]{4}:[0-9a-fA-F]{4}$"))]
    pub pci_id: Option<String>,
    /// An FPGA with no PCI device (a SoC's programmable logic), named by its Linux FPGA
    /// manager, `fpga<N>` as in `/sys/class/fpga_manager/fpga0`; for `backend:
    /// fpga-manager` (or `exec`). The whole device only: no `region`. Give exactly one of
    /// `address`, `pci_id` and `manager`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^fpga[0-9]+$"))]
    pub manager: Option<String>,
    /// The reconfigurable region (port) to program, e.g. `"0"`. Absent: the whole device,
    /// which is where a shell goes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64))]
    pub region: Option<String>,
    /// Name of the `Bitstream` the device or region carries. Required for managed devices.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bitstream: Option<String>,
    /// Name of the shell `Bitstream` the device must carry under a partial bitstream. The
    /// shell is verified, not flashed; it may instead be assigned by an entry for the whole
    /// device.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<String>,
    /// The resource class the device reports to Placement, e.g. `CUSTOM_FPGA_INTEL_PF`. On
    /// a `policy: manual` device it makes the device a claimable slot: one unit of this
    /// class with its `traits`, for `fpga-sync claim`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[A-Z0-9_]+$"), length(max = 255))]
    pub resource_class: Option<String>,
    /// Traits the device reports to Placement, besides those fpga-sync derives from the
    /// verified bitstream.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(inner(regex(pattern = r"^[A-Z0-9_]+$"), length(max = 255)))]
    pub traits: Vec<String>,
    /// Which functions of the bitstream's topology the device offers to Placement: `pf`
    /// (the default) reports `pf_num` units of `resource_class`, `vf` reports `vf_num`.
    #[serde(default, skip_serializing_if = "is_default_offer")]
    pub offer: Offer,
    /// `managed` (the default) or `manual`.
    #[serde(default)]
    pub policy: Policy,
}

fn is_default_offer(offer: &Offer) -> bool {
    *offer == Offer::Pf
}

/// Changes to a group for some of its hosts.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HostOverride {
    /// The hosts this applies to: names or patterns, each within the group's `hosts`.
    #[schemars(length(min = 1), inner(length(min = 1, max = 255)))]
    pub hosts: Vec<String>,
    /// A different backend for these hosts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend: Option<Backend>,
    /// Device entries that replace the group's entry for the same device and region, or add
    /// to them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<DeviceAssignment>,
    /// A rollout of their own for these hosts: they form a fleet of their own, with their
    /// own budget and canaries, instead of taking part in the group's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<Rollout>,
}

/// How a device entry picks devices: by address, PCI id or FPGA manager, plus the region.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DeviceKey {
    /// `address:0000:5e:00.0`, `pci_id:8086:09c4` or `manager:fpga0`, lower-case.
    pub selector: String,
    /// The region, if any.
    pub region: Option<String>,
}

impl DeviceAssignment {
    /// The device address a host sees for an entry that names one device: its PCI
    /// address, or its FPGA manager's name (lower case); `None` for a `pci_id` entry.
    pub fn device(&self) -> Option<String> {
        self.address
            .as_ref()
            .or(self.manager.as_ref())
            .map(|a| a.to_ascii_lowercase())
    }

    /// The key that overrides and duplicate checks compare on.
    pub fn key(&self) -> DeviceKey {
        let selector = match (&self.address, &self.pci_id, &self.manager) {
            (Some(a), _, _) => format!("address:{}", a.to_ascii_lowercase()),
            (None, Some(p), _) => format!("pci_id:{}", p.to_ascii_lowercase()),
            (None, None, Some(m)) => format!("manager:{}", m.to_ascii_lowercase()),
            (None, None, None) => String::new(),
        };
        DeviceKey {
            selector,
            region: self.region.clone(),
        }
    }
}

/// Whether a host name in a group is a glob pattern rather than one host.
pub fn is_pattern(host: &str) -> bool {
    host.contains(['*', '?', '[', '{'])
}

/// The devices one host gets from `group` once overrides are applied, and its backend.
/// `matches(pattern_or_name, host)` tells whether an entry of a `hosts` list covers `host`.
pub fn resolve_for_host(
    group: &HostGroup,
    host: &str,
    matches: impl Fn(&str, &str) -> bool,
) -> (Backend, Vec<DeviceAssignment>) {
    let mut backend = group.backend;
    let mut devices = group.devices.clone();
    for o in group
        .overrides
        .iter()
        .filter(|o| o.hosts.iter().any(|h| matches(h, host)))
    {
        backend = o.backend.unwrap_or(backend);
        for device in &o.devices {
            match devices.iter_mut().find(|d| d.key() == device.key()) {
                Some(existing) => *existing = device.clone(),
                None => devices.push(device.clone()),
            }
        }
    }
    (backend, devices)
}
