//! Staged rollouts of a host group (`rollout:`, see docs/rollouts.md): which rollout a host
//! takes part in, its settings with their defaults, the revision that names one state of
//! the group's assignments, the names the rollout's budget has in Placement, and the gate:
//! from what the fleet's providers and the budget say, whether this host may start
//! draining and programming now, and if not, why. Pure: no I/O; times are arguments, in
//! milliseconds on this host's own clock.
//!
//! A rollout proceeds in two waves. Wave 1 is the canaries (none by default). Wave 2 is
//! every other host of the rollout, once every canary has verified the bitstream this host
//! is about to program and this host has seen them so for `min_verified_seconds`. In both
//! waves a host starts only with a unit of the budget (at most `max_unavailable` hosts
//! hold one), and no host starts while `max_failures` hosts are failing or the rollout is
//! `paused`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use sha2::{Digest, Sha256};

use serde::{Deserialize, Serialize};

use crate::desired::host_group::{Amount, Canary, HostGroup, Rollout, is_pattern, percent};
use crate::desired::{Desired, host_entry_matches};
use crate::host::plan::HostPlan;
use crate::host::plan::assignment::Target;
use crate::host::plan::provider::trait_part;

/// `max_unavailable` when a rollout does not give it, in percent of its hosts.
pub const DEFAULT_MAX_UNAVAILABLE_PERCENT: u32 = 25;
/// `max_failures` when a rollout does not give it.
pub const DEFAULT_MAX_FAILURES: u32 = 1;
/// `lease_seconds` when a rollout does not give it.
pub const DEFAULT_LEASE_SECONDS: u64 = 300;

/// The resource class of a budget's units, and the trait on every budget provider.
pub const UNIT_CLASS: &str = "CUSTOM_FPGA_SYNC_ROLLOUT";

/// The Placement consumer type of the allocations through which hosts hold units of a
/// budget (consumer types need microversion 1.38, as for the lease's `FPGA_SYNC_LEASE` and
/// claims' `FPGA_SYNC_CLAIM`).
pub const ROLLOUT_CONSUMER_TYPE: &str = "FPGA_SYNC_ROLLOUT";
/// Prefix of the trait that names the record a budget provider holds (see [`record_key`]).
pub const RECORD_TRAIT_PREFIX: &str = "CUSTOM_FPGA_SYNC_RECORD_";
/// Prefix of the traits that name a budget's canary hosts ([`trait_part`] of each name).
pub const CANARY_TRAIT_PREFIX: &str = "CUSTOM_FPGA_SYNC_CANARY_";

/// One rollout: the hosts of a group, or of one of its overrides that has a `rollout:` of
/// its own, which share one budget.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UnitId {
    /// The host group.
    pub group: String,
    /// The override whose `rollout:` it is (its index in `overrides`); `None`: the
    /// group's.
    pub override_index: Option<usize>,
}

impl UnitId {
    /// `group`, or `group/overrides[2]`.
    pub fn key(&self) -> String {
        match self.override_index {
            None => self.group.clone(),
            Some(i) => format!("{}/overrides[{i}]", self.group),
        }
    }
}

/// A rollout's settings with the defaults filled in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    /// Hosts that may hold a unit at once.
    pub max_unavailable: Amount,
    /// The canaries.
    pub canary: Canary,
    /// The bake time.
    pub min_verified_seconds: u64,
    /// Failing hosts that halt the rollout.
    pub max_failures: u32,
    /// No host starts.
    pub paused: bool,
    /// How long a unit outlives its holder's last renewal.
    pub lease_seconds: u64,
}

impl Policy {
    /// The settings of `rollout` with the defaults.
    pub fn of(rollout: &Rollout) -> Policy {
        Policy {
            max_unavailable: rollout
                .max_unavailable
                .clone()
                .unwrap_or_else(|| Amount::Percent(format!("{DEFAULT_MAX_UNAVAILABLE_PERCENT}%"))),
            canary: rollout.canary.clone().unwrap_or(Canary::Count(0)),
            min_verified_seconds: rollout.min_verified_seconds.unwrap_or(0),
            max_failures: rollout.max_failures.unwrap_or(DEFAULT_MAX_FAILURES).max(1),
            paused: rollout.paused,
            lease_seconds: rollout
                .lease_seconds
                .unwrap_or(DEFAULT_LEASE_SECONDS)
                .max(2),
        }
    }

    /// How often a holder renews its unit: a fifth of the lease, at least every second.
    pub fn renew_every_seconds(&self) -> u64 {
        (self.lease_seconds / 5).max(1)
    }
}

