//! The scorer's state, one part per partition of the stream's topic: the
//! feature engine's state, the online detector's, the next offset the part
//! covers, the last label folded in and the time alerts start from.
//!
//! Invariants:
//! - A part is a function of its partition's events (and labels) alone,
//!   in offset order: which worker held the partition, and how its events
//!   interleaved with other partitions', changes nothing. Training replays
//!   the lake the same way (per partition), so backfill and live rows stay
//!   bit for bit the same. Features keyed by another field than the entity
//!   (and category rarity) are therefore per-partition figures.
//! - A part is checkpointed whole, at the offset it covers, to the storage
//!   root (`state/<stream>/<group>/<partition>.ckpt`), so it can move to
//!   another worker with its partition; a worker never replaces a
//!   checkpoint another one wrote since its own last write (one that lost
//!   its partitions without knowing cannot undo its successor's progress,
//!   bar a race of one write).

use std::collections::BTreeMap;
use std::sync::Arc;

use radar_core::binary::{Envelope, Reader, Writer};
use radar_core::decode::Record;
use radar_core::features::FeatureEngine;
use radar_core::hash::EntityHasher;
use radar_core::schema::StreamSchema;
use radar_lake::storage::Blobs;

use crate::online::OnlineModel;

/// One partition's state.
#[derive(Debug)]
pub struct Part {
    pub engine: FeatureEngine,
    pub online: Option<OnlineModel>,
    /// The partition's next offset: every event before it is folded in.
    pub next: u64,
    /// The last label (seq of the stream's labels) folded in.
    pub labels_seq: u64,
    /// Log append time (UTC µs) from which events may alert; earlier ones
    /// build state only (backfill).
    pub alerts_from: i64,
}

/// The parts a worker holds, and what a part starts from.
#[derive(Debug)]
pub struct StreamState {
    schema: StreamSchema,
    /// A cold engine: what a fresh part starts from, and what scores an
    /// event whose partition this worker does not hold.
    template: FeatureEngine,
    /// The topic's partition count: which partition an entity's events go
    /// to (as the log places them).
    partitions: u32,
    parts: BTreeMap<u32, Part>,
}

impl StreamState {
    pub fn new(schema: StreamSchema, entities: EntityHasher, partitions: u32) -> StreamState {
        StreamState {
            template: FeatureEngine::new(schema.clone()).with_entity_hasher(entities),
            schema,
            partitions: partitions.max(1),
            parts: BTreeMap::new(),
        }
    }

    /// A part that has seen nothing.
    pub fn fresh(&self, alerts_from: i64) -> crate::error::Result<Part> {
        Ok(Part {
            engine: self.template.clone(),
            online: OnlineModel::from_schema(&self.schema)?,
            next: 0,
            labels_seq: 0,
            alerts_from,
        })
    }

    pub fn entity_hasher(&self) -> EntityHasher {
        self.template.entity_hasher()
    }

    pub fn label_keyer(&self) -> &radar_core::features::LabelKeyer {
        self.template.label_keyer()
    }

    /// The partition the log puts `record`'s events in (`None` for events
    /// without an entity: the log spreads those).
    pub fn partition_of(&self, record: &Record) -> Option<u32> {
        record
            .entity
            .as_deref()
            .map(|e| radar_log::partition_for(e.as_bytes(), self.partitions))
    }

    /// The part `record` belongs to, when this worker holds it. Events
    /// without an entity are spread over the partitions, so the history
    /// they share is each partition's: the first held one's here (the
    /// stream's, when its topic has one partition).
    pub fn part_of(&self, record: &Record) -> Option<(u32, &Part)> {
        match self.partition_of(record) {
            Some(p) => self.parts.get(&p).map(|part| (p, part)),
            None => self.parts.iter().next().map(|(&p, part)| (p, part)),
        }
    }

    /// Features of `record` from the state of its partition (cold when
    /// this worker does not hold it), changing nothing; the partition
    /// whose state was read, if held here.
    pub fn peek(&self, record: &Record, out: &mut [f64]) -> Option<u32> {
        match self.part_of(record) {
            Some((p, part)) => {
                part.engine.peek(record, out);
                Some(p)
            }
            None => {
                self.template.peek(record, out);
                None
            }
        }
    }

    pub fn part(&self, partition: u32) -> Option<&Part> {
        self.parts.get(&partition)
    }

    pub fn part_mut(&mut self, partition: u32) -> Option<&mut Part> {
        self.parts.get_mut(&partition)
    }

    pub fn parts(&self) -> impl Iterator<Item = (u32, &Part)> {
        self.parts.iter().map(|(&p, part)| (p, part))
    }

    pub fn parts_mut(&mut self) -> impl Iterator<Item = (u32, &mut Part)> {
        self.parts.iter_mut().map(|(&p, part)| (p, part))
    }

    pub fn held(&self) -> Vec<u32> {
        self.parts.keys().copied().collect()
    }

