//! When to retry a request and how long to wait: bounded attempts, exponential backoff
//! with full jitter, and `Retry-After`. Pure: the caller supplies the random number and
//! the clock reading.

use std::time::Duration;

use reqwest::{Method, StatusCode};

/// Bounds on retrying one request.
#[derive(Clone, Copy, Debug)]
pub struct RetryPolicy {
    /// Most attempts in all, the first included.
    pub max_attempts: u32,
    /// The backoff's first step.
    pub base: Duration,
    /// The longest wait between attempts.
    pub cap: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 4,
            base: Duration::from_millis(200),
            cap: Duration::from_secs(10),
        }
    }
}

/// Whether repeating `method` cannot change the outcome twice. POST is not: a lost
/// response may hide a created object.
pub fn is_idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::PUT | Method::DELETE | Method::OPTIONS
    )
}

/// Whether a response status is worth another attempt.
pub fn is_retryable_status(status: StatusCode) -> bool {
    matches!(status.as_u16(), 429 | 502 | 503 | 504)
}

impl RetryPolicy {
    /// The wait before attempt `attempt + 1` (attempts count from 1), or `None` when the
    /// attempts are used up. `retry_after` from the server wins, capped; otherwise full
    /// jitter: a uniform wait in `[0, min(cap, base * 2^(attempt-1))]`, from `unit` in
    /// `[0, 1)`.
    pub fn wait(&self, attempt: u32, retry_after: Option<Duration>, unit: f64) -> Option<Duration> {
        if attempt >= self.max_attempts {
            return None;
        }
        if let Some(after) = retry_after {
            return Some(after.min(self.cap));
        }
        let ceiling = crate::backoff::exponential(self.base, self.cap, attempt);
        Some(ceiling.mul_f64(unit.clamp(0.0, 1.0)))
    }
}

/// Reads a `Retry-After` header: delay seconds or an HTTP date (relative to `now`).
pub fn parse_retry_after(value: &str, now: std::time::SystemTime) -> Option<Duration> {
    if let Ok(secs) = value.trim().parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = httpdate::parse_http_date(value.trim()).ok()?;
    Some(when.duration_since(now).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_is_capped_and_ends() {
        let p = RetryPolicy {
            max_attempts: 4,
            base: Duration::from_millis(100),
            cap: Duration::from_millis(250),
        };
        assert_eq!(p.wait(1, None, 1.0), Some(Duration::from_millis(100)));
        assert_eq!(p.wait(2, None, 1.0), Some(Duration::from_millis(200)));
        assert_eq!(p.wait(3, None, 1.0), Some(Duration::from_millis(250)));
        assert_eq!(p.wait(3, None, 0.5), Some(Duration::from_millis(125)));
        assert_eq!(p.wait(4, None, 1.0), None);
        assert_eq!(
            p.wait(1, Some(Duration::from_secs(60)), 0.3),
            Some(Duration::from_millis(250))
        );
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let now = std::time::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
        assert_eq!(parse_retry_after("3", now), Some(Duration::from_secs(3)));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(7));
        assert_eq!(parse_retry_after(&later, now), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn only_idempotent_methods_and_transient_statuses_retry() {
        assert!(is_idempotent(&Method::PUT));
        assert!(!is_idempotent(&Method::POST));
        assert!(!is_idempotent(&Method::PATCH));
        assert!(is_retryable_status(StatusCode::SERVICE_UNAVAILABLE));
        assert!(is_retryable_status(StatusCode::TOO_MANY_REQUESTS));
        assert!(!is_retryable_status(StatusCode::CONFLICT));
        assert!(!is_retryable_status(StatusCode::INTERNAL_SERVER_ERROR));
    }
}
