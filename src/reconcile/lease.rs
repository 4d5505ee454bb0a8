//! The lease: one fpga-sync run at a time changes a site (central `apply`) or a host
//! (`apply --host`, `program`, and each `watch` pass that programs), with no
//! infrastructure beyond the cloud every runner already reaches. Placement's capacity
//! check is the compare-and-swap: each scope has a root resource provider
//! (`fpga-sync-lock:site:<site>`, `fpga-sync-lock:host:<host>`) with an inventory of 1
//! [`LEASE_CLASS`]; holding the lease is holding that unit, as an allocation of a consumer
//! whose uuid is the lease id and whose `user_id` is the holder's record ([`Holder`]:
//! host, pid, operation, commit, since, TTL). Placement refuses a second holder and any
//! write on a stale consumer generation atomically (microversion 1.28).
//!
//! The holder renews its allocation every third of its TTL from a background task
//! (re-writing the same allocation bumps the consumer generation); a runner that waits
//! sees the generation move. A lease whose generation it has watched stand still for a
//! whole TTL, by its own clock (so clocks of different machines never matter), it breaks
//! and takes in one `POST /allocations` guarded by the generation it watched: if the
//! holder renewed meanwhile, nothing happens. A holder that cannot renew for its TTL, or
//! finds its allocation gone (`fpga-sync lock break`), has lost the lease: the executors
//! start nothing more. `docs/locking.md` is the operator's view.
//!
//! I/O: Placement through a sibling session of the caller's (its own request limit, so
//! renewals never queue behind uploads), the clock, the host name and pid, a tokio task.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::Error;
use crate::cloud::CloudError;
use crate::cloud::placement::{
    CONSUMER_MICROVERSION, ConsumerWrite, Inventory, Placement, Resources,
};
use crate::cloud::session::Session;
use crate::diagnostic::Diagnostic;

pub use crate::markers::LEASE_CLASS;
/// The start of every lease provider's name.
pub const PROVIDER_PREFIX: &str = "fpga-sync-lock:";
/// The consumer type of every lease (Placement 1.38): tells leases from servers and claims.
pub const LEASE_CONSUMER_TYPE: &str = "FPGA_SYNC_LEASE";

/// The `project_id` of every lease consumer.
pub const PROJECT: &str = "fpga-sync";
/// The TTL of a run's lease unless told otherwise.
pub const DEFAULT_TTL: Duration = Duration::from_secs(120);
/// How long a run waits for another's lease unless told otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);
/// Placement's longest provider name.
const NAME_MAX: usize = 200;
/// Placement's longest `user_id`.
const USER_MAX: usize = 255;

/// What a lease guards.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Scope {
    /// A site's cloud-wide objects (central `apply`).
    Site(String),
    /// One host's cards and providers (`apply --host`, `program`, programming `watch`
    /// passes), whatever site assigns them.
    Host(String),
}

impl Scope {
    /// The lease provider's name: `fpga-sync-lock:site:<site>` or
    /// `fpga-sync-lock:host:<host>`; a name too long for Placement keeps its start and
    /// ends with a digest of the whole.
    pub fn provider_name(&self) -> String {
        let full = match self {
            Scope::Site(s) => format!("{PROVIDER_PREFIX}site:{s}"),
            Scope::Host(h) => format!("{PROVIDER_PREFIX}host:{h}"),
        };
        if full.len() <= NAME_MAX {
            return full;
        }
        use sha2::Digest;
        let digest: String = sha2::Sha256::digest(full.as_bytes())
            .iter()
            .take(8)
            .map(|b| format!("{b:02x}"))
            .collect();
        let mut cut = NAME_MAX - digest.len() - 1;
        while !full.is_char_boundary(cut) {
            cut -= 1;
        }
        format!("{}~{digest}", &full[..cut])
    }

    /// The flag that names this scope on the command line: `--site x` or `--host h`.
    pub fn flag(&self) -> String {
        match self {
            Scope::Site(s) => format!("--site {s}"),
            Scope::Host(h) => format!("--host {h}"),
        }
    }

    /// `site` or `host`.
    pub fn kind(&self) -> &'static str {
        match self {
            Scope::Site(_) => "site",
            Scope::Host(_) => "host",
        }
    }

    /// The site's or host's name.
    pub fn name(&self) -> &str {
        match self {
            Scope::Site(n) | Scope::Host(n) => n,
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} `{}`", self.kind(), self.name())
    }
}

/// Who holds a lease, as the holder recorded it in its consumer's `user_id` (compact
/// JSON, at most 255 bytes; the host name is shortened to fit).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    /// The record's format: 1.
    #[serde(rename = "fpga-sync")]
    pub format: u32,
    /// The host the run is on.
    pub host: String,
    /// Its process id there.
    pub pid: u32,
    /// What it runs: `apply`, `apply --host`, `watch`, `program`, ...
    pub op: String,
    /// The commit it applies, if it reads one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// When it took the lease (Unix seconds, by its clock).
    pub since: u64,
    /// Its TTL in seconds: it renews every third of it, and may be broken by a runner
    /// that sees no renewal for a whole TTL.
    pub ttl: u64,
}

impl Holder {
    /// This process, about to run `options.operation`.
    pub fn me(options: &LeaseOptions) -> Holder {
        Holder {
            format: 1,
            host: hostname(),
            pid: std::process::id(),
            op: options.operation.clone(),
            commit: options.commit.clone(),
            since: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            ttl: options.ttl.as_secs().max(1),
        }
    }

    /// The record as stored: compact JSON within Placement's 255 bytes.
    pub fn encode(&self) -> String {
        let mut record = self.clone();
        loop {
            let text = serde_json::to_string(&record).expect("a holder serialises");
            if text.len() <= USER_MAX || record.host.is_empty() {
                return text;
            }
            let mut host = record.host.clone();
            host.pop();
            record.host = host;
        }
    }

