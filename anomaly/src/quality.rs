//! Detection quality against ground-truth labels, counted by events the way
//! operators experience them:
//!
//! - A **fault episode** is a run of consecutive labelled readings of one key.
//!   It is *detected* when some reading of that key in
//!   [episode start, episode end + grace] is flagged; the **delay** is the
//!   time from the episode's start to that first flag.
//! - Each detected episode is one **true alarm**. Flags outside every
//!   episode's [start, end + grace] are **false alarms**, one per run of such
//!   flags (a new run after `merge_gap` without them). A detector that stays
//!   on across an episode is thus charged for the time it is on outside it.
//! - precision = true alarms / all alarms; recall = detected episodes /
//!   episodes; F1 their harmonic mean; false alarms per machine-day = false
//!   alarms / Σ over keys of the time between its first and last reading.

use std::collections::BTreeMap;

/// One scored reading.
#[derive(Debug, Clone, PartialEq)]
pub struct Scored {
    /// The source (machine).
    pub key: String,
    /// Event time, ms.
    pub time_ms: i64,
    /// Ground truth: inside a fault.
    pub label: bool,
    /// The fault's kind, when labelled.
    pub kind: Option<String>,
    /// The detector's decision.
    pub flag: bool,
}

/// How alarms and episodes are matched.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Matching {
    /// Flags closer than this belong to one alarm (ms).
    pub merge_gap_ms: i64,
    /// Flags this long after an episode's end still count for it (ms).
    pub grace_ms: i64,
}

impl Default for Matching {
    fn default() -> Self {
        Self {
            merge_gap_ms: 60_000,
            grace_ms: 30_000,
        }
    }
}

/// Recall and delay for one fault kind (or all).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KindQuality {
    /// Fault episodes.
    pub episodes: usize,
    /// Of which detected.
    pub detected: usize,
    /// Median delay to the first flag, seconds.
    pub median_delay_s: Option<f64>,
}

impl KindQuality {
    /// detected / episodes.
    pub fn recall(&self) -> f64 {
        ratio(self.detected, self.episodes)
    }
}

/// A detector's quality.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Quality {
    /// All episodes.
    pub overall: KindQuality,
    /// Per fault kind.
    pub by_kind: BTreeMap<String, KindQuality>,
    /// Alarms raised.
    pub alarms: usize,
    /// Of which overlapping a fault.
    pub true_alarms: usize,
    /// Machine-days observed.
    pub machine_days: f64,
}

impl Quality {
    /// true alarms / alarms (1 when there are none: nothing was wrong).
    pub fn precision(&self) -> f64 {
        if self.alarms == 0 {
            1.0
        } else {
            ratio(self.true_alarms, self.alarms)
        }
    }

    /// detected episodes / episodes.
    pub fn recall(&self) -> f64 {
        self.overall.recall()
    }

    /// Harmonic mean of precision and recall.
    pub fn f1(&self) -> f64 {
        let (p, r) = (self.precision(), self.recall());
        if p + r == 0.0 {
            0.0
        } else {
            2.0 * p * r / (p + r)
        }
    }

