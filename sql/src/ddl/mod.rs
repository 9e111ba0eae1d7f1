//! Flink-style DDL: `CREATE TABLE name (columns, WATERMARK FOR …) WITH (…)`.

mod create_table;
mod options;
mod types;

pub use create_table::{ColumnDef, TableDef, WatermarkDef, parse_create_table};
pub use options::{OptionValue, Options};
pub use types::sql_to_arrow;