    /// A stored record; `None` for anything else (not fpga-sync's, or unreadable).
    pub fn decode(user_id: &str) -> Option<Holder> {
        serde_json::from_str::<Holder>(user_id)
            .ok()
            .filter(|h| h.format >= 1)
    }

    /// Its TTL.
    pub fn ttl(&self) -> Duration {
        Duration::from_secs(self.ttl.max(1))
    }

    /// When it took the lease.
    pub fn since_time(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(self.since)
    }

    /// `host `h`, pid 1, `apply`, commit 137a6a8…, since 2025-01-01T00:00:00Z`.
    pub fn describe(&self) -> String {
        let commit = self
            .commit
            .as_deref()
            .map(|c| format!(", commit {}", &c[..c.len().min(12)]))
            .unwrap_or_default();
        format!(
            "host `{}`, pid {}, `{}`{commit}, since {}",
            self.host,
            self.pid,
            self.op,
            humantime::format_rfc3339_seconds(self.since_time())
        )
    }
}

/// The lease as Placement shows it: who holds the unit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Held {
    /// The lease id: the consumer's uuid.
    pub id: String,
    /// The consumer's generation: it moves with every renewal.
    pub generation: Option<u64>,
    /// The consumer's `user_id`, as stored.
    pub user: String,
    /// The holder's record, when the `user_id` is one.
    pub holder: Option<Holder>,
}

impl Held {
    /// The TTL a waiting runner gives it: the holder's own; `None` (never broken by a
    /// waiting runner, only by `lock break`) for a holder that is not an fpga-sync run.
    pub fn ttl(&self) -> Option<Duration> {
        self.holder.as_ref().map(Holder::ttl)
    }

    /// Who holds it, for messages: the holder's record and the lease id.
    pub fn describe(&self) -> String {
        match &self.holder {
            Some(h) => format!("{} (lease {})", h.describe(), self.id),
            None => format!(
                "a consumer that is not an fpga-sync run (lease {}, user `{}`)",
                self.id, self.user
            ),
        }
    }
}

/// What `lock status` shows.
#[derive(Clone, Debug)]
pub struct LeaseStatus {
    /// The scope.
    pub scope: Scope,
    /// The lease provider's name.
    pub provider_name: String,
    /// Its uuid; `None` when no run has taken this lease yet.
    pub provider: Option<String>,
    /// Who holds it; `None` when it is free.
    pub held: Option<Held>,
}

/// How a run takes its lease.
#[derive(Clone, Debug)]
pub struct LeaseOptions {
    /// Its TTL: renewed every third of it; a runner that sees no renewal for this long
    /// may break it. Whole seconds; at least one.
    pub ttl: Duration,
    /// How long to wait for another run's lease before failing (zero: fail at once).
    pub timeout: Duration,
    /// What the run is, for the holder's record: `apply`, `apply --host`, `watch`, ...
    pub operation: String,
    /// The commit the run applies, for the holder's record.
    pub commit: Option<String>,
}

impl LeaseOptions {
    /// `operation` with the default TTL and timeout.
    pub fn new(operation: &str) -> Self {
        LeaseOptions {
            ttl: DEFAULT_TTL,
            timeout: DEFAULT_TIMEOUT,
            operation: operation.to_owned(),
            commit: None,
        }
    }

    /// The same, recording `commit`.
    pub fn with_commit(&self, commit: Option<&str>) -> Self {
        LeaseOptions {
            commit: commit.map(str::to_owned),
            ..self.clone()
        }
    }
}

/// What happens to a lease, told as it happens.
#[derive(Debug)]
pub enum Event<'a> {
    /// Another run holds it; this one waits (told once per holder).
    Waiting {
        /// The scope.
        scope: &'a Scope,
        /// The holder.
        held: &'a Held,
        /// How long this run waits at most.
        timeout: Duration,
    },
    /// A lease not renewed for its TTL was broken and taken.
    Broke {
        /// The scope.
        scope: &'a Scope,
        /// The holder that stopped renewing.
        held: &'a Held,
        /// How long this run watched it without a renewal.
        unrenewed: Duration,
    },
    /// This run holds the lease.
    Taken {
        /// The scope.
        scope: &'a Scope,
        /// Its id.
        id: &'a str,
    },
    /// This run gave the lease back.
    Released {
        /// The scope.
        scope: &'a Scope,
    },
    /// This run lost the lease while it held it.
    Lost {
        /// The scope.
        scope: &'a Scope,
        /// Why.
        reason: &'a str,
    },
    /// Giving the lease back failed: it lapses after its TTL.
    ReleaseFailed {
        /// The scope.
        scope: &'a Scope,
        /// Why.
        error: &'a CloudError,
    },
}

impl Event<'_> {
    /// One line for people and logs.
    pub fn message(&self) -> String {
        match self {
            Event::Waiting {
                scope,
                held,
                timeout,
            } => format!(
                "waiting up to {} s (`--lock-timeout`) for the lease of {scope}, held by {}",
                timeout.as_secs(),
                held.describe()
            ),
            Event::Broke {
                scope,
                held,
                unrenewed,
            } => format!(
                "broke the lease of {scope}: not renewed for {:.1} s (its TTL) by {}; took it over",
                unrenewed.as_secs_f64(),
                held.describe()
            ),
            Event::Taken { scope, id } => format!("took the lease of {scope} (lease {id})"),
            Event::Released { scope } => format!("released the lease of {scope}"),
            Event::Lost { scope, reason } => format!("lost the lease of {scope}: {reason}"),
            Event::ReleaseFailed { scope, error } => {
                format!("could not release the lease of {scope} (it lapses after its TTL): {error}")
            }
        }
    }
}

