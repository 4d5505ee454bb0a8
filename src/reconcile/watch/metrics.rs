//! What `watch` tells monitoring: Prometheus metrics (OpenMetrics text, `prometheus-client`)
//! and a health check, served over HTTP on `--metrics-address` (127.0.0.1 by default).
//! `GET /metrics` gives the metrics, `GET /healthz` 200 when the last pass succeeded and is
//! recent, 503 with the reason otherwise. I/O: the listening socket (hyper), the clock.
//!
//! | metric | type | what |
//! |---|---|---|
//! | `fpga_sync_passes_total{result}` | counter | passes, `ok` or `failed` (as a whole) |
//! | `fpga_sync_programs_total{result}` | counter | slots programmed, `verified` or `failed` |
//! | `fpga_sync_slot_failures_total` | counter | slots that ended a pass failed |
//! | `fpga_sync_drift_repairs_total` | counter | slots programmed and verified again with the bitstream they were verified with (a card that lost it) |
//! | `fpga_sync_slots{state}` | gauge | slots by state after the last pass |
//! | `fpga_sync_last_success_timestamp_seconds` | gauge | when the last pass that did not fail ended |
//! | `fpga_sync_behind_head_seconds` | gauge | how long this host has not had every slot verified on the repository's head: since it first saw the head, or since a slot stopped being verified (0: converged) |
//! | `fpga_sync_rollout_units_held` | gauge | units of rollout budgets this host holds |
//! | `fpga_sync_rollout_halted{group}` | gauge | 1 while this host's rollout of the group is halted on failures |
//! | `fpga_sync_rollout_waiting{group}` | gauge | 1 while this host waits for its turn in the group's rollout |
//! | `fpga_sync_cloud_requests_total` | counter | HTTP requests sent to the cloud |

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::host::status::{HostStatus, SlotState};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabel {
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GroupLabel {
    group: String,
}

/// What the health check and the time-based gauges are computed from.
#[derive(Debug, Default)]
struct Health {
    /// When the last pass ended, and its error if it failed as a whole.
    last: Option<(SystemTime, Option<String>)>,
    /// When the head the agent has not converged on was first seen; `None` when converged.
    behind_since: Option<SystemTime>,
    /// The head last seen.
    head: Option<String>,
}

/// The agent's metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    passes: Family<ResultLabel, Counter>,
    programs: Family<ResultLabel, Counter>,
    failures: Counter,
    drift_repairs: Counter,
    slots: Family<StateLabel, Gauge>,
    last_success: Gauge<f64, AtomicU64>,
    behind_head: Gauge<f64, AtomicU64>,
    units_held: Gauge,
    halted: Family<GroupLabel, Gauge>,
    waiting: Family<GroupLabel, Gauge>,
    cloud_requests: Counter,
    requests_seen: AtomicU64,
    health: Mutex<Health>,
    /// A pass older than this makes the agent unhealthy.
    stale_after: Duration,
}

const STATES: [(SlotState, &str); 6] = [
    (SlotState::Verified, "verified"),
    (SlotState::Pending, "pending"),
    (SlotState::Blocked, "blocked"),
    (SlotState::Failed, "failed"),
    (SlotState::Manual, "manual"),
    (SlotState::Waiting, "waiting"),
];

impl Metrics {
    /// Empty metrics; the agent is unhealthy when no pass ended within `stale_after`.
    pub fn new(stale_after: Duration) -> Metrics {
        let mut registry = Registry::with_prefix("fpga_sync");
        let m = Metrics {
            passes: Family::default(),
            programs: Family::default(),
            failures: Counter::default(),
            drift_repairs: Counter::default(),
            slots: Family::default(),
            last_success: Gauge::default(),
            behind_head: Gauge::default(),
            units_held: Gauge::default(),
            halted: Family::default(),
            waiting: Family::default(),
            cloud_requests: Counter::default(),
            requests_seen: AtomicU64::new(0),
            health: Mutex::new(Health::default()),
            stale_after,
            registry: Registry::default(),
        };
        registry.register(
            "passes",
            "Passes, by result (a pass that failed as a whole: failed)",
            m.passes.clone(),
        );
        registry.register(
            "programs",
            "Slots programmed, by result of the read-back and report",
            m.programs.clone(),
        );
        registry.register(
            "slot_failures",
            "Slots that ended a pass failed",
            m.failures.clone(),
        );
        registry.register(
            "drift_repairs",
            "Slots programmed again with the bitstream they were verified with",
            m.drift_repairs.clone(),
        );
        registry.register(
            "slots",
            "Slots by state after the last pass",
            m.slots.clone(),
        );
        registry.register(
            "last_success_timestamp_seconds",
            "When the last pass that did not fail ended (Unix time)",
            m.last_success.clone(),
        );
        registry.register(
            "behind_head_seconds",
            "How long the repository's head has been seen without every slot verified on it",
            m.behind_head.clone(),
        );
        registry.register(
            "rollout_units_held",
            "Units of rollout budgets this host holds",
            m.units_held.clone(),
        );
        registry.register(
            "rollout_halted",
            "1 while this host's rollout of the group is halted on failures",
            m.halted.clone(),
        );
        registry.register(
            "rollout_waiting",
            "1 while this host waits for its turn in the group's rollout",
            m.waiting.clone(),
        );
        registry.register(
            "cloud_requests",
            "HTTP requests sent to the cloud",
            m.cloud_requests.clone(),
        );
        for (_, name) in STATES {
            m.slots
                .get_or_create(&StateLabel { state: name.into() })
                .set(0);
        }
        for result in ["ok", "failed"] {
            m.passes
                .get_or_create(&ResultLabel {
                    result: result.into(),
                })
                .inc_by(0);
        }
        for result in ["verified", "failed"] {
            m.programs
                .get_or_create(&ResultLabel {
                    result: result.into(),
                })
                .inc_by(0);
        }
        Metrics { registry, ..m }
    }