    pub fn insert(&mut self, partition: u32, part: Part) {
        self.parts.insert(partition, part);
    }

    pub fn remove(&mut self, partition: u32) -> Option<Part> {
        self.parts.remove(&partition)
    }

    /// Entities kept, over the parts held.
    pub fn entities(&self) -> usize {
        self.parts.values().map(|p| p.engine.entities()).sum()
    }

    /// A part as checkpoint bytes.
    pub fn encode(&self, partition: u32, part: &Part) -> Vec<u8> {
        let mut w = Writer::new();
        w.bytes(self.schema.name.as_bytes());
        w.u64(partition as u64);
        w.u64(part.next);
        w.u64(part.labels_seq);
        w.u64(part.alerts_from as u64);
        w.bytes(&part.engine.checkpoint());
        w.bytes(
            &part
                .online
                .as_ref()
                .map(OnlineModel::to_bytes)
                .unwrap_or_default(),
        );
        PART.seal(1, &w.into_bytes())
    }

    /// A part from checkpoint bytes, checked against the declaration.
    pub fn decode(&self, partition: u32, bytes: &[u8]) -> Result<Part, String> {
        let (_, payload) = PART.open(bytes).map_err(|e| e.to_string())?;
        let mut r = Reader::new(payload);
        let e = |e: radar_core::binary::DecodeError| e.to_string();
        let stream = r.bytes().map_err(e)?;
        if stream != self.schema.name.as_bytes() {
            return Err(format!(
                "it is stream `{}`'s, not `{}`'s",
                String::from_utf8_lossy(stream),
                self.schema.name
            ));
        }
        let held = r.u64().map_err(e)?;
        if held != partition as u64 {
            return Err(format!("it is partition {held}'s, not {partition}'s"));
        }
        let mut part = self.fresh(0).map_err(|e| e.to_string())?;
        part.next = r.u64().map_err(e)?;
        part.labels_seq = r.u64().map_err(e)?;
        part.alerts_from = r.u64().map_err(e)? as i64;
        part.engine
            .restore(r.bytes().map_err(e)?)
            .map_err(|e| e.to_string())?;
        let online = r.bytes().map_err(e)?;
        match (&mut part.online, online.is_empty()) {
            (Some(model), false) => model.restore(online)?,
            (None, true) => {}
            (Some(_), true) if part.next > 0 => {
                return Err(
                    "it has no online detector state, but the stream now declares one; \
                     remove it to rescore the partition from the start"
                        .into(),
                );
            }
            (Some(_), true) => {}
            (None, false) => {
                return Err(
                    "it holds an online detector's state, but the stream no longer declares one; \
                     remove it to rescore the partition from the start"
                        .into(),
                );
            }
        }
        r.finish().map_err(e)?;
        Ok(part)
    }
}

const PART: Envelope = Envelope {
    magic: *b"RADARPCP",
    what: "radar partition checkpoint",
    version: 1,
};

/// Where a stream's parts are checkpointed: a folder of the storage root
/// per (stream, consumer group).
#[derive(Clone)]
pub struct Checkpoints {
    blobs: Blobs,
    rt: tokio::runtime::Handle,
    /// The runtime `rt` belongs to, when these checkpoints brought their own.
    _own: Option<Arc<tokio::runtime::Runtime>>,
}

impl Checkpoints {
    pub fn open(
        root: &str,
        options: &[(String, String)],
        stream: &str,
        group: &str,
        rt: tokio::runtime::Handle,
    ) -> crate::error::Result<Checkpoints> {
        Ok(Checkpoints {
            blobs: Blobs::open(root, options, &format!("state/{stream}/{group}"))?,
            rt,
            _own: None,
        })
    }

    /// The same, on a runtime of their own (for callers without one).
    pub fn open_alone(
        root: &str,
        options: &[(String, String)],
        stream: &str,
        group: &str,
    ) -> crate::error::Result<Checkpoints> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .map_err(crate::error::PipelineError::io(
                "starting the checkpoints' runtime",
            ))?;
        let mut checkpoints = Checkpoints::open(root, options, stream, group, rt.handle().clone())?;
        checkpoints._own = Some(Arc::new(rt));
        Ok(checkpoints)
    }

    fn name(partition: u32) -> String {
        format!("{partition}.ckpt")
    }

    /// Where partition `partition`'s checkpoint is, for messages.
    pub fn describe(&self, partition: u32) -> String {
        self.blobs.describe(&Self::name(partition))
    }

    /// The checkpoint of `partition` and its version's tag, if any.
    pub fn load(&self, partition: u32) -> Result<Option<(Vec<u8>, Tag)>, radar_lake::LakeError> {
        let blobs = self.blobs.clone();
        block_on(
            &self.rt,
            async move { blobs.get(&Self::name(partition)).await },
        )
    }

    /// Writes the checkpoint of `partition`; the new version's tag.
    pub fn save(&self, partition: u32, bytes: Vec<u8>) -> Result<Tag, radar_lake::LakeError> {
        let blobs = self.blobs.clone();
        block_on(&self.rt, async move {
            blobs.put(&Self::name(partition), bytes).await
        })
    }

    /// The tag of the stored checkpoint of `partition`: `None` when there
    /// is none.
    pub fn tag(&self, partition: u32) -> Result<Option<Tag>, radar_lake::LakeError> {
        let blobs = self.blobs.clone();
        block_on(
            &self.rt,
            async move { blobs.tag(&Self::name(partition)).await },
        )
    }
}