/// Where lease events go.
pub type Events<'a> = &'a (dyn Fn(&Event<'_>) + Sync);

/// Why a lease could not be taken, kept or broken.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    /// Another run holds it and this one stopped waiting.
    #[error("{scope} is locked by another fpga-sync run: {}", .held.describe())]
    Held {
        /// The scope.
        scope: Scope,
        /// The holder.
        held: Held,
        /// How long this run waited.
        waited: Duration,
    },
    /// Taken, then lost before this run could start.
    #[error("the lease of {scope} was lost: {reason}")]
    Lost {
        /// The scope.
        scope: Scope,
        /// Why.
        reason: String,
    },
    /// `lock break` of an id that does not hold the lease.
    #[error("lease `{id}` does not hold {scope}: {}", match .current { Some(h) => format!("it is held by {}", h.describe()), None => "the lease is free".into() })]
    NotHeld {
        /// The scope.
        scope: Scope,
        /// The id given.
        id: String,
        /// Who holds it instead.
        current: Option<Held>,
    },
    /// A stop was asked for while waiting.
    #[error("stopped while waiting for the lease of {scope}")]
    Cancelled {
        /// The scope.
        scope: Scope,
    },
    /// Placement failed.
    #[error(transparent)]
    Cloud(#[from] CloudError),
}

impl LeaseError {
    /// Whether waiting and trying again may help: another run holds the lease, or
    /// Placement is busy.
    pub fn is_transient(&self) -> bool {
        match self {
            LeaseError::Held { .. } | LeaseError::Lost { .. } | LeaseError::Cancelled { .. } => {
                true
            }
            LeaseError::NotHeld { .. } => false,
            LeaseError::Cloud(e) => e.is_transient(),
        }
    }

    /// The error with its help.
    pub fn diagnostic(&self) -> Diagnostic {
        let d = match self {
            LeaseError::Cloud(e) => return Diagnostic::from(e.clone()),
            _ => Diagnostic::error("fpga_sync::lease", self.to_string()),
        };
        match self {
            LeaseError::Held {
                scope,
                held,
                waited,
            } => {
                let expiry = match held.ttl() {
                    Some(ttl) => format!(
                        "if that run is gone, a run that waits longer than its TTL ({} s) breaks its lease once it sees no renewal that long",
                        ttl.as_secs()
                    ),
                    None => "it is not an fpga-sync run, so it never lapses by itself".into(),
                };
                d.help(format!(
                    "it waited {} s: wait longer with `--lock-timeout SECONDS`; {expiry}; to break it now: `fpga-sync lock break {} {}` (see docs/locking.md)",
                    waited.as_secs(),
                    held.id,
                    scope.flag()
                ))
            }
            LeaseError::Lost { scope, .. } => d.help(format!(
                "another run may be changing {scope} now; run again once it is done: fpga-sync continues from what is there"
            )),
            LeaseError::NotHeld { scope, .. } => d.help(format!(
                "check the lease id with `fpga-sync lock status {}`",
                scope.flag()
            )),
            LeaseError::Cancelled { .. } | LeaseError::Cloud(_) => d,
        }
    }
}

/// What the lease needs of its store: Placement, or a fake in the unit tests. Every
/// write is a compare-and-swap.
pub trait Store: Send + Sync + 'static {
    /// Who holds the lease now.
    fn read(&self) -> impl Future<Output = Result<Option<Held>, CloudError>> + Send;
    /// Takes the free lease as `id` (a new consumer); a 409 when someone holds it.
    fn take(&self, id: &str, user: &str) -> impl Future<Output = Result<(), CloudError>> + Send;
    /// Removes `old` (guarded by the generation it was read with) and takes the lease as
    /// `id`, both or neither; a 409 when `old` moved.
    fn swap(
        &self,
        old: &Held,
        id: &str,
        user: &str,
    ) -> impl Future<Output = Result<(), CloudError>> + Send;
    /// Rewrites `id`'s allocation guarded by `generation`, which moves it on by one.
    fn renew(
        &self,
        id: &str,
        user: &str,
        generation: u64,
    ) -> impl Future<Output = Result<(), CloudError>> + Send;
    /// `id`'s generation if it holds the lease, else `None`.
    fn holds(&self, id: &str) -> impl Future<Output = Result<Option<u64>, CloudError>> + Send;
    /// Removes `id`'s allocation, unguarded (nobody else writes a lease's own consumer);
    /// `false` when it had none.
    fn remove(&self, id: &str) -> impl Future<Output = Result<bool, CloudError>> + Send;
}

/// The lease of one scope in Placement.
pub struct PlacementStore {
    session: Arc<Session>,
    provider: String,
}

fn unit(provider: &str) -> BTreeMap<String, Resources> {
    BTreeMap::from([(
        provider.to_owned(),
        Resources {
            resources: BTreeMap::from([(LEASE_CLASS.to_owned(), 1)]),
        },
    )])
}

impl PlacementStore {
    fn placement(&self) -> Placement<'_> {
        Placement::new(&self.session)
    }

    fn write(&self, user: &str, generation: Option<u64>, hold: bool) -> ConsumerWrite {
        ConsumerWrite {
            allocations: if hold {
                unit(&self.provider)
            } else {
                BTreeMap::new()
            },
            consumer_generation: generation,
            project_id: PROJECT.into(),
            user_id: user.into(),
            consumer_type: LEASE_CONSUMER_TYPE.into(),
        }
    }
}

