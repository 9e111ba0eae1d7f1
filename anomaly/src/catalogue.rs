//! The detectors `spindle eval` compares, as SQL over one row per reading
//! with columns `key`, `time` and the numeric sensors. A machine is flagged
//! when any of its checks is.

/// One check: a detector over a value, optionally post-processed by the
/// anomaly likelihood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// The value: a sensor column, or `gap` (seconds since the machine's
    /// previous reading, from `inter_arrival`).
    pub value: String,
    /// The window function over it (`{}` is the value).
    pub detector: &'static str,
    /// Whether `anomaly_likelihood` turns its score into the flag.
    pub likelihood: bool,
}

/// Which values a catalogue entry checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checks {
    /// The same detector over every numeric sensor.
    EverySensor {
        /// The window function (`{}` is the sensor).
        detector: &'static str,
        /// Whether the likelihood post-processes each score.
        likelihood: bool,
    },
    /// Chosen checks on named values (the default profile's sensors, or
    /// `gap`): (value, detector, likelihood).
    Chosen(&'static [(&'static str, &'static str, bool)]),
}

/// A named detector configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CatalogueEntry {
    /// Name on the command line.
    pub name: &'static str,
    /// What it checks.
    pub checks: Checks,
}

const fn every(name: &'static str, detector: &'static str, likelihood: bool) -> CatalogueEntry {
    CatalogueEntry {
        name,
        checks: Checks::EverySensor {
            detector,
            likelihood,
        },
    }
}

/// Each failure mode of the default profile met by the check that fits it:
/// Gaussian limits on the normally distributed temperature and power
/// (spikes, drifts), the likelihood over Gaussian scores on heavy-tailed
/// vibration (a run of high scores, not a single tail reading), flatline on
/// the temperature probe, and Gaussian limits on the time between readings
/// (bursting gateways).
const PLANT_HEALTH: &[(&str, &str, bool)] = &[
    ("temperature", "gaussian_anomaly({})", false),
    ("power", "gaussian_anomaly({})", false),
    ("vibration", "gaussian_anomaly({})", true),
    ("temperature", "flatline_anomaly({})", false),
    ("gap", "gaussian_anomaly({})", false),
];

/// Every detector `spindle eval` knows, default parameters.
pub const CATALOGUE: [CatalogueEntry; 8] = [
    every("gaussian", "gaussian_anomaly({})", false),
    every("ewma", "ewma_anomaly({})", false),
    every("ew_variance", "ew_variance_anomaly({})", false),
    every("flatline", "flatline_anomaly({})", false),
    every("cusum", "cusum_anomaly({})", false),
    every("gaussian_likelihood", "gaussian_anomaly({})", true),
    every("ew_variance_likelihood", "ew_variance_anomaly({})", true),
    CatalogueEntry {
        name: "plant_health",
        checks: Checks::Chosen(PLANT_HEALTH),
    },
];

/// The entry called `name`.
pub fn find(name: &str) -> Option<CatalogueEntry> {
    CATALOGUE.iter().copied().find(|e| e.name == name)
}

/// The checks of `entry` over the input's `sensors`; an error names a
/// value the entry needs that the input lacks.
pub fn checks(entry: CatalogueEntry, sensors: &[String]) -> Result<Vec<Check>, String> {
    match entry.checks {
        Checks::EverySensor {
            detector,
            likelihood,
        } => Ok(sensors
            .iter()
            .map(|s| Check {
                value: s.clone(),
                detector,
                likelihood,
            })
            .collect()),
        Checks::Chosen(chosen) => chosen
            .iter()
            .map(|&(value, detector, likelihood)| {
                if value != "gap" && !sensors.iter().any(|s| s == value) {
                    return Err(format!("detector {} needs a `{value}` column", entry.name));
                }
                Ok(Check {
                    value: value.to_string(),
                    detector,
                    likelihood,
                })
            })
            .collect(),
    }
}

/// SQL scoring `table` (columns `key`, `time`, `label`, `kind`, sensors)
/// with `checks`: one row per reading with `flag` (any check) and `score`
/// (the largest).
pub fn scoring_sql(checks: &[Check], table: &str) -> String {
    let window = "WINDOW w AS (PARTITION BY key ORDER BY time)";
    let with_gap = format!("SELECT *, inter_arrival(time) OVER w AS gap FROM {table} {window}");
    let first: Vec<String> = checks
        .iter()
        .enumerate()
        .map(|(i, c)| {
            format!(
                "{} OVER w AS d{i}",
                c.detector.replace("{}", &format!("\"{}\"", c.value))
            )
        })
        .collect();
    let scored = format!(
        "SELECT key, time, label, kind, {} FROM ({with_gap}) {window}",
        first.join(", ")
    );
    let second: Vec<String> = checks
        .iter()
        .enumerate()
        .map(|(i, c)| {
            if c.likelihood {
                format!("anomaly_likelihood(d{i}['score']) OVER w AS d{i}")
            } else {
                format!("d{i}")
            }
        })
        .collect();
    let post = format!(
        "SELECT key, time, label, kind, {} FROM ({scored}) {window}",
        second.join(", ")
    );
    let flags: Vec<String> = (0..checks.len())
        .map(|i| format!("coalesce(d{i}['flag'], false)"))
        .collect();
    let scores: Vec<String> = (0..checks.len())
        .map(|i| format!("d{i}['score']"))
        .collect();
    format!(
        "SELECT key, time, label, kind, {} AS flag, greatest({}) AS score FROM ({post})",
        flags.join(" OR "),
        scores.join(", ")
    )
}
