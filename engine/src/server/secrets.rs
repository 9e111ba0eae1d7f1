//! Keeping values substituted from the environment out of answers and logs.
//!
//! A job's `${VAR}`s are substituted from the server's environment; the
//! values (passwords, tokens, broker addresses) must never come back in an
//! API response or a log line. Parsing through [`parse_job`] records every
//! value the lookup returned, and [`Secrets::mask`] replaces them in any
//! text leaving the server — including messages from DataFusion or a
//! connector that quote a substituted option.

use std::cell::RefCell;

/// Values shorter than this are not masked: a `${PARTITIONS:-3}` would
/// otherwise mangle every digit 3 in a message. Secrets are longer.
const MIN_SECRET_LEN: usize = 4;

/// The values a job's text took from the environment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Secrets(Vec<String>);

impl Secrets {
    /// `text` with every recorded value replaced by `***`.
    pub fn mask(&self, text: &str) -> String {
        let mut masked = text.to_string();
        for value in &self.0 {
            masked = masked.replace(value.as_str(), "***");
        }
        masked
    }
}

/// Parses a job with `${VAR}`s from `env`, recording the values substituted.
pub fn parse_job(
    text: &str,
    env: impl Fn(&str) -> Option<String>,
) -> (spindle_sql::Result<spindle_sql::Job>, Secrets) {
    let seen = RefCell::new(Vec::new());
    let parsed = spindle_sql::Job::parse_with_env(text, |name| {
        let value = env(name);
        if let Some(v) = &value
            && v.len() >= MIN_SECRET_LEN
        {
            seen.borrow_mut().push(v.clone());
        }
        value
    });
    let mut values = seen.into_inner();
    // Longest first, so a value containing another is masked whole.
    values.sort_by_key(|v| std::cmp::Reverse(v.len()));
    values.dedup();
    (parsed, Secrets(values))
}

/// The server's own environment.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn substituted_values_are_masked_and_short_ones_left_alone() {
        let env = |name: &str| match name {
            "PASSWORD" => Some("hunter2-secret".to_string()),
            "USER" => Some("hunter2".to_string()),
            "N" => Some("3".to_string()),
            _ => None,
        };
        let text = "CREATE TABLE t (a INT) WITH ('connector' = 'console', \
                    'x' = '${PASSWORD}', 'y' = '${USER}', 'z' = '${N}');";
        let (parsed, secrets) = parse_job(text, env);
        assert!(parsed.is_ok());
        assert_eq!(
            secrets.mask("option 'x' = 'hunter2-secret' and 'hunter2', 3 tables"),
            "option 'x' = '***' and '***', 3 tables"
        );
    }
}
