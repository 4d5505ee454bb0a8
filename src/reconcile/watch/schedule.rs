//! When the watch service runs its next pass, as kube-rs's controller decides its requeue:
//! a pure function of the timers, the pass that just ended and its outcome. Pure: no I/O;
//! the clock is an argument.
//!
//! | last outcome | next run |
//! |---|---|
//! | a pass ran (whatever its slots did) | the verify timer (`verify_every`), a slot's backoff end |
//! | nothing changed (a poll or notification with the same commit) | the timers as they were |
//! | the pass failed, transiently (a service down) | a retry after `min(max, base · 2^(n-1))` |
//! | the pass failed permanently (bad desired state, a backend that cannot run) | no retry: the next change of the repository, or the resync timer |
//! | the agent's own configuration is wrong (unknown cloud, refused credentials, an unknown SSH host key) | none: the service exits non-zero, so its manager restarts it with backoff and shows it failed |

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

/// Why a pass ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Trigger {
    /// The first pass.
    Startup,
    /// A local checkout changed (file-system notification).
    Repository,
    /// A remote was polled and its commit moved.
    Poll,
    /// The periodic read-back of the cards.
    Verify,
    /// The periodic full pass.
    Resync,
    /// The retry of a pass that failed as a whole.
    Retry,
    /// A failing slot's backoff ended.
    Backoff,
}

impl Trigger {
    /// Its name in logs and the status file.
    pub fn name(self) -> &'static str {
        match self {
            Trigger::Startup => "startup",
            Trigger::Repository => "repository",
            Trigger::Poll => "poll",
            Trigger::Verify => "verify",
            Trigger::Resync => "resync",
            Trigger::Retry => "retry",
            Trigger::Backoff => "backoff",
        }
    }

    /// Whether it reads the repository again.
    pub fn rereads(self) -> bool {
        matches!(
            self,
            Trigger::Startup
                | Trigger::Repository
                | Trigger::Poll
                | Trigger::Resync
                | Trigger::Retry
        )
    }

    /// Whether it only checks for a repository change (no pass when nothing moved).
    pub fn change_only(self) -> bool {
        matches!(self, Trigger::Repository | Trigger::Poll)
    }
}

/// How a pass ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing changed; no pass ran.
    Unchanged,
    /// A pass ran; slots that failed back off on their own (`backoff_end`: the earliest
    /// end of a slot's backoff).
    Ran {
        /// When the earliest slot backoff ends.
        backoff_end: Option<Instant>,
    },
    /// The pass failed as a whole.
    Failed {
        /// Whether trying again without any change may help.
        transient: bool,
    },
    /// The agent's own configuration is wrong (its cloud, its credentials, its SSH trust):
    /// neither waiting nor a commit helps, so the service stops.
    Fatal,
}

/// The intervals the service keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    /// How often a remote is fetched; `None` when a local checkout is watched.
    pub poll: Option<Duration>,
    /// How often the cards are read back.
    pub verify_every: Duration,
    /// How often the repository is read again regardless.
    pub resync_every: Duration,
    /// The first backoff step.
    pub backoff_base: Duration,
    /// The longest backoff.
    pub max_backoff: Duration,
}

/// The service's timers: when each kind of pass is due.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Schedule {
    /// The next read-back of the cards.
    pub verify: Instant,
    /// The next full pass.
    pub resync: Instant,
    /// The next fetch of a remote.
    pub poll: Option<Instant>,
    /// The retry of a failed pass.
    pub retry: Option<Instant>,
    /// The earliest end of a slot's backoff.
    pub backoff: Option<Instant>,
    /// Consecutive passes that failed as a whole.
    pub errors: u32,
}

pub use crate::backoff::exponential as backoff_delay;

impl Schedule {
    /// The timers of a service started at `now`; `poll_delay` is the first poll's delay
    /// (with its jitter).
    pub fn start(timing: &Timing, now: Instant, poll_delay: Option<Duration>) -> Schedule {
        Schedule {
            verify: now + timing.verify_every,
            resync: now + timing.resync_every,
            poll: poll_delay.map(|d| now + d),
            retry: None,
            backoff: None,
            errors: 0,
        }
    }

    /// The timer that fires first, and the pass it triggers. A failed pass retries on its
    /// own timer: slot backoffs end into a working loop only.
    pub fn next(&self) -> (Instant, Trigger) {
        let mut next = (self.verify, Trigger::Verify);
        let mut consider = |at: Option<Instant>, t: Trigger| {
            if let Some(at) = at
                && at < next.0
            {
                next = (at, t);
            }
        };
        consider(Some(self.resync), Trigger::Resync);
        consider(self.poll, Trigger::Poll);
        consider(self.retry, Trigger::Retry);
        if self.retry.is_none() {
            consider(self.backoff, Trigger::Backoff);
        }
        next
    }
}