/// The rollout `host` takes part in within `group`: the last override naming the host
/// that has a `rollout:` of its own, else the group's `rollout:`; `None` when neither
/// exists (the host acts as soon as it sees a commit).
pub fn unit_for<'g>(group: &'g HostGroup, host: &str) -> Option<(UnitId, &'g Rollout)> {
    let own = group
        .overrides
        .iter()
        .enumerate()
        .filter(|(_, o)| o.hosts.iter().any(|h| host_entry_matches(h, host)))
        .filter_map(|(i, o)| Some((i, o.rollout.as_ref()?)))
        .next_back();
    match own {
        Some((i, r)) => Some((
            UnitId {
                group: group.name.clone(),
                override_index: Some(i),
            },
            r,
        )),
        None => group.rollout.as_ref().map(|r| {
            (
                UnitId {
                    group: group.name.clone(),
                    override_index: None,
                },
                r,
            )
        }),
    }
}

/// Whether `host` takes part in `unit` of `group`.
pub fn covers(group: &HostGroup, unit: &UnitId, host: &str) -> bool {
    group.hosts.iter().any(|h| host_entry_matches(h, host))
        && unit_for(group, host).is_some_and(|(u, _)| &u == unit)
}

/// The host names `unit` names exactly (patterns are matched against Placement's hosts).
pub fn named_hosts(group: &HostGroup, unit: &UnitId) -> BTreeSet<String> {
    let listed: Vec<&String> = match unit.override_index {
        None => group.hosts.iter().collect(),
        Some(i) => group
            .overrides
            .get(i)
            .map(|o| o.hosts.iter().collect())
            .unwrap_or_default(),
    };
    listed
        .into_iter()
        .filter(|h| !is_pattern(h))
        .filter(|h| covers(group, unit, h))
        .cloned()
        .collect()
}

/// Whether resolving the rollout needs the list of the fleet's hosts from Placement: its
/// hosts are (partly) given by pattern, and a percentage or a count of canaries needs to
/// know them.
pub fn needs_fleet_hosts(group: &HostGroup, unit: &UnitId, policy: &Policy) -> bool {
    let listed: &[String] = match unit.override_index {
        None => &group.hosts,
        Some(i) => group.overrides.get(i).map_or(&[], |o| &o.hosts),
    };
    listed.iter().any(|h| is_pattern(h))
        && (matches!(policy.max_unavailable, Amount::Percent(_))
            || matches!(policy.canary, Canary::Count(n) if n > 0))
}

/// The revision of `group`: a digest of everything that decides what its hosts carry (its
/// hosts, backends and device entries, its overrides' too, and the content of every
/// bitstream it names), but not its `rollout:` settings, so pausing or resizing a rollout
/// does not start another. 12 upper-case hex digits.
pub fn revision(group: &HostGroup, targets: &BTreeMap<String, Target>) -> String {
    let mut plain = group.clone();
    plain.rollout = None;
    for o in &mut plain.overrides {
        o.rollout = None;
    }
    let mut hash = Sha256::new();
    hash.update(serde_json::to_vec(&plain).unwrap_or_default());
    let named: BTreeSet<&String> = plain
        .devices
        .iter()
        .chain(plain.overrides.iter().flat_map(|o| &o.devices))
        .flat_map(|d| d.bitstream.iter().chain(d.shell.iter()))
        .collect();
    for name in named {
        let sha = targets.get(name).map_or("", |t| t.sha256.as_str());
        hash.update(format!("\n{name}={sha}"));
    }
    hex12(&hash.finalize())
}

/// The key of the record a budget provider holds for one revision and one setting of
/// `max_unavailable` and `canary`: what the first host resolved for them.
pub fn record_key(revision: &str, policy: &Policy) -> String {
    let mut hash = Sha256::new();
    hash.update(revision);
    hash.update(serde_json::to_vec(&policy.max_unavailable).unwrap_or_default());
    hash.update(serde_json::to_vec(&policy.canary).unwrap_or_default());
    hex12(&hash.finalize())
}

fn hex12(digest: &[u8]) -> String {
    digest[..6].iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02X}");
        s
    })
}

/// What the first host to need it resolves for a revision and publishes on the budget
/// provider, so that every host follows the same numbers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    /// Units in the budget (`max_unavailable` as a count).
    pub total: u32,
    /// The canaries, as [`trait_part`] of their names.
    pub canaries: BTreeSet<String>,
}

