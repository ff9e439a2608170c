//! Arrow/Parquet tables of the lake: a stream's typed columns plus
//! `_offset`, `_partition`, `_ingest_time`; and the dead-letter table.

use std::sync::Arc;

use arrow_array::builder::{
    BinaryBuilder, BooleanBuilder, Float64Builder, Int64Builder, StringBuilder,
    TimestampMicrosecondBuilder, UInt32Builder, UInt64Builder,
};
use arrow_array::{
    Array, ArrayRef, BinaryArray, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray, UInt32Array, UInt64Array,
};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use radar_core::decode::{Record, Value};
use radar_core::schema::{FieldType, StreamSchema};

use crate::LakeError;

pub const OFFSET: &str = "_offset";
pub const PARTITION: &str = "_partition";
pub const INGEST_TIME: &str = "_ingest_time";
/// Event time column of streams that declare no timestamp field.
pub const EVENT_TIME: &str = "_event_time";

/// A captured event: where it was in the log and what it decoded to.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub partition: u32,
    pub offset: u64,
    pub ingest_time: i64,
    pub record: Record,
}

/// A refused event, as the lake keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadRow {
    pub partition: u32,
    pub offset: u64,
    pub ingest_time: i64,
    pub reason: String,
    pub message: String,
    pub field: Option<String>,
    pub raw: Vec<u8>,
}

/// A label, as the lake keeps it: `seq` orders labels of a stream as
/// they were recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelRow {
    pub seq: u64,
    pub recorded_at: i64,
    pub label: radar_core::labels::Label,
}

pub fn label_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("seq", DataType::UInt64, false),
        Field::new("event_id", DataType::Utf8, false),
        Field::new("fraud", DataType::Boolean, false),
        Field::new("kind", DataType::Utf8, true),
        Field::new("source", DataType::Utf8, false),
        Field::new("author", DataType::Utf8, true),
        Field::new("known_at", ts_type(), false),
        Field::new("recorded_at", ts_type(), false),
    ]))
}

pub fn label_batch(rows: &[&LabelRow]) -> Result<RecordBatch, LakeError> {
    let n = rows.len();
    let mut seq = UInt64Builder::with_capacity(n);
    let mut id = StringBuilder::new();
    let mut fraud = BooleanBuilder::with_capacity(n);
    let mut kind = StringBuilder::new();
    let mut source = StringBuilder::new();
    let mut author = StringBuilder::new();
    let mut known = TimestampMicrosecondBuilder::with_capacity(n).with_timezone("UTC");
    let mut recorded = TimestampMicrosecondBuilder::with_capacity(n).with_timezone("UTC");
    for r in rows {
        seq.append_value(r.seq);
        id.append_value(&r.label.event_id);
        fraud.append_value(r.label.fraud);
        kind.append_option(r.label.kind.as_deref());
        source.append_value(&r.label.source);
        author.append_option(r.label.author.as_deref());
        known.append_value(r.label.known_at);
        recorded.append_value(r.recorded_at);
    }
    let cols: Vec<ArrayRef> = vec![
        Arc::new(seq.finish()),
        Arc::new(id.finish()),
        Arc::new(fraud.finish()),
        Arc::new(kind.finish()),
        Arc::new(source.finish()),
        Arc::new(author.finish()),
        Arc::new(known.finish()),
        Arc::new(recorded.finish()),
    ];
    RecordBatch::try_new(label_schema(), cols).map_err(arrow)
}

pub fn label_rows(batch: &RecordBatch, out: &mut Vec<LabelRow>) -> Result<(), LakeError> {
    let seq: &UInt64Array = column(batch, "seq")?;
    let id: &StringArray = column(batch, "event_id")?;
    let fraud: &BooleanArray = column(batch, "fraud")?;
    let kind: &StringArray = column(batch, "kind")?;
    let source: &StringArray = column(batch, "source")?;
    let author: &StringArray = column(batch, "author")?;
    let known: &TimestampMicrosecondArray = column(batch, "known_at")?;
    let recorded: &TimestampMicrosecondArray = column(batch, "recorded_at")?;
    let opt = |a: &StringArray, i: usize| a.is_valid(i).then(|| a.value(i).to_owned());
    for i in 0..batch.num_rows() {
        out.push(LabelRow {
            seq: seq.value(i),
            recorded_at: recorded.value(i),
            label: radar_core::labels::Label {
                event_id: id.value(i).to_owned(),
                fraud: fraud.value(i),
                kind: opt(kind, i),
                source: source.value(i).to_owned(),
                known_at: known.value(i),
                author: opt(author, i),
            },
        });
    }
    Ok(())
}

