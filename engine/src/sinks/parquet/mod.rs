//! `'connector' = 'parquet'`: history files on object storage (a local path
//! or `s3://bucket/prefix`).
//!
//! - Layout: Hive-style `date=YYYY-MM-DD/hour=HH/` from a timestamp column
//!   (`'partition.time-column'`, default: the first TIMESTAMP column), or
//!   `col=value/…` from `'partition_by' = 'col1,col2'`, or flat with
//!   `'partitioning' = 'none'`.
//! - Files: ZSTD, timestamps stored as microseconds UTC (readable by Spark,
//!   DuckDB, pandas), rolled by `'rolling.max-bytes'` (default 128MiB) and
//!   `'rolling.interval'` (default 60s).
//! - Visibility: each file is uploaded as a multipart upload that completes
//!   when the file is closed, so readers never see a partial file. Rows of
//!   checkpointed jobs are staged and published with their partition's
//!   checkpoint instead ([`exactly_once`]).
//! - Latency: from each `write` to its file's commit, logged at `close()` as
//!   one `parquet: commit latency …` line (see [`latency`]).

mod exactly_once;
mod latency;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{Array, ArrayRef, Int64Array, RecordBatch, StringArray, UInt32Array};
use arrow::compute::{cast, take};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use async_trait::async_trait;
use chrono::DateTime;
use object_store::buffered::BufWriter;
use object_store::path::Path as StorePath;
use parquet::arrow::AsyncArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use spindle_sql::ddl::{Options, TableDef};

use self::latency::{CommitLatency, PendingWrites};
use super::{Origin, Sink};
use crate::checkpoint::StagedFile;
use crate::error::{EngineError, Result};
use crate::storage::{self, Location};

const MICROS_PER_HOUR: i64 = 3_600_000_000;

/// How rows are spread over directories.
#[derive(Debug, Clone, PartialEq)]
enum Partitioning {
    /// `date=…/hour=…` from the timestamp column at this index.
    Hourly(usize),
    /// `col=value/…` from these columns.
    Columns(Vec<usize>),
    /// One directory.
    None,
}

struct OpenFile {
    writer: AsyncArrowWriter<BufWriter>,
    path: StorePath,
    /// For staged files: whose they are and where publishing puts them.
    target: Option<(Origin, StorePath)>,
    opened: Instant,
    writes: PendingWrites,
}

impl std::fmt::Debug for OpenFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenFile")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// Writes a table's rows as Parquet files.
#[derive(Debug)]
pub struct ParquetSink {
    name: String,
    location: Location,
    schema: SchemaRef,
    partitioning: Partitioning,
    properties: WriterProperties,
    max_bytes: u64,
    interval: Duration,
    open: BTreeMap<String, OpenFile>,
    run_id: String,
    files: u64,
    latency: CommitLatency,
    job: String,
    /// Completed files per origin (source, partition), not yet checkpointed.
    staged: BTreeMap<(String, i32), Vec<StagedFile>>,
    /// The writes of staged files, by staged path: their latency ends when
    /// publishing makes them visible, not when they are complete.
    staged_writes: BTreeMap<String, PendingWrites>,
    /// Files started per origin in its current epoch.
    sequence: BTreeMap<(String, i32), (u64, u64)>,
}

impl ParquetSink {
    /// Reads the options and opens the destination.
    pub fn open(table: &TableDef, options: &mut Options, job: &str) -> Result<Self> {
        let path = options.pull_required("path")?;
        let schema = Arc::new(file_schema(&table.schema()));
        let partitioning = partitioning(table, options)?;
        let level = options.pull_u64("compression.level")?.unwrap_or(3) as i32;
        let zstd = ZstdLevel::try_new(level).map_err(|e| {
            EngineError::from(options.error_at(
                "compression.level",
                &e.to_string(),
                options.table_location(),
            ))
        })?;
        // Row groups of 64k rows: the writer holds a row group in memory
        // until it is full, per open file (one per hour of event time during
        // a replay), so parquet's default of 1M rows cost a replay ~100 MB.
        let properties = WriterProperties::builder()
            .set_compression(Compression::ZSTD(zstd))
            .set_max_row_group_row_count(Some(65_536))
            .build();
        let max_bytes = options
            .pull_bytes("rolling.max-bytes")?
            .unwrap_or(128 << 20);
        let interval = options
            .pull_duration("rolling.interval")?
            .unwrap_or(Duration::from_secs(60));
        let location = storage::open(&path)?;
        let started = chrono::Utc::now();
        Ok(Self {
            name: table.name.clone(),
            location,
            schema,
            partitioning,
            properties,
            max_bytes,
            interval,
            open: BTreeMap::new(),
            run_id: format!(
                "{}-{}",
                started.format("%Y%m%dT%H%M%S%3f"),
                std::process::id()
            ),
            files: 0,
            latency: CommitLatency::default(),
            job: job.to_string(),
            staged: BTreeMap::new(),
            staged_writes: BTreeMap::new(),
            sequence: BTreeMap::new(),
        })
    }