/// Resolves `policy` for the rollout's `hosts` (all of them, in any order): a percentage
/// of them (rounded down, at least 1), and the first canaries in name order.
pub fn resolve(policy: &Policy, hosts: &BTreeSet<String>) -> Resolved {
    let total = match &policy.max_unavailable {
        Amount::Count(n) => *n,
        Amount::Percent(p) => {
            let share = (hosts.len() as u64 * u64::from(percent(p).unwrap_or(100))) / 100;
            u32::try_from(share).unwrap_or(u32::MAX)
        }
    }
    .max(1);
    let canaries = match &policy.canary {
        Canary::Count(n) => hosts
            .iter()
            .take(*n as usize)
            .map(|h| trait_part(h))
            .collect(),
        Canary::Hosts(names) => names.iter().map(|h| trait_part(h)).collect(),
    };
    Resolved { total, canaries }
}

/// The budget provider's traits for a record: the budget trait, the record's, and one per
/// canary.
pub fn record_traits(key: &str, resolved: &Resolved) -> BTreeSet<String> {
    let mut out = BTreeSet::from([UNIT_CLASS.to_owned(), format!("{RECORD_TRAIT_PREFIX}{key}")]);
    out.extend(
        resolved
            .canaries
            .iter()
            .map(|c| format!("{CANARY_TRAIT_PREFIX}{c}")),
    );
    out
}

/// The record a budget provider's traits and inventory hold: its key and what was
/// resolved for it; `None` when it holds none.
pub fn read_record(traits: &BTreeSet<String>, total: Option<u32>) -> Option<(String, Resolved)> {
    let key = traits
        .iter()
        .find_map(|t| t.strip_prefix(RECORD_TRAIT_PREFIX))?
        .to_owned();
    let canaries = traits
        .iter()
        .filter_map(|t| t.strip_prefix(CANARY_TRAIT_PREFIX))
        .map(str::to_owned)
        .collect();
    Some((
        key,
        Resolved {
            total: total?,
            canaries,
        },
    ))
}

/// The name of the budget provider of `unit` for `site`: `fpga-sync-rollout:<site>:<key>`,
/// cut to Placement's 200 characters with a digest when longer.
pub fn budget_name(site: &str, unit: &UnitId) -> String {
    let name = format!("fpga-sync-rollout:{site}:{}", unit.key());
    if name.chars().count() <= 200 {
        return name;
    }
    let digest = hex12(&Sha256::digest(name.as_bytes()));
    let head: String = name.chars().take(187).collect();
    format!("{head}~{digest}")
}

/// The consumer through which `host` holds a unit of `unit`'s budget: a uuid derived from
/// the site, the rollout and the host, so a restarted agent finds its own unit and others
/// can tell which host holds which.
pub fn holder_consumer(site: &str, unit: &UnitId, host: &str) -> String {
    let digest = Sha256::digest(format!(
        "fpga-sync rollout holder\n{site}\n{}\n{host}",
        unit.key()
    ));
    let mut b: [u8; 16] = digest[..16].try_into().unwrap_or_default();
    // A version-8 (custom) RFC 9562 uuid.
    b[6] = (b[6] & 0x0f) | 0x80;
    b[8] = (b[8] & 0x3f) | 0x80;
    uuid::Uuid::from_bytes(b).to_string()
}

/// What a budget provider holds.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Budget {
    /// The provider's uuid.
    pub uuid: String,
    /// Its traits (the record).
    pub traits: BTreeSet<String>,
    /// Units in the budget; `None` before anyone set the inventory.
    pub total: Option<u32>,
    /// Who holds units.
    pub holders: Vec<Holder>,
}

/// A consumer holding a unit, as the budget's allocations list it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Holder {
    /// The consumer uuid.
    pub consumer: String,
    /// Its consumer generation: a live holder bumps it every renewal.
    pub generation: u64,
}

/// When this host first saw each holder at its current generation: consumer →
/// (generation, milliseconds on this host's clock).
pub type Sightings = BTreeMap<String, (u64, u64)>;

/// The sightings after seeing `holders` at `now`: a holder seen at a new generation (it
/// renewed) starts again at `now`; holders gone are forgotten.
pub fn sight(before: &Sightings, holders: &[Holder], now: u64) -> Sightings {
    holders
        .iter()
        .map(|h| {
            let since = match before.get(&h.consumer) {
                Some((g, since)) if *g == h.generation => *since,
                _ => now,
            };
            (h.consumer.clone(), (h.generation, since))
        })
        .collect()
}