/// Which version of a checkpoint is stored (the object's entity tag; `None`
/// when the store keeps none): a checkpoint whose tag is not the one its
/// holder last wrote was written by another worker since.
pub type Tag = Option<String>;

/// Runs `f` on `rt` from synchronous code, also from inside a runtime's
/// thread (where `block_on` would panic): then on a scoped thread.
fn block_on<T: Send>(
    rt: &tokio::runtime::Handle,
    f: impl std::future::Future<Output = T> + Send,
) -> T {
    if tokio::runtime::Handle::try_current().is_ok() {
        std::thread::scope(|s| {
            s.spawn(|| rt.block_on(f))
                .join()
                .unwrap_or_else(|p| std::panic::resume_unwind(p))
        })
    } else {
        rt.block_on(f)
    }
}

/// Shared between the scorer and its consumer's revoke hook.
pub type SharedState = Arc<std::sync::RwLock<StreamState>>;

#[cfg(test)]
mod tests {
    use super::*;

    fn schema(name: &str, online: bool) -> StreamSchema {
        let detector = if online {
            "[streams.S.detector]\nkind = \"half_space_trees\"\n"
        } else {
            ""
        };
        let text = format!(
            "[streams.S]\ntimestamp = \"ts\"\nentity = \"card\"\n[streams.S.fields]\nx = {{ type = \"float\" }}\n[[streams.S.features]]\nkind = \"raw\"\nfield = \"x\"\n{detector}"
        )
        .replace("streams.S", &format!("streams.{name}"));
        let (n, c) = radar_core::schema::parse_streams(&text)
            .unwrap()
            .into_iter()
            .next()
            .unwrap();
        c.build(&n).unwrap()
    }

    #[test]
    fn a_part_comes_back_as_it_was_saved() {
        let state = StreamState::new(schema("s", true), EntityHasher::default(), 4);
        let mut part = state.fresh(7).unwrap();
        part.next = 42;
        part.labels_seq = 3;
        let bytes = state.encode(2, &part);
        let back = state.decode(2, &bytes).unwrap();
        assert_eq!((back.next, back.labels_seq, back.alerts_from), (42, 3, 7));
        assert_eq!(back.engine.checkpoint(), part.engine.checkpoint());
        assert_eq!(
            back.online.as_ref().map(OnlineModel::to_bytes),
            part.online.as_ref().map(OnlineModel::to_bytes)
        );
    }

    #[test]
    fn a_checkpoint_of_another_partition_or_stream_is_refused() {
        let state = StreamState::new(schema("s", false), EntityHasher::default(), 4);
        let bytes = state.encode(1, &state.fresh(0).unwrap());
        let err = state.decode(2, &bytes).unwrap_err();
        assert!(err.contains("partition 1's, not 2's"), "{err}");
        let other = StreamState::new(schema("t", false), EntityHasher::default(), 4);
        let err = other.decode(1, &bytes).unwrap_err();
        assert!(err.contains("stream `s`'s, not `t`'s"), "{err}");
        assert!(state.decode(1, b"not a checkpoint").is_err());
    }

    #[test]
    fn an_online_detector_declared_after_scoring_began_is_refused() {
        let plain = StreamState::new(schema("s", false), EntityHasher::default(), 4);
        let mut part = plain.fresh(0).unwrap();
        part.next = 10;
        let bytes = plain.encode(0, &part);
        let online = StreamState::new(schema("s", true), EntityHasher::default(), 4);
        let err = online.decode(0, &bytes).unwrap_err();
        assert!(err.contains("declares one"), "{err}");
    }

    #[test]
    fn events_are_peeked_in_their_entitys_partition_when_held() {
        let mut state = StreamState::new(schema("s", false), EntityHasher::default(), 4);
        let record = |card: &str| Record {
            id: None,
            ts: 0,
            entity: Some(card.into()),
            values: Vec::new(),
        };
        let p = state.partition_of(&record("c1")).unwrap();
        assert_eq!(p, radar_log::partition_for(b"c1", 4));
        assert!(state.part_of(&record("c1")).is_none());
        state.insert(p, state.fresh(0).unwrap());
        assert_eq!(state.part_of(&record("c1")).map(|(q, _)| q), Some(p));
        assert_eq!(state.held(), vec![p]);
        assert!(state.remove(p).is_some());
        assert!(state.held().is_empty());
    }
}