    /// Rows of `batch` per partition directory.
    fn split(&self, batch: &RecordBatch) -> Result<Vec<(String, RecordBatch)>> {
        let keys = match &self.partitioning {
            Partitioning::None => return Ok(vec![(String::new(), batch.clone())]),
            Partitioning::Hourly(column) => hourly_keys(batch.column(*column))?,
            Partitioning::Columns(columns) => column_keys(batch, columns)?,
        };
        let mut groups: BTreeMap<String, Vec<u32>> = BTreeMap::new();
        for (row, key) in keys.into_iter().enumerate() {
            groups.entry(key).or_default().push(row as u32);
        }
        groups
            .into_iter()
            .map(|(key, rows)| {
                let indices = UInt32Array::from(rows);
                let columns = batch
                    .columns()
                    .iter()
                    .map(|c| take(c, &indices, None))
                    .collect::<std::result::Result<Vec<_>, _>>()
                    .map_err(|e| EngineError::Internal(e.to_string()))?;
                let part = RecordBatch::try_new(batch.schema(), columns)
                    .map_err(|e| EngineError::Internal(e.to_string()))?;
                Ok((key, part))
            })
            .collect()
    }

    fn new_file(&mut self, key: &str, origin: Option<&Origin>) -> Result<OpenFile> {
        self.files += 1;
        let mut dir = self.location.prefix.clone();
        for part in key.split('/').filter(|p| !p.is_empty()) {
            dir = dir.clone().join(part);
        }
        let (path, target) = match origin {
            None => {
                let name = format!("part-{}-{:06}.parquet", self.run_id, self.files);
                (dir.join(name.as_str()), None)
            }
            Some(origin) => {
                let counter = self
                    .sequence
                    .entry((origin.source.clone(), origin.partition))
                    .or_insert((origin.epoch, 0));
                if counter.0 != origin.epoch {
                    *counter = (origin.epoch, 0);
                }
                counter.1 += 1;
                let (staged, target) =
                    exactly_once::paths(&self.location.prefix, &self.job, origin, counter.1, &dir);
                (staged, Some((origin.clone(), target)))
            }
        };
        let upload = BufWriter::new(Arc::clone(&self.location.store), path.clone());
        let writer = AsyncArrowWriter::try_new(
            upload,
            Arc::clone(&self.schema),
            Some(self.properties.clone()),
        )
        .map_err(|source| EngineError::Parquet {
            context: format!("creating {}", self.location.display(&path)),
            source,
        })?;
        Ok(OpenFile {
            writer,
            path,
            target,
            opened: Instant::now(),
            writes: PendingWrites::default(),
        })
    }

    /// Completes the file under `key`, making it visible; `at_close` when
    /// the sink is closing (its latency is then counted apart).
    async fn finish(&mut self, key: &str, at_close: bool) -> Result<()> {
        if let Some(file) = self.open.remove(key) {
            let path = file.path.clone();
            file.writer
                .close()
                .await
                .map_err(|source| EngineError::Parquet {
                    context: format!("completing {}", self.location.display(&path)),
                    source,
                })?;
            tracing::debug!(sink = %self.name, %path, "parquet file complete");
            let Some((origin, target)) = file.target else {
                self.latency
                    .committed(file.writes, Instant::now(), at_close);
                return Ok(());
            };
            self.staged_writes.insert(path.to_string(), file.writes);
            self.staged
                .entry((origin.source, origin.partition))
                .or_default()
                .push(StagedFile {
                    sink: self.name.clone(),
                    staged: path.to_string(),
                    target: target.to_string(),
                });
        }
        Ok(())
    }
}