    /// False alarms per machine-day.
    pub fn false_alarms_per_machine_day(&self) -> f64 {
        if self.machine_days > 0.0 {
            (self.alarms - self.true_alarms) as f64 / self.machine_days
        } else {
            0.0
        }
    }
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

#[derive(Debug)]
struct Episode {
    start: i64,
    end: i64,
    kind: String,
    first_flag: Option<i64>,
}

/// Scores `rows` (any order).
pub fn evaluate(rows: &[Scored], matching: Matching) -> Quality {
    let mut by_key: BTreeMap<&str, Vec<&Scored>> = BTreeMap::new();
    for row in rows {
        by_key.entry(row.key.as_str()).or_default().push(row);
    }
    let mut quality = Quality::default();
    let mut delays: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for readings in by_key.values_mut() {
        readings.sort_by_key(|r| r.time_ms);
        let (first, last) = (readings[0].time_ms, readings[readings.len() - 1].time_ms);
        quality.machine_days += (last - first) as f64 / 86_400_000.0;
        let mut episodes = episodes_of(readings);
        let inside = |t: i64| {
            episodes
                .iter()
                .any(|e| e.start <= t && t <= e.end + matching.grace_ms)
        };
        let false_flags: Vec<&Scored> = readings
            .iter()
            .copied()
            .filter(|r| r.flag && !inside(r.time_ms))
            .collect();
        let false_alarms = alarms_of(&false_flags, matching.merge_gap_ms).len();
        for episode in &mut episodes {
            let window = episode.start..=episode.end + matching.grace_ms;
            episode.first_flag = readings
                .iter()
                .find(|r| r.flag && window.contains(&r.time_ms))
                .map(|r| r.time_ms);
        }
        let detected = episodes.iter().filter(|e| e.first_flag.is_some()).count();
        quality.alarms += detected + false_alarms;
        quality.true_alarms += detected;
        for episode in episodes {
            for kind in [episode.kind.clone(), String::new()] {
                let entry = if kind.is_empty() {
                    &mut quality.overall
                } else {
                    quality.by_kind.entry(kind.clone()).or_default()
                };
                entry.episodes += 1;
                if let Some(flag) = episode.first_flag {
                    entry.detected += 1;
                    delays
                        .entry(kind)
                        .or_default()
                        .push((flag - episode.start) as f64 / 1000.0);
                }
            }
        }
    }
    quality.overall.median_delay_s = delays.get_mut("").and_then(|d| median(d));
    for (kind, entry) in &mut quality.by_kind {
        entry.median_delay_s = delays.get_mut(kind).and_then(|d| median(d));
    }
    quality
}

fn episodes_of(readings: &[&Scored]) -> Vec<Episode> {
    let mut episodes: Vec<Episode> = Vec::new();
    let mut in_fault = false;
    for r in readings {
        match (in_fault, r.label) {
            (false, true) => episodes.push(Episode {
                start: r.time_ms,
                end: r.time_ms,
                kind: r.kind.clone().unwrap_or_else(|| "unknown".into()),
                first_flag: None,
            }),
            (true, true) => {
                if let Some(e) = episodes.last_mut() {
                    e.end = r.time_ms;
                }
            }
            _ => {}
        }
        in_fault = r.label;
    }
    episodes
}

fn alarms_of(readings: &[&Scored], merge_gap_ms: i64) -> Vec<(i64, i64)> {
    let mut alarms: Vec<(i64, i64)> = Vec::new();
    for r in readings.iter().filter(|r| r.flag) {
        match alarms.last_mut() {
            Some((_, end)) if r.time_ms - *end <= merge_gap_ms => *end = r.time_ms,
            _ => alarms.push((r.time_ms, r.time_ms)),
        }
    }
    alarms
}

fn median(values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    Some(if values.len().is_multiple_of(2) {
        (values[mid - 1] + values[mid]) / 2.0
    } else {
        values[mid]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(key: &str, t: i64, label: bool, flag: bool) -> Scored {
        Scored {
            key: key.into(),
            time_ms: t * 1000,
            label,
            kind: label.then(|| "overheating".to_string()),
            flag,
        }
    }

    #[test]
    fn counts_episodes_alarms_and_delays_by_hand() {
        let matching = Matching {
            merge_gap_ms: 5_000,
            grace_ms: 2_000,
        };
        let rows = vec![
            // a: fault 10..=20 flagged at 13 and 14 (one alarm, delay 3 s);
            // a false alarm at 100.
            row("a", 0, false, false),
            row("a", 10, true, false),
            row("a", 13, true, true),
            row("a", 14, true, true),
            row("a", 20, true, false),
            row("a", 21, false, false),
            row("a", 100, false, true),
            row("a", 86_400, false, false),
            // b: fault 5..=6 missed; flagged at 7 (within grace) → detected, delay 2 s.
            row("b", 0, false, false),
            row("b", 5, true, false),
            row("b", 6, true, false),
            row("b", 7, false, true),
            row("b", 86_400, false, false),
        ];
        let q = evaluate(&rows, matching);
        assert_eq!(q.overall.episodes, 2);
        assert_eq!(q.overall.detected, 2);
        assert_eq!(q.alarms, 3);
        assert_eq!(q.true_alarms, 2);
        assert!((q.precision() - 2.0 / 3.0).abs() < 1e-12);
        assert!((q.recall() - 1.0).abs() < 1e-12);
        assert!((q.f1() - 0.8).abs() < 1e-12);
        assert!((q.machine_days - 2.0).abs() < 1e-12);
        assert!((q.false_alarms_per_machine_day() - 0.5).abs() < 1e-12);
        assert_eq!(q.overall.median_delay_s, Some(2.5));
        assert_eq!(q.by_kind["overheating"].episodes, 2);
    }

    #[test]
    fn a_flag_after_the_grace_period_does_not_detect() {
        let matching = Matching {
            merge_gap_ms: 1_000,
            grace_ms: 1_000,
        };
        let rows = vec![
            row("a", 0, true, false),
            row("a", 1, false, false),
            row("a", 5, false, true),
        ];
        let q = evaluate(&rows, matching);
        assert_eq!((q.overall.detected, q.true_alarms, q.alarms), (0, 0, 1));
        assert_eq!(q.f1(), 0.0);
    }
}
