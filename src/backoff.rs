//! The one exponential backoff: the `n`-th consecutive failure waits
//! `min(cap, base · 2^(n-1))`. HTTP retries add full jitter to it (`cloud::retry`); the
//! watch service uses it as is for passes and slots. Pure.

use std::time::Duration;

/// The wait after the `n`-th consecutive failure (`n` from 1; 0 counts as 1).
pub fn exponential(base: Duration, cap: Duration, n: u32) -> Duration {
    let factor = 1u32 << n.saturating_sub(1).min(20);
    base.saturating_mul(factor).min(cap)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_delay_doubles_up_to_the_cap() {
        let s = Duration::from_secs;
        let delays: Vec<u64> = (1..=7)
            .map(|n| exponential(s(10), s(300), n).as_secs())
            .collect();
        assert_eq!(delays, [10, 20, 40, 80, 160, 300, 300]);
        assert_eq!(exponential(s(10), s(300), 0), s(10));
        assert_eq!(exponential(s(10), s(900), u32::MAX), s(900));
    }
}