impl ParquetSink {
    /// Writes `batch` into the open files of its partition directories (of
    /// `origin`'s own files, for checkpointed rows).
    async fn write_keyed(&mut self, origin: Option<&Origin>, batch: RecordBatch) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let emitted = Instant::now();
        let batch = to_file_schema(&batch, &self.schema)?;
        for (dir, part) in self.split(&batch)? {
            let key = match origin {
                None => dir.clone(),
                Some(o) => format!("{}\u{1}{}\u{1}{dir}", o.source, o.partition),
            };
            if !self.open.contains_key(&key) {
                let file = self.new_file(&dir, origin)?;
                self.open.insert(key.clone(), file);
            }
            let Some(file) = self.open.get_mut(&key) else {
                continue;
            };
            file.writer
                .write(&part)
                .await
                .map_err(|source| EngineError::Parquet {
                    context: format!("writing {}", self.location.display(&file.path)),
                    source,
                })?;
            file.writes.push(emitted, part.num_rows() as u64);
            if file.writer.bytes_written() as u64 + file.writer.in_progress_size() as u64
                >= self.max_bytes
            {
                self.finish(&key, false).await?;
            }
        }
        Ok(())
    }
}

#[async_trait]
impl Sink for ParquetSink {
    async fn write(&mut self, batch: RecordBatch) -> Result<()> {
        self.write_keyed(None, batch).await
    }

    async fn write_from(&mut self, origin: &Origin, batch: RecordBatch) -> Result<()> {
        self.write_keyed(Some(origin), batch).await
    }

    async fn stage(&mut self, origin: &Origin) -> Result<Vec<StagedFile>> {
        let mine: Vec<String> = self
            .open
            .iter()
            .filter(|(_, f)| {
                f.target.as_ref().is_some_and(|(o, _)| {
                    o.source == origin.source && o.partition == origin.partition
                })
            })
            .map(|(k, _)| k.clone())
            .collect();
        for key in mine {
            self.finish(&key, false).await?;
        }
        Ok(self
            .staged
            .remove(&(origin.source.clone(), origin.partition))
            .unwrap_or_default())
    }

    async fn publish(&mut self, files: &[StagedFile]) -> Result<()> {
        let mine: Vec<StagedFile> = files
            .iter()
            .filter(|f| f.sink == self.name)
            .cloned()
            .collect();
        exactly_once::publish(self.location.store.as_ref(), &mine).await?;
        let published = Instant::now();
        for file in &mine {
            if let Some(writes) = self.staged_writes.remove(&file.staged) {
                self.latency.committed(writes, published, false);
            }
        }
        Ok(())
    }

