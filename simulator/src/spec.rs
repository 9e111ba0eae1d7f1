//! The factory description a profile file holds: machines, sensors, faults.
//!
//! Profiles are TOML; every field is documented in `docs/simulator.md`. Loading
//! happens in two steps: serde reads what the user wrote ([`FactorySpec`]),
//! then [`FactorySpec::validate`] checks that it makes sense and names the
//! file, line and field of the first problem.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::error::{Result, SimError};

/// A whole simulated factory.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FactorySpec {
    /// Profile name, reported in summaries.
    pub name: String,
    /// Nominal time between two readings of one machine, e.g. `"1s"`.
    #[serde(with = "humantime_serde_compat", default = "default_interval")]
    pub interval: Duration,
    /// Standard deviation of each reading's timestamp around its nominal
    /// time (reporting jitter), e.g. `"20ms"`.
    #[serde(with = "humantime_serde_compat", default)]
    pub jitter: Duration,
    /// The machines.
    pub machines: MachinesSpec,
    /// The sensors every machine carries, in record field order.
    pub sensors: Vec<Spanned<SensorSpec>>,
    /// Fault injection; absent means no faults.
    #[serde(default)]
    pub faults: FaultsSpec,
}

/// How many machines there are and how they are named and tagged.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MachinesSpec {
    /// Number of machines.
    pub count: u32,
    /// Machine id pattern; `{n}` or `{n:0W}` is replaced by the 1-based
    /// machine number (zero-padded to W digits), e.g. `"m-{n:04}"`.
    pub id_pattern: String,
    /// Production lines; machines are split into contiguous blocks, one per line.
    pub lines: Vec<String>,
    /// Providers (vendors); assigned round-robin.
    pub providers: Vec<String>,
}

/// The distribution family of a sensor's random-walk steps.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DistributionFamily {
    /// Gaussian steps.
    Normal,
    /// Student's t steps (heavy tails); needs `dof` > 2.
    StudentT,
    /// Uniform steps.
    Uniform,
    /// Symmetric triangular steps.
    Triangular,
}

/// One sensor of a machine.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SensorSpec {
    /// Field name in records, e.g. `temperature`.
    pub name: String,
    /// Unit, for documentation and OpenMetrics output.
    pub unit: String,
    /// Long-run mean of the readings.
    pub mean: f64,
    /// Long-run standard deviation of the readings.
    pub std: f64,
    /// The walk's memory: each step starts from the average of the past
    /// `walk_window` points.
    #[serde(default = "default_walk_window")]
    pub walk_window: usize,
    /// Pull back toward the mean per step, in (0, 1]: 1 gives independent
    /// samples, small values give slow drifts.
    #[serde(default = "default_recalibration")]
    pub recalibration: f64,
    /// Physical lower bound; readings are clamped to it.
    pub min: f64,
    /// Physical upper bound; readings are clamped to it.
    pub max: f64,
    /// Distribution family of the walk's steps.
    #[serde(default = "default_distribution")]
    pub distribution: DistributionFamily,
    /// Degrees of freedom for `student_t`.
    #[serde(default = "default_dof")]
    pub dof: f64,
    /// Decimal places written.
    #[serde(default = "default_precision")]
    pub precision: u32,
}

/// Fault injection for the whole factory.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultsSpec {
    /// Fault onsets per machine-hour of simulated time (Poisson).
    #[serde(default)]
    pub rate_per_machine_hour: f64,
    /// How long a fault lasts before the machine is reset.
    #[serde(default)]
    pub duration: FaultDurationSpec,
    /// The kinds of fault, drawn by weight.
    #[serde(default)]
    pub kinds: Vec<Spanned<FaultKindSpec>>,
}

/// Log-normal fault durations, clamped to `[min, max]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultDurationSpec {
    /// Median duration.
    #[serde(with = "humantime_serde_compat")]
    pub median: Duration,
    /// Log-normal shape (σ of the log).
    pub sigma: f64,
    /// Shortest fault.
    #[serde(with = "humantime_serde_compat")]
    pub min: Duration,
    /// Longest fault.
    #[serde(with = "humantime_serde_compat")]
    pub max: Duration,
}

impl Default for FaultDurationSpec {
    fn default() -> Self {
        Self {
            median: Duration::from_secs(180),
            sigma: 0.5,
            min: Duration::from_secs(30),
            max: Duration::from_secs(1800),
        }
    }
}

/// How a faulty machine reports.
#[derive(Debug, Clone, Copy, PartialEq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reporting {
    /// As usual.
    #[default]
    Normal,
    /// No readings at all until reset.
    Stalled,
    /// `burst_factor` readings per interval.
    Bursty,
}

/// One kind of fault.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultKindSpec {
    /// Label written in `fault_kind`.
    pub name: String,
    /// Relative probability of this kind.
    #[serde(default = "default_weight")]
    pub weight: f64,
    /// Reporting behaviour while the fault lasts.
    #[serde(default)]
    pub reporting: Reporting,
    /// Readings per interval when `reporting = "bursty"`.
    #[serde(default = "default_burst_factor")]
    pub burst_factor: u32,
    /// What happens to each affected sensor.
    #[serde(default)]
    pub effects: Vec<EffectSpec>,
}