/// The holders whose unit has not been renewed for `lease_seconds` by this host's clock
/// (`now`, in milliseconds; their agent is gone): any host may take those units back,
/// guarded by the consumer generation it saw. Never `mine`.
pub fn expired(sightings: &Sightings, mine: &str, now: u64, lease_seconds: u64) -> Vec<Holder> {
    sightings
        .iter()
        .filter(|(c, _)| c.as_str() != mine)
        .filter(|(_, (_, since))| now.saturating_sub(*since) >= lease_seconds * 1000)
        .map(|(c, (g, _))| Holder {
            consumer: c.clone(),
            generation: *g,
        })
        .collect()
}

/// One rollout's part in a host's pass: the slots it would drain and what they get.
#[derive(Clone, Debug, PartialEq)]
pub struct Work {
    /// The rollout.
    pub unit: UnitId,
    /// Its settings.
    pub policy: Policy,
    /// The bitstreams its drained slots are to get, by name.
    pub targets: Vec<String>,
}

/// The rollouts `plan` (made without holds) takes part in: by host group, for each group
/// with a rollout in which the plan drains a slot.
pub fn work(desired: &Desired, plan: &HostPlan) -> BTreeMap<String, Work> {
    let mut out: BTreeMap<String, Work> = BTreeMap::new();
    for s in plan.slots.iter().filter(|s| s.drains) {
        let group = &s.assignment.group;
        let Some(spec) = desired.host_groups.get(group).map(|g| &g.spec) else {
            continue;
        };
        let Some((unit, rollout)) = unit_for(spec, &plan.host) else {
            continue;
        };
        let entry = out.entry(group.clone()).or_insert_with(|| Work {
            unit,
            policy: Policy::of(rollout),
            targets: Vec::new(),
        });
        if let Some(t) = &s.assignment.bitstream
            && !entry.targets.contains(&t.name)
        {
            entry.targets.push(t.name.clone());
        }
    }
    out
}

/// What the gate reads: the published record, the budget, and the fleet's providers.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Facts {
    /// Units in the budget and the canaries.
    pub total: u32,
    /// The canaries ([`trait_part`] of their names).
    pub canaries: BTreeSet<String>,
    /// Units held now.
    pub used: u32,
    /// Whether this host holds one.
    pub holding: bool,
    /// For each bitstream this host is to program, the hosts ([`trait_part`] of their
    /// names) with a provider verified with it.
    pub verified: BTreeMap<String, BTreeSet<String>>,
    /// The rollout's hosts whose provider is failing one of those bitstreams.
    pub failed: BTreeSet<String>,
    /// How long ago this host first saw every canary verified (milliseconds on its
    /// clock).
    pub canaries_verified_for: Option<u64>,
}

/// The gate's answer for one host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Gate {
    /// Start (with the unit held, or to be taken now).
    Go {
        /// 1: the canaries (or everyone, without canaries); 2: the others.
        wave: u8,
    },
    /// Not now; the slots keep what they carry.
    Wait {
        /// Why, for the plan and the status.
        reason: String,
        /// Whether the rollout is halted on failures.
        halted: bool,
    },
}

/// Whether `host` is one of the canaries.
pub fn is_canary(facts: &Facts, host: &str) -> bool {
    facts.canaries.contains(&trait_part(host))
}

/// The canaries that have not verified every one of `targets`.
pub fn canaries_pending(facts: &Facts, targets: &[String]) -> BTreeSet<String> {
    facts
        .canaries
        .iter()
        .filter(|c| {
            targets
                .iter()
                .any(|t| !facts.verified.get(t).is_some_and(|v| v.contains(*c)))
        })
        .cloned()
        .collect()
}