/// The timers after `trigger` ended with `outcome` at `now`. `poll_delay` is the next
/// poll's delay (with its jitter), used when the trigger was a poll.
pub fn next_run(
    schedule: &Schedule,
    trigger: Trigger,
    outcome: &Outcome,
    now: Instant,
    timing: &Timing,
    poll_delay: Option<Duration>,
) -> Schedule {
    let mut next = schedule.clone();
    if trigger == Trigger::Poll {
        next.poll = poll_delay.map(|d| now + d);
    }
    match outcome {
        Outcome::Unchanged => {}
        Outcome::Ran { backoff_end } => {
            next.errors = 0;
            next.retry = None;
            next.backoff = *backoff_end;
            next.verify = now + timing.verify_every;
            if trigger.rereads() {
                next.resync = now + timing.resync_every;
            }
        }
        Outcome::Fatal => {}
        Outcome::Failed { transient } => {
            next.errors = schedule.errors + 1;
            next.verify = now + timing.verify_every;
            next.retry = transient
                .then(|| now + backoff_delay(timing.backoff_base, timing.max_backoff, next.errors));
            if trigger.rereads() {
                next.resync = now + timing.resync_every;
            }
        }
    }
    next
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timing() -> Timing {
        Timing {
            poll: None,
            verify_every: Duration::from_secs(60),
            resync_every: Duration::from_secs(600),
            backoff_base: Duration::from_secs(10),
            max_backoff: Duration::from_secs(300),
        }
    }

    #[test]
    fn transient_failures_retry_later_and_later_and_a_good_pass_resets() {
        let t = Timing {
            verify_every: Duration::from_secs(1000),
            resync_every: Duration::from_secs(5000),
            ..timing()
        };
        let t0 = Instant::now();
        let mut s = Schedule::start(&t, t0, None);
        let mut retries = Vec::new();
        let mut now = t0;
        for _ in 0..4 {
            s = next_run(
                &s,
                Trigger::Retry,
                &Outcome::Failed { transient: true },
                now,
                &t,
                None,
            );
            let (at, trigger) = s.next();
            assert_eq!(trigger, Trigger::Retry);
            retries.push((at - now).as_secs());
            now = at;
        }
        assert_eq!(retries, [10, 20, 40, 80]);
        s = next_run(
            &s,
            Trigger::Retry,
            &Outcome::Ran { backoff_end: None },
            now,
            &t,
            None,
        );
        assert_eq!((s.errors, s.retry), (0, None));
        assert_eq!(s.next(), (now + t.verify_every, Trigger::Verify));
    }

    #[test]
    fn a_permanent_failure_waits_for_a_change_instead_of_retrying() {
        let t = timing();
        let t0 = Instant::now();
        let s = Schedule::start(&t, t0, None);
        let s = next_run(
            &s,
            Trigger::Startup,
            &Outcome::Failed { transient: false },
            t0,
            &t,
            None,
        );
        assert_eq!(s.retry, None);
        assert_eq!(s.errors, 1);
        // Only the read-back timer is due: no hammering.
        assert_eq!(s.next(), (t0 + t.verify_every, Trigger::Verify));
    }

    #[test]
    fn slot_backoffs_end_into_a_working_loop_only() {
        let t = timing();
        let t0 = Instant::now();
        let s = Schedule::start(&t, t0, None);
        let end = t0 + Duration::from_secs(5);
        let s = next_run(
            &s,
            Trigger::Startup,
            &Outcome::Ran {
                backoff_end: Some(end),
            },
            t0,
            &t,
            None,
        );
        assert_eq!(s.next(), (end, Trigger::Backoff));
        let failed = next_run(
            &s,
            Trigger::Backoff,
            &Outcome::Failed { transient: true },
            end,
            &t,
            None,
        );
        assert_eq!(failed.next().1, Trigger::Retry);
    }

    #[test]
    fn a_poll_that_found_nothing_keeps_the_other_timers() {
        let t = Timing {
            poll: Some(Duration::from_secs(5)),
            ..timing()
        };
        let t0 = Instant::now();
        let s = Schedule::start(&t, t0, Some(Duration::from_secs(5)));
        assert_eq!(s.next(), (t0 + Duration::from_secs(5), Trigger::Poll));
        let later = t0 + Duration::from_secs(5);
        let s2 = next_run(
            &s,
            Trigger::Poll,
            &Outcome::Unchanged,
            later,
            &t,
            Some(Duration::from_secs(6)),
        );
        assert_eq!(s2.poll, Some(later + Duration::from_secs(6)));
        assert_eq!((s2.verify, s2.resync), (s.verify, s.resync));
    }
}
