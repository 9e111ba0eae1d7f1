//! Detector state for checkpoints: serde's JSON, except that every float is
//! written as its bit pattern (`"f64:3ff0000000000000"`). serde_json's
//! default float parser can be one unit in the last place off (its exact
//! parser is a feature that would rebuild much of the workspace), and a
//! restored detector must continue with exactly the scores it would have
//! given: streaming equals batch across a restart.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Number, Value};

use crate::{AnomalyError, Result};

const PREFIX: &str = "f64:";

/// `value` as state text.
pub fn encode<T: Serialize>(value: &T) -> Result<String> {
    let mut tree = serde_json::to_value(value).map_err(|e| error("saving", e))?;
    floats_to_bits(&mut tree);
    Ok(tree.to_string())
}

/// A value from [`encode`]'s text.
pub fn decode<T: DeserializeOwned>(text: &str) -> Result<T> {
    let mut tree: Value = serde_json::from_str(text).map_err(|e| error("restoring", e))?;
    bits_to_floats(&mut tree)?;
    serde_json::from_value(tree).map_err(|e| error("restoring", e))
}

fn error(what: &str, e: serde_json::Error) -> AnomalyError {
    AnomalyError::Parameter(format!("{what} state: {e}"))
}

fn floats_to_bits(tree: &mut Value) {
    match tree {
        Value::Number(n) if n.is_f64() => {
            if let Some(f) = n.as_f64() {
                *tree = Value::String(format!("{PREFIX}{:016x}", f.to_bits()));
            }
        }
        Value::Array(items) => items.iter_mut().for_each(floats_to_bits),
        Value::Object(map) => map.values_mut().for_each(floats_to_bits),
        _ => {}
    }
}

fn bits_to_floats(tree: &mut Value) -> Result<()> {
    match tree {
        Value::String(s) if s.starts_with(PREFIX) => {
            let bits = u64::from_str_radix(&s[PREFIX.len()..], 16)
                .map_err(|e| AnomalyError::Parameter(format!("restoring state: {s}: {e}")))?;
            // Finite floats only reach here (serde_json writes NaN as null).
            *tree = Number::from_f64(f64::from_bits(bits)).map_or(Value::Null, Value::Number);
        }
        Value::Array(items) => items.iter_mut().try_for_each(bits_to_floats)?,
        Value::Object(map) => map.values_mut().try_for_each(bits_to_floats)?,
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn floats_come_back_bit_for_bit() {
        let values: Vec<f64> = (1..2000)
            .map(|i| (i as f64).sqrt() / 7.0 + 1e-9 * i as f64)
            .collect();
        let back: Vec<f64> = decode(&encode(&values).unwrap()).unwrap();
        assert!(
            values
                .iter()
                .zip(&back)
                .all(|(a, b)| a.to_bits() == b.to_bits())
        );
        let counts: (u64, String) = decode(&encode(&(7u64, "Mean".to_string())).unwrap()).unwrap();
        assert_eq!(counts, (7, "Mean".to_string()));
    }
}
