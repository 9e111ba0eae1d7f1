//! The detectors `spindle eval` compares, as SQL over one row per reading
//! with columns `key`, `time` and the numeric sensors. A machine is flagged
//! when any of its sensors is.

/// A named detector configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CatalogueEntry {
    /// Name on the command line.
    pub name: &'static str,
    /// The window function applied to each sensor (`{}` is the sensor).
    pub per_sensor: &'static str,
    /// Whether the anomaly likelihood post-processes each sensor's score.
    pub likelihood: bool,
}

/// Every detector `spindle eval` knows, default parameters.
pub const CATALOGUE: [CatalogueEntry; 7] = [
    CatalogueEntry {
        name: "gaussian",
        per_sensor: "gaussian_anomaly({})",
        likelihood: false,
    },
    CatalogueEntry {
        name: "ewma",
        per_sensor: "ewma_anomaly({})",
        likelihood: false,
    },
    CatalogueEntry {
        name: "ew_variance",
        per_sensor: "ew_variance_anomaly({})",
        likelihood: false,
    },
    CatalogueEntry {
        name: "flatline",
        per_sensor: "flatline_anomaly({})",
        likelihood: false,
    },
    CatalogueEntry {
        name: "cusum",
        per_sensor: "cusum_anomaly({})",
        likelihood: false,
    },
    CatalogueEntry {
        name: "gaussian_likelihood",
        per_sensor: "gaussian_anomaly({})",
        likelihood: true,
    },
    CatalogueEntry {
        name: "ew_variance_likelihood",
        per_sensor: "ew_variance_anomaly({})",
        likelihood: true,
    },
];

/// The entry called `name`.
pub fn find(name: &str) -> Option<CatalogueEntry> {
    CATALOGUE.iter().copied().find(|e| e.name == name)
}

/// SQL scoring `table` (columns `key`, `time`, `label`, `kind`, sensors)
/// with `entry`: one row per reading with `flag` and `score` (the largest
/// sensor score).
pub fn scoring_sql(entry: CatalogueEntry, table: &str, sensors: &[String]) -> String {
    let window = "WINDOW w AS (PARTITION BY key ORDER BY time)";
    let quoted: Vec<String> = sensors.iter().map(|s| format!("\"{s}\"")).collect();
    let first: Vec<String> = quoted
        .iter()
        .enumerate()
        .map(|(i, s)| format!("{} OVER w AS d{i}", entry.per_sensor.replace("{}", s)))
        .collect();
    let mut sql = format!(
        "SELECT key, time, label, kind, {} FROM {table} {window}",
        first.join(", ")
    );
    if entry.likelihood {
        let second: Vec<String> = (0..sensors.len())
            .map(|i| format!("anomaly_likelihood(d{i}['score']) OVER w AS d{i}"))
            .collect();
        sql = format!(
            "SELECT key, time, label, kind, {} FROM ({sql}) {window}",
            second.join(", ")
        );
    }
    let flags: Vec<String> = (0..sensors.len())
        .map(|i| format!("coalesce(d{i}['flag'], false)"))
        .collect();
    let scores: Vec<String> = (0..sensors.len())
        .map(|i| format!("d{i}['score']"))
        .collect();
    format!(
        "SELECT key, time, label, kind, {} AS flag, greatest({}) AS score FROM ({sql})",
        flags.join(" OR "),
        scores.join(", ")
    )
}