fn ts_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

pub fn time_column(schema: &StreamSchema) -> String {
    schema
        .timestamp
        .clone()
        .unwrap_or_else(|| EVENT_TIME.to_owned())
}

/// The Arrow schema of a stream's raw table.
pub fn raw_schema(schema: &StreamSchema) -> SchemaRef {
    let mut fields = vec![Field::new(time_column(schema), ts_type(), false)];
    if let Some(id) = &schema.id {
        fields.push(Field::new(id, DataType::Utf8, false));
    }
    if let Some(e) = &schema.entity {
        fields.push(Field::new(e, DataType::Utf8, false));
    }
    for f in &schema.fields {
        let ty = match f.ty {
            FieldType::Float => DataType::Float64,
            FieldType::Int => DataType::Int64,
            FieldType::Bool => DataType::Boolean,
            FieldType::Category => DataType::Utf8,
        };
        fields.push(Field::new(&f.name, ty, true));
    }
    fields.push(Field::new(OFFSET, DataType::UInt64, false));
    fields.push(Field::new(PARTITION, DataType::UInt32, false));
    fields.push(Field::new(INGEST_TIME, ts_type(), false));
    Arc::new(Schema::new(fields))
}

pub fn dead_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new(OFFSET, DataType::UInt64, false),
        Field::new(PARTITION, DataType::UInt32, false),
        Field::new(INGEST_TIME, ts_type(), false),
        Field::new("reason", DataType::Utf8, false),
        Field::new("message", DataType::Utf8, false),
        Field::new("field", DataType::Utf8, true),
        Field::new("raw", DataType::Binary, false),
    ]))
}

fn arrow(e: arrow_schema::ArrowError) -> LakeError {
    LakeError::Arrow(e)
}

/// Builds the raw table's batch for `rows`.
pub fn raw_batch(schema: &StreamSchema, rows: &[&Row]) -> Result<RecordBatch, LakeError> {
    let n = rows.len();
    let mut cols: Vec<ArrayRef> = Vec::new();
    let mut ts = TimestampMicrosecondBuilder::with_capacity(n).with_timezone("UTC");
    for r in rows {
        ts.append_value(r.record.ts);
    }
    cols.push(Arc::new(ts.finish()));
    let strings = |get: &dyn Fn(&Row) -> Option<&str>| {
        let mut b = StringBuilder::with_capacity(n, n * 16);
        for r in rows {
            b.append_option(get(r));
        }
        Arc::new(b.finish()) as ArrayRef
    };
    if schema.id.is_some() {
        cols.push(strings(&|r| r.record.id.as_deref()));
    }
    if schema.entity.is_some() {
        cols.push(strings(&|r| r.record.entity.as_deref()));
    }
    for (i, f) in schema.fields.iter().enumerate() {
        let col: ArrayRef = match f.ty {
            FieldType::Float => {
                let mut b = Float64Builder::with_capacity(n);
                for r in rows {
                    b.append_option(r.record.values[i].as_f64());
                }
                Arc::new(b.finish())
            }
            FieldType::Int => {
                let mut b = Int64Builder::with_capacity(n);
                for r in rows {
                    b.append_option(match r.record.values[i] {
                        Value::Int(v) => Some(v),
                        _ => None,
                    });
                }
                Arc::new(b.finish())
            }
            FieldType::Bool => {
                let mut b = BooleanBuilder::with_capacity(n);
                for r in rows {
                    b.append_option(match r.record.values[i] {
                        Value::Bool(v) => Some(v),
                        _ => None,
                    });
                }
                Arc::new(b.finish())
            }
            FieldType::Category => strings(&|r: &Row| match &r.record.values[i] {
                Value::Str(s) => Some(s),
                _ => None,
            }),
        };
        cols.push(col);
    }
    let mut off = UInt64Builder::with_capacity(n);
    let mut part = UInt32Builder::with_capacity(n);
    let mut ingest = TimestampMicrosecondBuilder::with_capacity(n).with_timezone("UTC");
    for r in rows {
        off.append_value(r.offset);
        part.append_value(r.partition);
        ingest.append_value(r.ingest_time);
    }
    cols.push(Arc::new(off.finish()));
    cols.push(Arc::new(part.finish()));
    cols.push(Arc::new(ingest.finish()));
    RecordBatch::try_new(raw_schema(schema), cols).map_err(arrow)
}

