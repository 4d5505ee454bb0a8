//! Per-slot backoff of the watch service: a slot that failed (or was refused) on its
//! `n`-th consecutive attempt is not programmed again until `min(max, base · 2^(n-1))`
//! later; a change of the repository lifts every backoff; a restarted service picks the
//! counts up from its status file. Pure: the wall clock is an argument (the status file
//! shows the times).

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use super::schedule::backoff_delay;
use super::status::BackoffEntry;
use crate::host::driver::Slot;
use crate::host::status::{HostStatus, SlotState};

/// A time for people: RFC 3339, UTC, whole seconds.
pub fn format_time(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

/// Per-slot exponential backoff.
#[derive(Clone, Debug, Default)]
pub struct Backoff {
    slots: BTreeMap<Slot, (u32, SystemTime)>,
}

impl Backoff {
    /// Picks up the failure counts of an earlier run's status, so a restarted service
    /// does not hammer a failing device.
    pub fn from_status(status: &HostStatus, base: Duration, max: Duration) -> Backoff {
        let finished = SystemTime::UNIX_EPOCH + Duration::from_secs(status.finished_at);
        let slots = status
            .slots
            .iter()
            .filter(|s| s.failures > 0 && matches!(s.state, SlotState::Failed | SlotState::Blocked))
            .map(|s| {
                (
                    s.slot.clone(),
                    (s.failures, finished + backoff_delay(base, max, s.failures)),
                )
            })
            .collect();
        Backoff { slots }
    }

    /// The slots not to program at `now`, with the reason the status shows.
    pub fn deferred(&self, now: SystemTime) -> BTreeMap<Slot, String> {
        self.slots
            .iter()
            .filter(|(_, (_, until))| *until > now)
            .map(|(slot, (n, until))| {
                let failures = if *n == 1 { "failure" } else { "failures" };
                (
                    slot.clone(),
                    format!(
                        "backing off after {n} {failures}; next attempt at {}",
                        format_time(*until)
                    ),
                )
            })
            .collect()
    }

    /// Records a pass: a slot that was tried and failed (or was refused) backs off
    /// longer; one that is fine (or gone) no longer backs off; a deferred one keeps its
    /// time.
    pub fn record(
        &mut self,
        status: &HostStatus,
        deferred: &BTreeMap<Slot, String>,
        now: SystemTime,
        base: Duration,
        max: Duration,
    ) {
        let mut next = BTreeMap::new();
        for s in &status.slots {
            let failing = matches!(s.state, SlotState::Failed | SlotState::Blocked);
            if !failing {
                continue;
            }
            let before = self.slots.get(&s.slot).copied();
            if deferred.contains_key(&s.slot) {
                if let Some(entry) = before {
                    next.insert(s.slot.clone(), entry);
                }
                continue;
            }
            let n = before.map_or(0, |(n, _)| n) + 1;
            next.insert(s.slot.clone(), (n, now + backoff_delay(base, max, n)));
        }
        self.slots = next;
    }

    /// Forgets every backoff (the repository changed: the operator may have fixed it).
    pub fn clear(&mut self) {
        self.slots.clear();
    }

    /// When the earliest backoff ends.
    pub fn next_end(&self) -> Option<SystemTime> {
        self.slots.values().map(|(_, until)| *until).min()
    }

    /// The entries, for the status file.
    pub fn entries(&self) -> Vec<BackoffEntry> {
        self.slots
            .iter()
            .map(|(slot, (n, until))| BackoffEntry {
                slot: slot.clone(),
                attempts: *n,
                next_attempt_at: until
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs()),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::report::status::SlotStatus;

    fn status(state: SlotState) -> HostStatus {
        HostStatus {
            host: "h".into(),
            commit: None,
            finished_at: 1_000,
            error: None,
            slots: vec![SlotStatus {
                slot: Slot::region("0000:5e:00.0", "0"),
                bitstream: Some("b".into()),
                state,
                message: String::new(),
                provider: None,
                programmed: false,
                failures: 3,
            }],
            removals: Vec::new(),
        }
    }

    #[test]
    fn times_are_rfc3339_utc() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(format_time(t), "2023-11-14T22:13:20Z");
        assert_eq!(format_time(SystemTime::UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let leap = SystemTime::UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(format_time(leap), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn a_failing_slot_backs_off_longer_and_a_deferred_one_keeps_its_time() {
        let (base, max) = (Duration::from_secs(10), Duration::from_secs(60));
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let slot = Slot::region("0000:5e:00.0", "0");
        let mut b = Backoff::default();
        b.record(&status(SlotState::Failed), &BTreeMap::new(), t0, base, max);
        assert_eq!(b.entries()[0].attempts, 1);
        assert_eq!(b.next_end(), Some(t0 + base));
        let deferred = b.deferred(t0 + Duration::from_secs(5));
        assert_eq!(
            deferred[&slot],
            "backing off after 1 failure; next attempt at 1970-01-12T13:46:50Z"
        );
        // A pass while it is deferred: Blocked by the deferral, the time stays.
        b.record(
            &status(SlotState::Blocked),
            &deferred,
            t0 + Duration::from_secs(5),
            base,
            max,
        );
        assert_eq!(b.entries()[0].attempts, 1);
        assert_eq!(b.next_end(), Some(t0 + base));
        assert!(b.deferred(t0 + base).is_empty(), "ends on time");
        // Tried again and failed: twice as long.
        let t1 = t0 + base;
        b.record(&status(SlotState::Failed), &BTreeMap::new(), t1, base, max);
        assert_eq!(b.entries()[0].attempts, 2);
        assert_eq!(b.next_end(), Some(t1 + 2 * base));
        // Fixed: no more backoff.
        b.record(
            &status(SlotState::Verified),
            &BTreeMap::new(),
            t1,
            base,
            max,
        );
        assert!(b.entries().is_empty());
        // A restart picks the count up from the status file.
        let b = Backoff::from_status(&status(SlotState::Failed), base, max);
        assert_eq!(b.entries()[0].attempts, 3);
        assert_eq!(b.entries()[0].next_attempt_at, 1_000 + 40);
    }
}
