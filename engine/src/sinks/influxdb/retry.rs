//! What each InfluxDB answer means for a batch; the backoff itself is the
//! sinks' shared policy (`sinks/retry.rs`).

use reqwest::StatusCode;

pub(crate) use crate::sinks::retry::{Jitter, RetryPolicy, parse_retry_after};

/// What an HTTP status means for a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Written.
    Written,
    /// Too large: split it and send the halves.
    Split,
    /// Some or all lines were refused for what they hold (a partial write
    /// or bad lines): no retry; the refused lines go to the dead-letter
    /// output if the body says so, else it is an error.
    Rejected,
    /// Try again later (429, 5xx, 408).
    Retry,
    /// Do not retry and stop the job: wrong token, database, URL (401, 403,
    /// 404, other 4xx).
    Fatal,
}

/// The verdict on `status`.
pub(crate) fn verdict(status: StatusCode) -> Verdict {
    match status.as_u16() {
        200..=299 => Verdict::Written,
        413 => Verdict::Split,
        400 | 422 => Verdict::Rejected,
        408 | 429 | 500..=599 => Verdict::Retry,
        _ => Verdict::Fatal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_decide_retry_split_reject_or_fail() {
        let v = |code: u16| verdict(StatusCode::from_u16(code).unwrap());
        assert_eq!(v(204), Verdict::Written);
        assert_eq!(v(200), Verdict::Written);
        assert_eq!(v(413), Verdict::Split);
        assert_eq!(v(400), Verdict::Rejected);
        assert_eq!(v(422), Verdict::Rejected);
        for code in [408, 429, 500, 502, 503, 504] {
            assert_eq!(v(code), Verdict::Retry, "{code}");
        }
        for code in [401, 403, 404, 405] {
            assert_eq!(v(code), Verdict::Fatal, "{code}");
        }
    }
}