/// The change a fault makes to one sensor; sizes are in units of that
/// sensor's standard deviation.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EffectSpec {
    /// Sensor name.
    pub sensor: String,
    /// Extra white noise (σ units).
    #[serde(default)]
    pub noise: f64,
    /// Constant offset (σ units).
    #[serde(default)]
    pub shift: f64,
    /// Linear drift (σ units per minute since onset).
    #[serde(default)]
    pub drift_per_minute: f64,
    /// Probability per reading of a spike.
    #[serde(default)]
    pub spike_probability: f64,
    /// Spike height (σ units, sign random).
    #[serde(default)]
    pub spike_size: f64,
    /// The reading freezes at its value at onset.
    #[serde(default)]
    pub stuck: bool,
}

fn default_interval() -> Duration {
    Duration::from_secs(1)
}
fn default_walk_window() -> usize {
    10
}
fn default_recalibration() -> f64 {
    0.05
}
fn default_distribution() -> DistributionFamily {
    DistributionFamily::Normal
}
fn default_dof() -> f64 {
    5.0
}
fn default_precision() -> u32 {
    3
}
fn default_weight() -> f64 {
    1.0
}
fn default_burst_factor() -> u32 {
    5
}

/// Durations written as human strings (`"250ms"`, `"3m"`).
mod humantime_serde_compat {
    use serde::{Deserialize, Deserializer};
    use std::time::Duration;

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(&text)
            .map_err(|e| serde::de::Error::custom(format!("bad duration {text:?}: {e}")))
    }
}

impl FactorySpec {
    /// Reads and validates a profile file.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| SimError::io(format!("reading profile {}", path.display()), e))?;
        Self::from_toml(&text, path)
    }

    /// Parses and validates profile text; `origin` names it in errors.
    pub fn from_toml(text: &str, origin: &Path) -> Result<Self> {
        let spec: FactorySpec = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|s| line_of(text, s.start)).unwrap_or(1);
            SimError::Profile {
                path: origin.to_path_buf(),
                line,
                message: e.message().to_string(),
            }
        })?;
        spec.validate(text, origin)?;
        Ok(spec)
    }

    /// Checks values serde cannot: ranges, cross references, bounds.
    pub fn validate(&self, text: &str, origin: &Path) -> Result<()> {
        let fail = |offset: usize, message: String| SimError::Profile {
            path: origin.to_path_buf(),
            line: line_of(text, offset),
            message,
        };
        self.validate_machines()
            .map_err(|m| fail(section_offset(text, "machines"), m))?;
        if self.sensors.is_empty() {
            return Err(fail(0, "`sensors`: at least one sensor is required".into()));
        }
        for (i, sensor) in self.sensors.iter().enumerate() {
            let name = &sensor.get_ref().name;
            if self.sensors[..i].iter().any(|s| &s.get_ref().name == name) {
                return Err(fail(
                    sensor.span().start,
                    format!("sensor `{name}` defined twice"),
                ));
            }
            validate_sensor(sensor.get_ref()).map_err(|m| fail(sensor.span().start, m))?;
        }
        self.validate_faults(text, origin)
    }

    fn validate_machines(&self) -> Result<(), String> {
        let m = &self.machines;
        if m.count == 0 {
            return Err("`machines.count` must be at least 1".into());
        }
        IdPattern::parse(&m.id_pattern).map_err(|e| format!("`machines.id_pattern`: {e}"))?;
        if m.lines.is_empty() || m.providers.is_empty() {
            return Err("`machines.lines` and `machines.providers` need at least one entry".into());
        }
        let names = m.lines.iter().chain(&m.providers).chain([&m.id_pattern]);
        if let Some(bad) = names.into_iter().find(|n| has_control(n)) {
            return Err(format!(
                "machine names and tags cannot hold control characters: {bad:?}"
            ));
        }
        if self.interval.is_zero() {
            return Err("`interval` must be positive".into());
        }
        Ok(())
    }

    fn validate_faults(&self, text: &str, origin: &Path) -> Result<()> {
        let f = &self.faults;
        let fail = |offset: usize, message: String| SimError::Profile {
            path: origin.to_path_buf(),
            line: line_of(text, offset),
            message,
        };
        let section = section_offset(text, "faults");
        if !(f.rate_per_machine_hour >= 0.0 && f.rate_per_machine_hour.is_finite()) {
            return Err(fail(
                section,
                "`faults.rate_per_machine_hour` must be ≥ 0".into(),
            ));
        }
        let d = &f.duration;
        if d.min > d.max || d.median.is_zero() || d.sigma.is_nan() || d.sigma < 0.0 {
            return Err(fail(
                section,
                "`faults.duration`: need 0 < median, sigma ≥ 0, min ≤ max".into(),
            ));
        }
        if f.rate_per_machine_hour > 0.0 && f.kinds.is_empty() {
            return Err(fail(
                section,
                "`faults.kinds`: a positive fault rate needs at least one kind".into(),
            ));
        }
        for kind in &f.kinds {
            self.validate_kind(kind.get_ref())
                .map_err(|m| fail(kind.span().start, m))?;
        }
        Ok(())
    }

    fn validate_kind(&self, kind: &FaultKindSpec) -> Result<(), String> {
        let name = &kind.name;
        if !(kind.weight > 0.0 && kind.weight.is_finite()) {
            return Err(format!("fault kind `{name}`: `weight` must be > 0"));
        }
        if kind.reporting == Reporting::Bursty && kind.burst_factor < 2 {
            return Err(format!("fault kind `{name}`: `burst_factor` must be ≥ 2"));
        }
        for effect in &kind.effects {
            if self.sensor_index(&effect.sensor).is_none() {
                return Err(format!(
                    "fault kind `{name}`: effect on unknown sensor `{}`",
                    effect.sensor
                ));
            }
            if !(0.0..=1.0).contains(&effect.spike_probability) || effect.noise < 0.0 {
                return Err(format!(
                    "fault kind `{name}`, sensor `{}`: need 0 ≤ spike_probability ≤ 1 and noise ≥ 0",
                    effect.sensor
                ));
            }
        }
        Ok(())
    }

    /// Position of a sensor by name.
    pub fn sensor_index(&self, name: &str) -> Option<usize> {
        self.sensors.iter().position(|s| s.get_ref().name == name)
    }

    /// The sensors without their spans.
    pub fn sensor_specs(&self) -> impl Iterator<Item = &SensorSpec> {
        self.sensors.iter().map(Spanned::get_ref)
    }
}