/// Who holds the lease of `provider`.
async fn read_holder(
    placement: &Placement<'_>,
    provider: &str,
) -> Result<Option<Held>, CloudError> {
    let consumers = placement.provider_consumers(provider).await?;
    let Some((id, c)) = consumers
        .into_iter()
        .find(|(_, c)| c.resources.get(LEASE_CLASS).is_some_and(|n| *n > 0))
    else {
        return Ok(None);
    };
    let consumer = placement.consumer(&id).await?;
    if !consumer.allocations.contains_key(provider) {
        // Released between the two reads.
        return Ok(None);
    }
    let user = consumer.user_id.unwrap_or_default();
    Ok(Some(Held {
        holder: Holder::decode(&user),
        generation: consumer.consumer_generation.or(c.consumer_generation),
        id,
        user,
    }))
}

impl Store for PlacementStore {
    async fn read(&self) -> Result<Option<Held>, CloudError> {
        read_holder(&self.placement(), &self.provider).await
    }

    async fn take(&self, id: &str, user: &str) -> Result<(), CloudError> {
        self.placement()
            .set_consumer(id, &self.write(user, None, true))
            .await
    }

    async fn swap(&self, old: &Held, id: &str, user: &str) -> Result<(), CloudError> {
        let writes = BTreeMap::from([
            (old.id.clone(), self.write(&old.user, old.generation, false)),
            (id.to_owned(), self.write(user, None, true)),
        ]);
        self.placement().set_consumers(&writes).await
    }

    async fn renew(&self, id: &str, user: &str, generation: u64) -> Result<(), CloudError> {
        self.placement()
            .set_consumer(id, &self.write(user, Some(generation), true))
            .await
    }

    async fn holds(&self, id: &str) -> Result<Option<u64>, CloudError> {
        let c = self.placement().consumer(id).await?;
        let holds = c
            .allocations
            .get(&self.provider)
            .is_some_and(|r| r.resources.get(LEASE_CLASS).is_some_and(|n| *n > 0));
        Ok(holds.then_some(c.consumer_generation).flatten())
    }