    /// Records a pass that ran: its slots, what it programmed (a slot programmed and
    /// verified with the bitstream `previous` had verified there is a drift repair),
    /// whether it failed as a whole, and whether every slot is verified on `head`.
    pub fn record_pass(
        &self,
        status: &HostStatus,
        previous: Option<&HostStatus>,
        head: Option<&str>,
    ) {
        let now = SystemTime::now();
        let ok = status.error.is_none();
        let result = if ok { "ok" } else { "failed" };
        self.passes
            .get_or_create(&ResultLabel {
                result: result.into(),
            })
            .inc();
        for (state, name) in STATES {
            let n = status.slots.iter().filter(|s| s.state == state).count();
            self.slots
                .get_or_create(&StateLabel { state: name.into() })
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
        for s in &status.slots {
            if s.state == SlotState::Failed {
                self.failures.inc();
            }
            if !s.programmed {
                continue;
            }
            let result = if s.state == SlotState::Verified {
                "verified"
            } else {
                "failed"
            };
            self.programs
                .get_or_create(&ResultLabel {
                    result: result.into(),
                })
                .inc();
            let was_verified = previous.is_some_and(|p| {
                p.slots.iter().any(|o| {
                    o.slot == s.slot && o.state == SlotState::Verified && o.bitstream == s.bitstream
                })
            });
            if was_verified && s.state == SlotState::Verified {
                self.drift_repairs.inc();
            }
        }
        let converged = ok
            && status
                .slots
                .iter()
                .all(|s| matches!(s.state, SlotState::Verified | SlotState::Manual));
        let mut health = self.lock();
        if ok {
            self.last_success.set(unix(now));
        }
        self.note_head(&mut health, head, now);
        if converged {
            health.behind_since = None;
        } else if health.behind_since.is_none() {
            health.behind_since = Some(now);
        }
        health.last = Some((now, status.error.clone()));
    }

    /// Records a pass that failed as a whole (the repository or the cloud could not be
    /// read).
    pub fn record_failure(&self, error: &str, head: Option<&str>) {
        let now = SystemTime::now();
        self.passes
            .get_or_create(&ResultLabel {
                result: "failed".into(),
            })
            .inc();
        let mut health = self.lock();
        self.note_head(&mut health, head, now);
        health.last = Some((now, Some(error.to_owned())));
    }

    /// A head not seen before: behind it from now until every slot is verified on it.
    fn note_head(&self, health: &mut Health, head: Option<&str>, now: SystemTime) {
        let Some(head) = head else { return };
        if health.head.as_deref() != Some(head) {
            health.head = Some(head.to_owned());
            health.behind_since = Some(now);
        }
    }

    /// Records the rollouts: units held, and the groups whose rollout holds this host back
    /// (`halted`: on failures).
    pub fn record_rollouts(
        &self,
        units: usize,
        waiting: &BTreeSet<String>,
        halted: &BTreeSet<String>,
    ) {
        self.units_held
            .set(i64::try_from(units).unwrap_or(i64::MAX));
        // Groups that no longer wait disappear from the series.
        self.halted.clear();
        self.waiting.clear();
        for g in waiting {
            self.waiting
                .get_or_create(&GroupLabel { group: g.clone() })
                .set(1);
        }
        for g in halted {
            self.halted
                .get_or_create(&GroupLabel { group: g.clone() })
                .set(1);
        }
    }

    /// Adds the cloud requests a session has sent since the last call (`total`: its count).
    pub fn record_requests(&self, total: u64) {
        let before = self
            .requests_seen
            .swap(total, std::sync::atomic::Ordering::Relaxed);
        self.cloud_requests.inc_by(total.saturating_sub(before));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Health> {
        self.health
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The metrics in OpenMetrics text.
    pub fn encode(&self) -> String {
        let since = self.lock().behind_since;
        let behind = since.map_or(0.0, |t| {
            SystemTime::now()
                .duration_since(t)
                .unwrap_or_default()
                .as_secs_f64()
        });
        self.behind_head.set(behind);
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }

    /// Whether the agent is healthy, and why (not).
    pub fn health(&self) -> (bool, String) {
        let health = self.lock();
        match &health.last {
            None => (false, "no pass has ended yet".to_owned()),
            Some((at, _))
                if SystemTime::now().duration_since(*at).unwrap_or_default() > self.stale_after =>
            {
                (
                    false,
                    format!(
                        "the last pass ended {} s ago (more than {} s)",
                        SystemTime::now()
                            .duration_since(*at)
                            .unwrap_or_default()
                            .as_secs(),
                        self.stale_after.as_secs()
                    ),
                )
            }
            Some((_, Some(e))) => (false, format!("the last pass failed: {e}")),
            Some((_, None)) => (true, "ok".to_owned()),
        }
    }
}

fn unix(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

/// Serves `metrics` on `address` until the task is aborted; returns the address bound
/// (port 0 picks one) and the task.
pub async fn serve(
    address: SocketAddr,
    metrics: Arc<Metrics>,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(address).await?;
    let bound = listener.local_addr()?;
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let metrics = metrics.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request: Request<hyper::body::Incoming>| {
                    let metrics = metrics.clone();
                    async move { Ok::<_, std::convert::Infallible>(answer(&metrics, &request)) }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok((bound, task))
}

fn answer<B>(metrics: &Metrics, request: &Request<B>) -> Response<Full<Bytes>> {
    let (status, content_type, body) = match (request.method(), request.uri().path()) {
        (&hyper::Method::GET, "/metrics") => (
            StatusCode::OK,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            metrics.encode(),
        ),
        (&hyper::Method::GET, "/healthz") => {
            let (ok, why) = metrics.health();
            let status = if ok {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            (status, "text/plain; charset=utf-8", format!("{why}\n"))
        }
        _ => (
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            "not found: GET /metrics or /healthz\n".to_owned(),
        ),
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    if let Ok(v) = hyper::header::HeaderValue::from_str(content_type) {
        response
            .headers_mut()
            .insert(hyper::header::CONTENT_TYPE, v);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::driver::Slot;
    use crate::host::status::SlotStatus;

    fn status(state: SlotState, programmed: bool, bitstream: &str) -> HostStatus {
        HostStatus {
            host: "h".into(),
            commit: Some("c1".into()),
            finished_at: 0,
            error: None,
            slots: vec![SlotStatus {
                slot: Slot::region("0000:5e:00.0", "0"),
                bitstream: Some(bitstream.into()),
                state,
                message: String::new(),
                provider: None,
                programmed,
                failures: 0,
            }],
            removals: Vec::new(),
        }
    }

    fn value(text: &str, series: &str) -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {series} in:\n{text}"))
    }

    #[test]
    fn passes_programs_failures_and_drift_repairs_are_counted() {
        let m = Metrics::new(Duration::from_secs(60));
        assert!(!m.health().0);
        let first = status(SlotState::Verified, true, "a");
        m.record_pass(&first, None, Some("c1"));
        let again = status(SlotState::Verified, true, "a");
        m.record_pass(&again, Some(&first), Some("c1"));
        let failed = status(SlotState::Failed, true, "b");
        m.record_pass(&failed, Some(&again), Some("c2"));
        let text = m.encode();
        assert_eq!(value(&text, "fpga_sync_passes_total{result=\"ok\"}"), 3.0);
        assert_eq!(
            value(&text, "fpga_sync_programs_total{result=\"verified\"}"),
            2.0
        );
        assert_eq!(
            value(&text, "fpga_sync_programs_total{result=\"failed\"}"),
            1.0
        );
        assert_eq!(value(&text, "fpga_sync_slot_failures_total"), 1.0);
        assert_eq!(value(&text, "fpga_sync_drift_repairs_total"), 1.0);
        assert_eq!(value(&text, "fpga_sync_slots{state=\"failed\"}"), 1.0);
        assert!(value(&text, "fpga_sync_behind_head_seconds") >= 0.0);
        assert!(m.health().0);
        m.record_failure("Placement is down", Some("c2"));
        assert_eq!(
            m.health(),
            (false, "the last pass failed: Placement is down".to_owned())
        );
        m.record_rollouts(
            1,
            &BTreeSet::from(["g".to_owned()]),
            &BTreeSet::from(["g".to_owned()]),
        );
        let text = m.encode();
        assert_eq!(value(&text, "fpga_sync_rollout_units_held"), 1.0);
        assert_eq!(value(&text, "fpga_sync_rollout_halted{group=\"g\"}"), 1.0);
    }
}