fn names(targets: &[String]) -> String {
    targets
        .iter()
        .map(|t| format!("`{t}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether `host` may start programming `targets` now. A host that holds a unit goes on
/// (it is under way, or retrying a failure with the unit it keeps); otherwise, in this
/// order: paused, halted, its wave, a free unit.
pub fn gate(policy: &Policy, host: &str, targets: &[String], facts: &Facts) -> Gate {
    let canary = is_canary(facts, host);
    let wave = if canary || facts.canaries.is_empty() {
        1
    } else {
        2
    };
    if facts.holding {
        return Gate::Go { wave };
    }
    let wait = |reason: String| Gate::Wait {
        reason,
        halted: false,
    };
    if policy.paused {
        return wait(
            "paused: `rollout.paused: true` in the repository; remove it to resume".into(),
        );
    }
    if facts.failed.len() >= policy.max_failures as usize {
        let n = facts.failed.len();
        return Gate::Wait {
            reason: format!(
                "halted: {n} failure{} of {} ({}; max_failures {}); fix or revert the bitstream",
                if n == 1 { "" } else { "s" },
                names(targets),
                facts.failed.iter().cloned().collect::<Vec<_>>().join(", "),
                policy.max_failures
            ),
            halted: true,
        };
    }
    if wave == 2 {
        let pending = canaries_pending(facts, targets);
        if !pending.is_empty() {
            return wait(format!(
                "wave 2: waiting for {} of {} canar{} to verify {}",
                pending.len(),
                facts.canaries.len(),
                if facts.canaries.len() == 1 {
                    "y"
                } else {
                    "ies"
                },
                names(targets)
            ));
        }
        let baked = facts.canaries_verified_for.unwrap_or(0);
        if baked < policy.min_verified_seconds * 1000 {
            return wait(format!(
                "wave 2: the canaries verified {} {} s ago; waiting until {} s (min_verified_seconds)",
                names(targets),
                baked / 1000,
                policy.min_verified_seconds
            ));
        }
    }
    if facts.used >= facts.total {
        return wait(format!(
            "wave {wave}: waiting for a unit of the budget ({} of {} held)",
            facts.used, facts.total
        ));
    }
    Gate::Go { wave }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(canary: Canary, min: u64) -> Policy {
        Policy {
            max_unavailable: Amount::Count(2),
            canary,
            min_verified_seconds: min,
            max_failures: 1,
            paused: false,
            lease_seconds: 10,
        }
    }

    fn facts(canaries: &[&str]) -> Facts {
        Facts {
            total: 2,
            canaries: canaries.iter().map(|c| trait_part(c)).collect(),
            ..Facts::default()
        }
    }

    fn t() -> Vec<String> {
        vec!["aes-1.1".to_owned()]
    }

    #[test]
    fn percentages_round_down_to_at_least_one_and_count_canaries_are_the_first_names() {
        let hosts: BTreeSet<String> = ["h03", "h01", "h02", "h10"].map(String::from).into();
        let p = Policy {
            max_unavailable: Amount::Percent("30%".into()),
            canary: Canary::Count(2),
            ..policy(Canary::Count(0), 0)
        };
        let r = resolve(&p, &hosts);
        assert_eq!(r.total, 1);
        assert_eq!(r.canaries, ["H01", "H02"].map(String::from).into());
        let p = Policy {
            max_unavailable: Amount::Percent("50%".into()),
            ..p
        };
        assert_eq!(resolve(&p, &hosts).total, 2);
        assert_eq!(resolve(&p, &BTreeSet::new()).total, 1);
    }

    #[test]
    fn canaries_go_first_and_the_others_wait_for_them_and_the_bake_time() {
        let p = policy(Canary::Hosts(vec!["c1".into()]), 30);
        let mut f = facts(&["c1"]);
        assert_eq!(gate(&p, "c1", &t(), &f), Gate::Go { wave: 1 });
        let Gate::Wait { reason, .. } = gate(&p, "h2", &t(), &f) else {
            panic!()
        };
        assert_eq!(
            reason,
            "wave 2: waiting for 1 of 1 canary to verify `aes-1.1`"
        );
        f.verified
            .insert("aes-1.1".into(), BTreeSet::from(["C1".to_owned()]));
        f.canaries_verified_for = Some(10_500);
        let Gate::Wait { reason, .. } = gate(&p, "h2", &t(), &f) else {
            panic!()
        };
        assert!(reason.contains("10 s ago; waiting until 30 s"), "{reason}");
        f.canaries_verified_for = Some(29_999);
        assert!(matches!(gate(&p, "h2", &t(), &f), Gate::Wait { .. }));
        f.canaries_verified_for = Some(30_000);
        assert_eq!(gate(&p, "h2", &t(), &f), Gate::Go { wave: 2 });
        f.used = 2;
        let Gate::Wait { reason, halted } = gate(&p, "h2", &t(), &f) else {
            panic!()
        };
        assert_eq!(
            (reason.as_str(), halted),
            (
                "wave 2: waiting for a unit of the budget (2 of 2 held)",
                false
            )
        );
        f.holding = true;
        assert_eq!(gate(&p, "h2", &t(), &f), Gate::Go { wave: 2 });
    }

    #[test]
    fn failures_halt_and_paused_stops_everyone_but_the_holders() {
        let p = policy(Canary::Count(0), 0);
        let mut f = facts(&[]);
        f.failed.insert("h1".into());
        let Gate::Wait { reason, halted } = gate(&p, "h2", &t(), &f) else {
            panic!()
        };
        assert!(halted);
        assert!(
            reason.starts_with("halted: 1 failure of `aes-1.1` (h1; max_failures 1)"),
            "{reason}"
        );
        let paused = Policy {
            paused: true,
            ..policy(Canary::Count(0), 0)
        };
        let f = facts(&[]);
        assert!(matches!(
            gate(&paused, "h2", &t(), &f),
            Gate::Wait { halted: false, .. }
        ));
        let holding = Facts {
            holding: true,
            ..facts(&[])
        };
        assert_eq!(gate(&paused, "h2", &t(), &holding), Gate::Go { wave: 1 });
    }

    #[test]
    fn a_holder_not_renewed_for_the_lease_on_this_host_s_clock_expires() {
        let a = Holder {
            consumer: "a".into(),
            generation: 3,
        };
        let s = sight(&Sightings::new(), std::slice::from_ref(&a), 100_000);
        let s = sight(&s, std::slice::from_ref(&a), 105_000);
        assert!(expired(&s, "me", 109_999, 10).is_empty());
        assert_eq!(expired(&s, "me", 110_000, 10), vec![a.clone()]);
        assert!(expired(&s, "a", 110_000, 10).is_empty(), "never mine");
        // A renewal (a new generation) starts the clock again.
        let renewed = Holder { generation: 4, ..a };
        let s = sight(&s, &[renewed], 109_000);
        assert!(expired(&s, "me", 118_000, 10).is_empty());
        assert!(sight(&s, &[], 120_000).is_empty());
    }

    #[test]
    fn an_override_with_its_own_rollout_is_a_rollout_of_its_own() {
        let yaml = serde_json::json!({
            "name": "rack", "hosts": ["h*"], "backend": "sim",
            "devices": [{"address": "0000:5e:00.0", "bitstream": "a"}],
            "rollout": {"max_unavailable": 2},
            "overrides": [
                {"hosts": ["h9"], "rollout": {"max_unavailable": "100%"}},
                {"hosts": ["h1"], "devices": [{"address": "0000:5e:00.0", "bitstream": "b"}]}
            ]
        });
        let group: HostGroup = serde_json::from_value(yaml).unwrap();
        let (unit, r) = unit_for(&group, "h9").unwrap();
        assert_eq!(unit.key(), "rack/overrides[0]");
        assert_eq!(r.max_unavailable, Some(Amount::Percent("100%".into())));
        assert_eq!(unit_for(&group, "h1").unwrap().0.key(), "rack");
        assert!(covers(&group, &unit, "h9") && !covers(&group, &unit, "h1"));
        assert!(!covers(&group, &unit, "x9"), "not one of the group's hosts");
        let mut plain = group.clone();
        plain.rollout = None;
        plain.overrides.clear();
        assert!(unit_for(&plain, "h1").is_none());
        // Settings are not part of the revision; assignments are.
        let mut paused = group.clone();
        paused.rollout.as_mut().unwrap().paused = true;
        let targets = BTreeMap::new();
        assert_eq!(revision(&group, &targets), revision(&paused, &targets));
        let mut moved = group.clone();
        moved.devices[0].bitstream = Some("c".into());
        assert_ne!(revision(&group, &targets), revision(&moved, &targets));
    }

    #[test]
    fn names_are_placement_s_and_consumers_are_uuids_per_host() {
        let unit = UnitId {
            group: "rack-a".into(),
            override_index: Some(1),
        };
        assert_eq!(
            budget_name("prod", &unit),
            "fpga-sync-rollout:prod:rack-a/overrides[1]"
        );
        let long = UnitId {
            group: "g".repeat(300),
            override_index: None,
        };
        assert_eq!(budget_name("s", &long).chars().count(), 200);
        let c = holder_consumer("prod", &unit, "h1");
        assert!(uuid::Uuid::parse_str(&c).is_ok());
        assert_ne!(c, holder_consumer("prod", &unit, "h2"));
        assert_eq!(c, holder_consumer("prod", &unit, "h1"));
        let r = Resolved {
            total: 2,
            canaries: BTreeSet::from(["H1".to_owned()]),
        };
        let traits = record_traits("ABC", &r);
        assert_eq!(read_record(&traits, Some(2)), Some(("ABC".to_owned(), r)));
    }
}