    async fn remove(&self, id: &str) -> Result<bool, CloudError> {
        match self.placement().delete_consumer(id).await {
            Ok(()) => Ok(true),
            Err(e) if e.status() == Some(404) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

/// The lease provider's inventory: one unit, no overcommit.
fn lease_inventory() -> Inventory {
    Inventory {
        total: 1,
        reserved: 0,
        min_unit: 1,
        max_unit: 1,
        step_size: 1,
        allocation_ratio: 1.0,
    }
}

/// The uuid of the scope's lease provider, if there is one.
async fn find_provider(
    placement: &Placement<'_>,
    scope: &Scope,
) -> Result<Option<String>, CloudError> {
    Ok(placement
        .providers(Some(&scope.provider_name()), None)
        .await?
        .into_iter()
        .next()
        .map(|p| p.uuid))
}

/// The scope's lease provider, made (with its resource class and inventory of one) when
/// missing; concurrent runners that make it at once end with the same one.
async fn ensure_provider(placement: &Placement<'_>, scope: &Scope) -> Result<String, CloudError> {
    let uuid = match find_provider(placement, scope).await? {
        Some(uuid) => uuid,
        None => {
            placement.ensure_resource_class(LEASE_CLASS).await?;
            match placement
                .create_provider(&scope.provider_name(), None, None)
                .await
            {
                Ok(p) => p.uuid,
                // Another runner made it first.
                Err(e) if e.status() == Some(409) => {
                    find_provider(placement, scope).await?.ok_or(e)?
                }
                Err(e) => return Err(e),
            }
        }
    };
    let (_, inventories) = placement.inventories(&uuid).await?;
    if inventories.get(LEASE_CLASS) != Some(&lease_inventory()) {
        placement.ensure_resource_class(LEASE_CLASS).await?;
        placement
            .update_inventories(
                &uuid,
                &BTreeMap::from([(LEASE_CLASS.to_owned(), lease_inventory())]),
                &Default::default(),
            )
            .await?;
    }
    Ok(uuid)
}

/// Who holds the scope's lease, read only: nothing is created (`plan`, `lock status`).
pub async fn status(session: &Session, scope: &Scope) -> Result<LeaseStatus, CloudError> {
    let placement = Placement::new(session);
    let provider = find_provider(&placement, scope).await?;
    let held = match &provider {
        Some(uuid) => read_holder(&placement, uuid).await?,
        None => None,
    };
    Ok(LeaseStatus {
        scope: scope.clone(),
        provider_name: scope.provider_name(),
        provider,
        held,
    })
}

/// A held lease. Renewed in the background until [`Lease::release`]; dropped without it,
/// renewals stop and the lease lapses after its TTL.
pub struct Lease<S: Store = PlacementStore> {
    id: String,
    scope: Scope,
    store: Arc<S>,
    lost: Arc<Mutex<Option<String>>>,
    task: Option<JoinHandle<()>>,
}

/// How a release ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Released {
    /// The lease was given back.
    Released,
    /// The lease was not this run's any more (it was broken).
    Gone,
}

impl<S: Store> Lease<S> {
    /// The lease id (the consumer's uuid), recorded in the uploads made under it.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The scope.
    pub fn scope(&self) -> &Scope {
        &self.scope
    }

    /// Why the lease is lost, if it is: broken by someone, or not renewed for its TTL.
    pub fn lost(&self) -> Option<String> {
        self.lost
            .lock()
            .expect("never poisoned")
            .as_ref()
            .map(|r| format!("the lease of {} was lost: {r}", self.scope))
    }

    /// Stops renewing and gives the lease back.
    pub async fn release(mut self) -> Result<Released, CloudError> {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
        Ok(if self.store.remove(&self.id).await? {
            Released::Released
        } else {
            Released::Gone
        })
    }
}

impl<S: Store> Drop for Lease<S> {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// A new lease id.
fn new_id() -> String {
    uuid::Builder::from_random_bytes(rand::random())
        .into_uuid()
        .to_string()
}

/// How often a waiting runner looks at a holder with `ttl`: a tenth of it, between 0.2 s
/// and 2 s, with 20% jitter so waiting runners do not move in step.
fn poll_every(ttl: Option<Duration>) -> Duration {
    let base = ttl
        .map_or(Duration::from_secs(2), |t| t / 10)
        .clamp(Duration::from_millis(200), Duration::from_secs(2));
    base.mul_f64(0.9 + rand::random::<f64>() * 0.2)
}

/// A holder being watched: since when its generation stood still.
struct Watched {
    id: String,
    generation: Option<u64>,
    since: Instant,
}

/// Takes the scope's lease through `store`, waiting for another holder up to
/// `options.timeout` and breaking one that is not renewed for its TTL; then renews it in
/// the background.
pub async fn acquire_with<S: Store>(
    store: Arc<S>,
    scope: &Scope,
    options: &LeaseOptions,
    events: Events<'_>,
    cancelled: &(dyn Fn() -> bool + Sync),
) -> Result<Lease<S>, LeaseError> {
    let id = new_id();
    let user = Holder::me(options).encode();
    let started = Instant::now();
    let mut watched: Option<Watched> = None;
    let mut announced: Option<String> = None;
    let mut refused = 0;
    loop {
        let held = match store.read().await? {
            None => match store.take(&id, &user).await {
                Ok(()) => break,
                // Someone took it between the read and the write: look again.
                Err(e) if e.status() == Some(409) && refused < 20 => {
                    refused += 1;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
                Err(e) => return Err(e.into()),
            },
            // This run's own write went through although its answer was lost.
            Some(held) if held.id == id => break,
            Some(held) => held,
        };
        let now = Instant::now();
        let since = match watched {
            Some(w) if w.id == held.id && w.generation == held.generation => w.since,
            _ => now,
        };
        let unrenewed = now - since;
        if let Some(ttl) = held.ttl()
            && unrenewed >= ttl
        {
            match store.swap(&held, &id, &user).await {
                Ok(()) => {
                    events(&Event::Broke {
                        scope,
                        held: &held,
                        unrenewed,
                    });
                    break;
                }
                // It was renewed or released meanwhile: look again.
                Err(e) if e.status() == Some(409) => {
                    watched = None;
                    continue;
                }
                Err(e) => return Err(e.into()),
            }
        }
        let waited = now - started;
        if waited >= options.timeout {
            return Err(LeaseError::Held {
                scope: scope.clone(),
                held,
                waited,
            });
        }
        if cancelled() {
            return Err(LeaseError::Cancelled {
                scope: scope.clone(),
            });
        }
        if announced.as_deref() != Some(held.id.as_str()) {
            events(&Event::Waiting {
                scope,
                held: &held,
                timeout: options.timeout,
            });
            announced = Some(held.id.clone());
        }
        let mut pause = poll_every(held.ttl()).min(options.timeout - waited);
        if let Some(ttl) = held.ttl() {
            pause = pause.min(ttl - unrenewed);
        }
        watched = Some(Watched {
            id: held.id,
            generation: held.generation,
            since,
        });
        tokio::time::sleep(pause.max(Duration::from_millis(10))).await;
    }
    let Some(generation) = store.holds(&id).await? else {
        return Err(LeaseError::Lost {
            scope: scope.clone(),
            reason: "it was broken as soon as it was taken".into(),
        });
    };
    events(&Event::Taken { scope, id: &id });
    let lost = Arc::new(Mutex::new(None));
    let task = tokio::spawn(renew(
        store.clone(),
        id.clone(),
        user,
        generation,
        options.ttl.max(Duration::from_secs(1)),
        lost.clone(),
    ));
    Ok(Lease {
        id,
        scope: scope.clone(),
        store,
        lost,
        task: Some(task),
    })
}

/// Renews `id` every third of `ttl` until aborted; records why when the lease is lost:
/// its allocation is gone (broken), or no renewal succeeded for a whole TTL (another
/// runner may have broken it).
async fn renew<S: Store>(
    store: Arc<S>,
    id: String,
    user: String,
    mut generation: u64,
    ttl: Duration,
    lost: Arc<Mutex<Option<String>>>,
) {
    let every = ttl / 3;
    let retry = (ttl / 10).max(Duration::from_millis(50));
    let mut renewed = Instant::now();
    let mut wait = every;
    let lose = |why: String| *lost.lock().expect("never poisoned") = Some(why);
    loop {
        tokio::time::sleep(wait).await;
        // A renewal that cannot get through before the TTL ends is as good as none: a
        // waiting runner may break the lease by then, so give up on it at that moment
        // rather than when a stalled request finally times out.
        let attempt = async {
            match store.renew(&id, &user, generation).await {
                Ok(()) => Ok(()),
                Err(e) => Err((store.holds(&id).await, e)),
            }
        };
        let (holds, error) = match tokio::time::timeout_at(renewed + ttl, attempt).await {
            Ok(Ok(())) => {
                generation += 1;
                renewed = Instant::now();
                wait = every;
                continue;
            }
            Ok(Err(failed)) => failed,
            Err(_) => {
                lose(format!(
                    "no renewal got through within its TTL ({} s): Placement did not answer in time, so another runner may hold it now",
                    ttl.as_secs_f64()
                ));
                return;
            }
        };
        match holds {
            Ok(None) => {
                lose("its allocation is gone: someone broke it (`fpga-sync lock break`, or a runner that saw it unrenewed for its TTL)".into());
                return;
            }
            // Still held: an earlier write of this task went through although its answer
            // was lost, so the generation moved on. Renew from there.
            Ok(Some(g)) if error.status() == Some(409) => generation = g,
            _ => {}
        }
        if renewed.elapsed() >= ttl {
            lose(format!(
                "it could not be renewed for {} s (its TTL), so another runner may hold it now: {error}",
                ttl.as_secs_f64()
            ));
            return;
        }
        wait = retry.min(ttl.saturating_sub(renewed.elapsed()));
    }
}

/// Takes the scope's lease in Placement: makes its provider when missing (the resource
/// class, the root provider, its inventory of one), then as [`acquire_with`]. All of it
/// through a sibling session with its own request limit.
pub async fn acquire(
    session: &Session,
    scope: &Scope,
    options: &LeaseOptions,
    events: Events<'_>,
    cancelled: &(dyn Fn() -> bool + Sync),
) -> Result<Lease, Error> {
    let own = Arc::new(session.sibling(2).await);
    let placement = Placement::new(&own);
    placement.check_version_at(CONSUMER_MICROVERSION).await?;
    let provider = ensure_provider(&placement, scope).await?;
    let store = Arc::new(PlacementStore {
        session: own.clone(),
        provider,
    });
    Ok(acquire_with(store, scope, options, events, cancelled).await?)
}

/// Gives a lease back and tells how that went, and whether it was lost meanwhile.
pub async fn finish<S: Store>(lease: Lease<S>, events: Events<'_>) {
    let scope = lease.scope.clone();
    let lost = lease.lost.lock().expect("never poisoned").clone();
    match lease.release().await {
        Ok(Released::Released) => events(&Event::Released { scope: &scope }),
        Ok(Released::Gone) => {}
        Err(e) => events(&Event::ReleaseFailed {
            scope: &scope,
            error: &e,
        }),
    }
    if let Some(reason) = lost {
        events(&Event::Lost {
            scope: &scope,
            reason: &reason,
        });
    }
}

/// Runs `work` under the scope's lease: takes it (waiting as [`acquire`] does), runs,
/// and gives it back whatever `work` returned.
pub async fn with_lease<T>(
    session: &Session,
    scope: &Scope,
    options: &LeaseOptions,
    events: Events<'_>,
    cancelled: &(dyn Fn() -> bool + Sync),
    work: impl AsyncFnOnce(&Lease) -> Result<T, Error>,
) -> Result<T, Error> {
    let lease = acquire(session, scope, options, events, cancelled).await?;
    let result = work(&lease).await;
    finish(lease, events).await;
    result
}

/// What `lock break` broke.
#[derive(Debug)]
pub struct Broken {
    /// The lease as it was.
    pub held: Held,
    /// For a holder on this host: whether its process is still running.
    pub running_here: Option<bool>,
}

/// Breaks the scope's lease if `id` holds it (`lock break`), guarded by the generation
/// read: a holder that renews meanwhile is read again and broken again, at most a few
/// times.
pub async fn force_break(session: &Session, scope: &Scope, id: &str) -> Result<Broken, Error> {
    let placement = Placement::new(session);
    placement.check_version_at(CONSUMER_MICROVERSION).await?;
    let not_held = |current| LeaseError::NotHeld {
        scope: scope.clone(),
        id: id.to_owned(),
        current,
    };
    let Some(provider) = find_provider(&placement, scope).await? else {
        return Err(not_held(None).into());
    };
    let mut attempt = 0;
    loop {
        let held = read_holder(&placement, &provider).await?;
        let held = match held {
            Some(h) if h.id == id => h,
            other => return Err(not_held(other).into()),
        };
        let write = ConsumerWrite {
            allocations: BTreeMap::new(),
            consumer_generation: held.generation,
            project_id: PROJECT.into(),
            user_id: held.user.clone(),
            consumer_type: LEASE_CONSUMER_TYPE.into(),
        };
        match placement.set_consumer(id, &write).await {
            Ok(()) => {
                let running_here = held
                    .holder
                    .as_ref()
                    .filter(|h| h.host == hostname())
                    .map(|h| process_alive(h.pid));
                return Ok(Broken { held, running_here });
            }
            Err(e) if e.status() == Some(409) && attempt < 5 => attempt += 1,
            Err(e) => return Err(e.into()),
        }
    }
}

/// `lock status`: connects (Placement only) and reads who holds the scope's lease.
pub async fn show(
    os_cloud: Option<&str>,
    scope: &Scope,
    warn: impl Fn(&str),
) -> Result<LeaseStatus, Error> {
    let session = super::connect(os_cloud, super::Needs::Placement, warn).await?;
    Ok(status(&session, scope).await?)
}

/// `lock break ID`: connects (Placement only) and breaks the scope's lease if `id` holds
/// it.
pub async fn break_named(
    os_cloud: Option<&str>,
    scope: &Scope,
    id: &str,
    warn: impl Fn(&str),
) -> Result<Broken, Error> {
    let session = super::connect(os_cloud, super::Needs::Placement, warn).await?;
    force_break(&session, scope, id).await
}

/// The name of this host.
pub fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname NUL-terminates within it
    // or truncates, and we stop at the first NUL or the end.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "unknown".into();
    }
    let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// Whether a process with `pid` runs on this host (for `lock break`'s warning about a
/// holder on this host).
pub fn process_alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: signal 0 only checks that the process exists and may be signalled.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

#[cfg(test)]
mod tests {
    //! The lease's timing on tokio's paused clock, against a store with Placement's
    //! compare-and-swap semantics (the real Placement is exercised through the binary in
    //! `tests/it/lease.rs`).

    use super::*;
    use crate::cloud::error::Service;

    /// One unit, held by a consumer with a generation, as Placement keeps it.
    #[derive(Default)]
    struct Fake {
        state: Mutex<FakeState>,
    }

    #[derive(Default)]
    struct FakeState {
        holder: Option<(String, u64, String)>,
        renewals_fail: bool,
        renewals_hang: bool,
    }

    fn conflict() -> CloudError {
        CloudError::Status {
            service: Service::Placement,
            request: "PUT /allocations/x".into(),
            status: 409,
            message: "conflict".into(),
            request_id: None,
        }
    }

    impl Fake {
        fn held_by(holder: &Holder) -> Arc<Fake> {
            let fake = Fake::default();
            fake.state.lock().unwrap().holder = Some(("dead".into(), 7, holder.encode()));
            Arc::new(fake)
        }

        fn holder(&self) -> Option<(String, u64)> {
            let s = self.state.lock().unwrap();
            s.holder.as_ref().map(|(id, g, _)| (id.clone(), *g))
        }
    }

    impl Store for Fake {
        async fn read(&self) -> Result<Option<Held>, CloudError> {
            let s = self.state.lock().unwrap();
            Ok(s.holder.as_ref().map(|(id, g, user)| Held {
                id: id.clone(),
                generation: Some(*g),
                user: user.clone(),
                holder: Holder::decode(user),
            }))
        }

        async fn take(&self, id: &str, user: &str) -> Result<(), CloudError> {
            let mut s = self.state.lock().unwrap();
            if s.holder.is_some() {
                return Err(conflict());
            }
            s.holder = Some((id.into(), 1, user.into()));
            Ok(())
        }

        async fn swap(&self, old: &Held, id: &str, user: &str) -> Result<(), CloudError> {
            let mut s = self.state.lock().unwrap();
            match &s.holder {
                Some((i, g, _)) if *i == old.id && Some(*g) == old.generation => {
                    s.holder = Some((id.into(), 1, user.into()));
                    Ok(())
                }
                _ => Err(conflict()),
            }
        }

        async fn renew(&self, id: &str, _user: &str, generation: u64) -> Result<(), CloudError> {
            let hang = self.state.lock().unwrap().renewals_hang;
            if hang {
                std::future::pending::<()>().await;
            }
            let mut s = self.state.lock().unwrap();
            if s.renewals_fail {
                return Err(CloudError::Unreachable {
                    service: Service::Placement,
                    request: "PUT /allocations/x".into(),
                    reason: "connection refused".into(),
                });
            }
            match &mut s.holder {
                Some((i, g, _)) if i == id && *g == generation => {
                    *g += 1;
                    Ok(())
                }
                _ => Err(conflict()),
            }
        }

        async fn holds(&self, id: &str) -> Result<Option<u64>, CloudError> {
            let s = self.state.lock().unwrap();
            Ok(s.holder
                .as_ref()
                .filter(|(i, _, _)| i == id)
                .map(|(_, g, _)| *g))
        }

        async fn remove(&self, id: &str) -> Result<bool, CloudError> {
            let mut s = self.state.lock().unwrap();
            if s.holder.as_ref().is_some_and(|(i, _, _)| i == id) {
                s.holder = None;
                return Ok(true);
            }
            Ok(false)
        }
    }

    fn options(timeout: u64) -> LeaseOptions {
        LeaseOptions {
            timeout: Duration::from_secs(timeout),
            ..LeaseOptions::new("apply")
        }
    }

    fn site() -> Scope {
        Scope::Site("s".into())
    }

    fn other_holder() -> Holder {
        Holder {
            format: 1,
            host: "ci-7".into(),
            pid: 4242,
            op: "apply".into(),
            commit: Some("137a6a8c0ffee".into()),
            since: 1_700_000_000,
            ttl: 120,
        }
    }

    /// Collects event messages.
    #[derive(Default)]
    struct Told(Mutex<Vec<String>>);

    impl Told {
        fn lines(&self) -> Vec<String> {
            self.0.lock().unwrap().clone()
        }
    }

    async fn take(
        store: &Arc<Fake>,
        timeout: u64,
        told: &Told,
    ) -> (Result<Lease<Fake>, LeaseError>, Duration) {
        let start = Instant::now();
        let events = |e: &Event<'_>| told.0.lock().unwrap().push(e.message());
        let got = acquire_with(store.clone(), &site(), &options(timeout), &events, &|| {
            false
        })
        .await;
        (got, start.elapsed())
    }

    #[tokio::test(start_paused = true)]
    async fn a_free_lease_is_taken_at_once_and_renewed_every_third_of_its_ttl() {
        let store = Arc::new(Fake::default());
        let told = Told::default();
        let (lease, took) = take(&store, 300, &told).await;
        let lease = lease.unwrap();
        assert_eq!(took, Duration::ZERO);
        assert_eq!(store.holder(), Some((lease.id().to_owned(), 1)));
        // Renewals at 40, 80, 120 and 160 s.
        tokio::time::sleep(Duration::from_secs(170)).await;
        assert_eq!(store.holder(), Some((lease.id().to_owned(), 5)));
        assert_eq!(lease.lost(), None);
        assert_eq!(lease.release().await.unwrap(), Released::Released);
        assert_eq!(store.holder(), None);
        assert_eq!(told.lines().len(), 1, "{:?}", told.lines());
    }

    #[tokio::test(start_paused = true)]
    async fn a_holder_that_stopped_renewing_is_broken_after_its_ttl_not_before() {
        let store = Fake::held_by(&other_holder());
        let told = Told::default();
        let (lease, took) = take(&store, 600, &told).await;
        let lease = lease.unwrap();
        assert!(took >= Duration::from_secs(120), "{took:?}");
        assert!(took < Duration::from_secs(123), "{took:?}");
        assert_eq!(store.holder(), Some((lease.id().to_owned(), 1)));
        let lines = told.lines();
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert!(
            lines[0].starts_with("waiting up to 600 s (`--lock-timeout`) for the lease of site `s`, held by host `ci-7`, pid 4242, `apply`, commit 137a6a8c0ffe, since 2023-11-14T22:13:20Z (lease dead)"),
            "{lines:?}"
        );
        assert!(
            lines[1].starts_with("broke the lease of site `s`: not renewed for 120."),
            "{lines:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_live_holder_is_never_broken_and_the_waiter_fails_naming_it() {
        let store = Arc::new(Fake::default());
        let told = Told::default();
        let (first, _) = take(&store, 300, &told).await;
        let first = first.unwrap();
        let (second, waited) = take(&store, 300, &told).await;
        let Err(LeaseError::Held { held, .. }) = second else {
            panic!("the second run got the lease")
        };
        assert_eq!(waited, Duration::from_secs(300));
        assert_eq!(held.id, first.id());
        assert_eq!(held.holder.unwrap().pid, std::process::id());
        assert_eq!(first.lost(), None);
        assert_eq!(store.holder().unwrap().0, first.id());
    }

    #[tokio::test(start_paused = true)]
    async fn a_timeout_of_zero_fails_at_once_naming_the_holder() {
        let store = Fake::held_by(&other_holder());
        let told = Told::default();
        let (got, waited) = take(&store, 0, &told).await;
        let Err(e @ LeaseError::Held { .. }) = got else {
            panic!("not refused")
        };
        assert_eq!(waited, Duration::ZERO);
        assert!(e.to_string().contains("pid 4242"), "{e}");
        let help = e.diagnostic().help.unwrap();
        assert!(
            help.contains("fpga-sync lock break dead --site s"),
            "{help}"
        );
        assert!(told.lines().is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_released_lease_is_taken_by_the_waiting_run_within_its_poll() {
        let store = Arc::new(Fake::default());
        let told = Told::default();
        let (first, _) = take(&store, 300, &told).await;
        let first = first.unwrap();
        let releaser = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(10)).await;
            first.release().await.unwrap()
        });
        let (second, waited) = take(&store, 300, &told).await;
        assert_eq!(releaser.await.unwrap(), Released::Released);
        let second = second.unwrap();
        assert!(waited >= Duration::from_secs(10), "{waited:?}");
        assert!(waited <= Duration::from_millis(12_200), "{waited:?}");
        assert_eq!(store.holder(), Some((second.id().to_owned(), 1)));
    }

    #[tokio::test(start_paused = true)]
    async fn a_broken_lease_is_lost_by_its_next_renewal() {
        let store = Arc::new(Fake::default());
        let told = Told::default();
        let (lease, _) = take(&store, 300, &told).await;
        let lease = lease.unwrap();
        tokio::time::sleep(Duration::from_secs(50)).await;
        store.state.lock().unwrap().holder = None;
        tokio::time::sleep(Duration::from_secs(29)).await;
        assert_eq!(lease.lost(), None, "not before its next renewal (80 s)");
        tokio::time::sleep(Duration::from_secs(2)).await;
        let lost = lease.lost().expect("lost");
        assert!(lost.contains("its allocation is gone"), "{lost}");
        assert_eq!(lease.release().await.unwrap(), Released::Gone);
    }

    #[tokio::test(start_paused = true)]
    async fn renewals_failing_for_a_whole_ttl_lose_the_lease() {
        let store = Arc::new(Fake::default());
        let told = Told::default();
        let (lease, _) = take(&store, 300, &told).await;
        let lease = lease.unwrap();
        store.state.lock().unwrap().renewals_fail = true;
        tokio::time::sleep(Duration::from_secs(110)).await;
        assert_eq!(lease.lost(), None);
        tokio::time::sleep(Duration::from_secs(20)).await;
        let lost = lease.lost().expect("lost");
        assert!(lost.contains("could not be renewed for 120 s"), "{lost}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_renewal_stalled_past_the_ttl_loses_the_lease_at_the_ttl() {
        let store = Arc::new(Fake::default());
        let told = Told::default();
        let (lease, _) = take(&store, 300, &told).await;
        let lease = lease.unwrap();
        // Renewed at 40 s; the next, at 80 s, stalls (a half-open connection).
        tokio::time::sleep(Duration::from_secs(50)).await;
        store.state.lock().unwrap().renewals_hang = true;
        tokio::time::sleep(Duration::from_secs(109)).await;
        assert_eq!(lease.lost(), None, "not before 40 + 120 s");
        tokio::time::sleep(Duration::from_secs(2)).await;
        let lost = lease.lost().expect("lost at the TTL");
        assert!(
            lost.contains("no renewal got through within its TTL"),
            "{lost}"
        );
    }

    #[test]
    fn the_holder_record_fits_placement_and_reads_back() {
        let mut h = other_holder();
        let text = h.encode();
        assert_eq!(
            text,
            r#"{"fpga-sync":1,"host":"ci-7","pid":4242,"op":"apply","commit":"137a6a8c0ffee","since":1700000000,"ttl":120}"#
        );
        assert_eq!(Holder::decode(&text), Some(h.clone()));
        h.host = "h".repeat(400);
        let long = h.encode();
        assert!(long.len() <= 255, "{}", long.len());
        assert!(Holder::decode(&long).unwrap().host.starts_with("hhh"));
        assert_eq!(Holder::decode("nova-user"), None);
        assert_eq!(Holder::decode(r#"{"host":"x"}"#), None);
    }

    #[test]
    fn provider_names_say_the_scope_and_fit_placement() {
        assert_eq!(site().provider_name(), "fpga-sync-lock:site:s");
        assert_eq!(
            Scope::Host("compute-a01".into()).provider_name(),
            "fpga-sync-lock:host:compute-a01"
        );
        let long = Scope::Site("é".repeat(150)).provider_name();
        assert!(long.len() <= 200, "{}", long.len());
        assert!(long.starts_with("fpga-sync-lock:site:é"));
        assert_ne!(long, Scope::Site("é".repeat(151)).provider_name());
    }
}