pub fn dead_batch(rows: &[&DeadRow]) -> Result<RecordBatch, LakeError> {
    let n = rows.len();
    let mut off = UInt64Builder::with_capacity(n);
    let mut part = UInt32Builder::with_capacity(n);
    let mut ingest = TimestampMicrosecondBuilder::with_capacity(n).with_timezone("UTC");
    let mut reason = StringBuilder::new();
    let mut message = StringBuilder::new();
    let mut field = StringBuilder::new();
    let mut raw = BinaryBuilder::new();
    for r in rows {
        off.append_value(r.offset);
        part.append_value(r.partition);
        ingest.append_value(r.ingest_time);
        reason.append_value(&r.reason);
        message.append_value(&r.message);
        field.append_option(r.field.as_deref());
        raw.append_value(&r.raw);
    }
    let cols: Vec<ArrayRef> = vec![
        Arc::new(off.finish()),
        Arc::new(part.finish()),
        Arc::new(ingest.finish()),
        Arc::new(reason.finish()),
        Arc::new(message.finish()),
        Arc::new(field.finish()),
        Arc::new(raw.finish()),
    ];
    RecordBatch::try_new(dead_schema(), cols).map_err(arrow)
}

fn column<'b, T: 'static>(batch: &'b RecordBatch, name: &str) -> Result<&'b T, LakeError> {
    batch
        .column_by_name(name)
        .and_then(|c| c.as_any().downcast_ref::<T>())
        .ok_or_else(|| LakeError::Format(format!("column `{name}` is missing or of another type")))
}

/// Reads a raw table's batch back into rows.
pub fn raw_rows(
    schema: &StreamSchema,
    batch: &RecordBatch,
    out: &mut Vec<Row>,
) -> Result<(), LakeError> {
    let ts: &TimestampMicrosecondArray = column(batch, &time_column(schema))?;
    let id: Option<&StringArray> = schema.id.as_deref().map(|c| column(batch, c)).transpose()?;
    let entity: Option<&StringArray> = schema
        .entity
        .as_deref()
        .map(|c| column(batch, c))
        .transpose()?;
    let off: &UInt64Array = column(batch, OFFSET)?;
    let part: &UInt32Array = column(batch, PARTITION)?;
    let ingest: &TimestampMicrosecondArray = column(batch, INGEST_TIME)?;
    enum Col<'a> {
        F(&'a Float64Array),
        I(&'a Int64Array),
        B(&'a BooleanArray),
        S(&'a StringArray),
    }
    let mut cols = Vec::with_capacity(schema.fields.len());
    for f in &schema.fields {
        cols.push(match f.ty {
            FieldType::Float => Col::F(column(batch, &f.name)?),
            FieldType::Int => Col::I(column(batch, &f.name)?),
            FieldType::Bool => Col::B(column(batch, &f.name)?),
            FieldType::Category => Col::S(column(batch, &f.name)?),
        });
    }
    out.reserve(batch.num_rows());
    for i in 0..batch.num_rows() {
        let values = cols
            .iter()
            .map(|c| match c {
                Col::F(a) if a.is_valid(i) => Value::Float(a.value(i)),
                Col::I(a) if a.is_valid(i) => Value::Int(a.value(i)),
                Col::B(a) if a.is_valid(i) => Value::Bool(a.value(i)),
                Col::S(a) if a.is_valid(i) => Value::Str(a.value(i).into()),
                _ => Value::Missing,
            })
            .collect();
        out.push(Row {
            partition: part.value(i),
            offset: off.value(i),
            ingest_time: ingest.value(i),
            record: Record {
                id: id.map(|a| a.value(i).into()),
                ts: ts.value(i),
                entity: entity.map(|a| a.value(i).into()),
                values,
            },
        });
    }
    Ok(())
}

pub fn dead_rows(batch: &RecordBatch, out: &mut Vec<DeadRow>) -> Result<(), LakeError> {
    let off: &UInt64Array = column(batch, OFFSET)?;
    let part: &UInt32Array = column(batch, PARTITION)?;
    let ingest: &TimestampMicrosecondArray = column(batch, INGEST_TIME)?;
    let reason: &StringArray = column(batch, "reason")?;
    let message: &StringArray = column(batch, "message")?;
    let field: &StringArray = column(batch, "field")?;
    let raw: &BinaryArray = column(batch, "raw")?;
    for i in 0..batch.num_rows() {
        out.push(DeadRow {
            partition: part.value(i),
            offset: off.value(i),
            ingest_time: ingest.value(i),
            reason: reason.value(i).to_owned(),
            message: message.value(i).to_owned(),
            field: field.is_valid(i).then(|| field.value(i).to_owned()),
            raw: raw.value(i).to_vec(),
        });
    }
    Ok(())
}