fn validate_sensor(s: &SensorSpec) -> Result<(), String> {
    let name = &s.name;
    let bad = |field: &str, why: &str| Err(format!("sensor `{name}`: field `{field}`: {why}"));
    if !is_identifier(name) || RESERVED_FIELDS.contains(&name.as_str()) {
        return bad(
            "name",
            "must be a lower-case identifier ([a-z_][a-z0-9_]*) other than machine_id, seq, line, provider, ts, fault, fault_kind",
        );
    }
    if !(s.std > 0.0 && s.std.is_finite()) {
        return bad("std", "must be a positive number");
    }
    if !(s.min < s.mean && s.mean < s.max) {
        return bad("mean", "must lie strictly between `min` and `max`");
    }
    if s.walk_window == 0 || s.walk_window > 1000 {
        return bad("walk_window", "must be between 1 and 1000");
    }
    if !(s.recalibration > 0.0 && s.recalibration <= 1.0) {
        return bad("recalibration", "must be in (0, 1]");
    }
    if s.distribution == DistributionFamily::StudentT && (s.dof.is_nan() || s.dof <= 2.0) {
        return bad(
            "dof",
            "student_t needs more than 2 degrees of freedom for a finite variance",
        );
    }
    if s.precision > 9 {
        return bad("precision", "at most 9 decimal places");
    }
    Ok(())
}

/// Record fields a sensor may not be named after.
const RESERVED_FIELDS: [&str; 7] = [
    "machine_id",
    "seq",
    "line",
    "provider",
    "ts",
    "fault",
    "fault_kind",
];

/// Tags with control characters cannot be written as line protocol.
pub(crate) fn has_control(text: &str) -> bool {
    text.chars().any(char::is_control)
}

/// Sensor names become JSON keys, SQL columns and metric names.
fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// A parsed machine id pattern such as `m-{n:04}`.
#[derive(Debug, Clone)]
pub struct IdPattern {
    prefix: String,
    width: usize,
    suffix: String,
}

impl IdPattern {
    /// Parses `prefix{n}suffix` or `prefix{n:0W}suffix`.
    pub fn parse(pattern: &str) -> Result<Self, String> {
        let start = pattern
            .find("{n")
            .ok_or_else(|| format!("{pattern:?} has no `{{n}}` placeholder"))?;
        let end = start
            + pattern[start..]
                .find('}')
                .ok_or_else(|| format!("{pattern:?}: unclosed placeholder"))?;
        let inner = &pattern[start + 2..end];
        let width = match inner.strip_prefix(":0") {
            Some(w) => w
                .parse::<usize>()
                .map_err(|_| format!("{pattern:?}: width in `{{n:0W}}` must be a number"))?,
            None if inner.is_empty() => 0,
            None => {
                return Err(format!(
                    "{pattern:?}: placeholder must be `{{n}}` or `{{n:0W}}`"
                ));
            }
        };
        Ok(Self {
            prefix: pattern[..start].to_string(),
            width,
            suffix: pattern[end + 1..].to_string(),
        })
    }

    /// The id of machine number `n` (1-based).
    pub fn render(&self, n: u32) -> String {
        format!(
            "{}{:0width$}{}",
            self.prefix,
            n,
            self.suffix,
            width = self.width
        )
    }
}

/// 1-based line number of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// Offset of a `[name` table header, or 0 when absent.
fn section_offset(text: &str, name: &str) -> usize {
    text.find(&format!("[{name}")).unwrap_or(0)
}

/// Where a profile came from, for messages.
pub fn builtin_origin(name: &str) -> PathBuf {
    PathBuf::from(format!("<built-in {name}>"))
}

#[cfg(test)]
mod tests;
