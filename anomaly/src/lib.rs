//! Spindle's anomaly models.
//!
//! Online detectors, each a stateful [`Detector`] over one source's
//! readings in event-time order and a SQL window function
//! ([`udwf::register`]):
//!
//! | file | model | SQL |
//! |---|---|---|
//! | [`gaussian`] | Gaussian limits (Welford mean/σ, normal quantile) | `gaussian_anomaly` |
//! | [`ewma`] | EWMA and EW-variance control charts | `ewma_anomaly`, `ew_variance_anomaly` |
//! | [`cusum`] | two-sided tabular CUSUM | `cusum_anomaly` |
//! | [`likelihood`] | Numenta's anomaly likelihood over any score | `anomaly_likelihood` |
//! | [`flatline`] | a stuck probe repeating one value | `flatline_anomaly` |
//! | [`rcf`] | Random Cut Forest (AWS's reference implementation) over one or more values | `rcf_anomaly` |
//! | [`udwf`] | inter-arrival time; the DataFusion glue | `inter_arrival` |
//! | [`keyed`] | each key's detector kept for checkpoints (the engine's `OVER` operator) | |
//!
//! Trained models ([`trained`]: Isolation Forest, Hotelling T², PCA T² + Q)
//! are fitted from history by `spindle train` and scored statelessly with
//! `anomaly_model('name', features…)`.
//!
//! Maths, parameters and defaults: `docs/models.md`.

pub mod baseline;
pub mod catalogue;
pub mod cusum;
mod error;
pub mod ewma;
pub mod flatline;
pub mod gaussian;
pub mod keyed;
pub mod likelihood;
pub mod quality;
pub mod rcf;
mod rcf_udwf;
pub mod state;
pub mod trained;
pub mod udwf;
pub mod verdict;
pub mod welford;

pub use error::{AnomalyError, Result};
pub use udwf::register;
pub use verdict::{Detector, Verdict};