    async fn discard_staged(&mut self, origin: &Origin) -> Result<()> {
        let dir = exactly_once::staging_dir(&self.location.prefix, &self.job, origin);
        let removed = exactly_once::discard(self.location.store.as_ref(), &dir).await?;
        let prefix = dir.to_string();
        self.staged_writes
            .retain(|path, _| !path.starts_with(&prefix));
        if removed > 0 {
            tracing::info!(
                sink = %self.name, %dir, removed,
                "removed output staged after the restored checkpoint (it is written again)"
            );
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<()> {
        let due: Vec<String> = self
            .open
            .iter()
            .filter(|(_, f)| f.opened.elapsed() >= self.interval)
            .map(|(k, _)| k.clone())
            .collect();
        for key in due {
            self.finish(&key, false).await?;
        }
        Ok(())
    }

    async fn commit(&mut self) -> Result<()> {
        let keys: Vec<String> = self.open.keys().cloned().collect();
        for key in keys {
            self.finish(&key, false).await?;
        }
        Ok(())
    }

    async fn close(&mut self) -> Result<()> {
        let keys: Vec<String> = self.open.keys().cloned().collect();
        for key in keys {
            self.finish(&key, true).await?;
        }
        tracing::info!("{}", self.latency.summary_line(&self.name));
        Ok(())
    }
}

fn partitioning(table: &TableDef, options: &mut Options) -> Result<Partitioning> {
    let schema = table.schema();
    let index_of = |options: &Options, key: &str, name: &str| {
        schema.index_of(name).map_err(|_| {
            EngineError::from(options.error_at(
                key,
                &format!("no column `{name}` in `{}`", table.name),
                options.table_location(),
            ))
        })
    };
    if let Some(columns) = options.pull_str("partition_by") {
        let indices = columns
            .split(',')
            .map(|c| index_of(options, "partition_by", c.trim()))
            .collect::<Result<Vec<_>>>()?;
        return Ok(Partitioning::Columns(indices));
    }
    if options.pull_str("partitioning").as_deref() == Some("none") {
        return Ok(Partitioning::None);
    }
    match options.pull_str("partition.time-column") {
        Some(name) => Ok(Partitioning::Hourly(index_of(
            options,
            "partition.time-column",
            &name,
        )?)),
        None => Ok(schema
            .fields()
            .iter()
            .position(|f| matches!(f.data_type(), DataType::Timestamp(..)))
            .map_or(Partitioning::None, Partitioning::Hourly)),
    }
}

/// The schema files are written with: timestamps as microseconds UTC.
fn file_schema(schema: &Schema) -> Schema {
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| match f.data_type() {
            DataType::Timestamp(_, _) => Field::new(
                f.name(),
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                f.is_nullable(),
            ),
            _ => f.as_ref().clone(),
        })
        .collect();
    Schema::new(fields)
}

fn to_file_schema(batch: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch> {
    let columns = batch
        .columns()
        .iter()
        .zip(schema.fields())
        .map(|(c, f)| {
            if c.data_type() == f.data_type() {
                Ok(Arc::clone(c))
            } else {
                cast(c, f.data_type())
            }
        })
        .collect::<std::result::Result<Vec<ArrayRef>, _>>()
        .map_err(|e| EngineError::Internal(format!("casting to the file schema: {e}")))?;
    RecordBatch::try_new(Arc::clone(schema), columns)
        .map_err(|e| EngineError::Internal(e.to_string()))
}

/// `date=YYYY-MM-DD/hour=HH` per row of a microsecond timestamp column.
fn hourly_keys(column: &ArrayRef) -> Result<Vec<String>> {
    let ints = cast(column, &DataType::Int64).map_err(|e| EngineError::Internal(e.to_string()))?;
    let ints = ints
        .as_any()
        .downcast_ref::<Int64Array>()
        .ok_or_else(|| EngineError::Internal("partition time column is not a timestamp".into()))?;
    let mut cache: BTreeMap<i64, String> = BTreeMap::new();
    Ok((0..ints.len())
        .map(|i| {
            if ints.is_null(i) {
                return "date=__null__/hour=__null__".to_string();
            }
            let hour = ints.value(i).div_euclid(MICROS_PER_HOUR);
            cache
                .entry(hour)
                .or_insert_with(|| {
                    DateTime::from_timestamp(hour * 3600, 0)
                        .map(|t| t.format("date=%Y-%m-%d/hour=%H").to_string())
                        .unwrap_or_else(|| "date=__invalid__/hour=__invalid__".into())
                })
                .clone()
        })
        .collect())
}

/// `col=value/…` per row, values escaped like Hive.
fn column_keys(batch: &RecordBatch, columns: &[usize]) -> Result<Vec<String>> {
    let strings = columns
        .iter()
        .map(|&c| {
            let array = cast(batch.column(c), &DataType::Utf8)
                .map_err(|e| EngineError::Internal(e.to_string()))?;
            Ok(array.as_any().downcast_ref::<StringArray>().cloned())
        })
        .collect::<Result<Vec<_>>>()?;
    let schema = batch.schema();
    Ok((0..batch.num_rows())
        .map(|row| {
            columns
                .iter()
                .zip(&strings)
                .map(|(&c, values)| {
                    let value = match values {
                        Some(v) if !v.is_null(row) => escape_path_value(v.value(row)),
                        _ => "__HIVE_DEFAULT_PARTITION__".to_string(),
                    };
                    format!("{}={value}", schema.field(c).name())
                })
                .collect::<Vec<_>>()
                .join("/")
        })
        .collect())
}

fn escape_path_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if c.is_control() || "/\\=%:#?*\"'[]^{}".contains(c) {
            out.push_str(&format!("%{:02X}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hive_values_escape_path_characters() {
        assert_eq!(escape_path_value("line/1=a%"), "line%2F1%3Da%25");
        assert_eq!(escape_path_value("m-0001"), "m-0001");
    }

    #[test]
    fn hourly_keys_name_date_and_hour() {
        let micros: ArrayRef = Arc::new(Int64Array::from(vec![0, MICROS_PER_HOUR * 25 + 5]));
        let keys = hourly_keys(&micros).unwrap();
        assert_eq!(
            keys,
            vec!["date=1970-01-01/hour=00", "date=1970-01-02/hour=01"]
        );
    }
}
