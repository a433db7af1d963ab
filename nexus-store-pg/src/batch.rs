//! Events as the column arrays an append statement binds: one array per
//! column, so a batch of any size is one statement with a fixed text (one
//! prepared statement), inserted with `UNNEST`.

use std::collections::{BTreeMap, HashSet};

use nexus_core::{NewEvent, StoreError, StreamId};
use sqlx::Postgres;
use sqlx::postgres::PgArguments;
use sqlx::query::Query;
use uuid::Uuid;

use crate::PayloadFormat;
use crate::wire::{JsonText, Timestamp, is_jsonb_safe};

/// The columns of a run of events, borrowed from them.
pub(crate) struct Batch<'a> {
    pub(crate) ids: Vec<Uuid>,
    pub(crate) types: Vec<&'a str>,
    pub(crate) schema_versions: Vec<i64>,
    /// The payloads stored as `jsonb` (NULL where `bytes` holds one).
    pub(crate) json: Vec<Option<JsonText<'a>>>,
    /// The payloads stored as `bytea` (NULL where `json` holds one).
    pub(crate) bytes: Vec<Option<&'a [u8]>>,
    pub(crate) correlations: Vec<Option<Uuid>>,
    pub(crate) causations: Vec<Option<Uuid>>,
    pub(crate) occurred: Vec<Timestamp>,
    /// NULL for an event without headers.
    pub(crate) headers: Vec<Option<sqlx::types::Json<&'a BTreeMap<String, String>>>>,
    format: PayloadFormat,
}

impl<'a> Batch<'a> {
    /// The arrays of one stream's `events`; a batch that repeats an event
    /// id is refused.
    pub(crate) fn new(
        stream: &StreamId,
        events: &'a [NewEvent],
        format: PayloadFormat,
    ) -> Result<Self, StoreError> {
        check_ids(stream, events)?;
        let mut batch = Self::with_capacity(events.len(), format);
        batch.extend(events);
        Ok(batch)
    }

    /// Empty arrays with room for `events` events.
    pub(crate) fn with_capacity(events: usize, format: PayloadFormat) -> Self {
        Self {
            ids: Vec::with_capacity(events),
            types: Vec::with_capacity(events),
            schema_versions: Vec::with_capacity(events),
            json: Vec::with_capacity(events),
            bytes: Vec::with_capacity(events),
            correlations: Vec::with_capacity(events),
            causations: Vec::with_capacity(events),
            occurred: Vec::with_capacity(events),
            headers: Vec::with_capacity(events),
            format,
        }
    }

    /// Appends the columns of `events` (of some stream) to the arrays.
    pub(crate) fn extend(&mut self, events: &'a [NewEvent]) {
        for event in events {
            let metadata = &event.metadata;
            let json = self.format == PayloadFormat::Json && is_jsonb_safe(&event.payload);
            self.ids.push(metadata.event_id);
            self.types.push(event.event_type.as_str());
            self.schema_versions.push(i64::from(event.schema_version));
            self.json.push(json.then_some(JsonText(&event.payload)));
            self.bytes.push((!json).then_some(event.payload.as_slice()));
            self.correlations.push(metadata.correlation_id);
            self.causations.push(metadata.causation_id);
            self.occurred.push(Timestamp(metadata.timestamp));
            self.headers.push(
                (!metadata.headers.is_empty()).then_some(sqlx::types::Json(&metadata.headers)),
            );
        }
    }
}

impl Batch<'_> {
    /// Binds the columns, in the order every append statement takes them
    /// (ids, types, schema versions, JSON and byte payloads, correlation
    /// and causation ids, timestamps, headers).
    pub(crate) fn bind_to<'q>(
        &'q self,
        query: Query<'q, Postgres, PgArguments>,
    ) -> Query<'q, Postgres, PgArguments> {
        query
            .bind(&self.ids)
            .bind(&self.types)
            .bind(&self.schema_versions)
            .bind(&self.json)
            .bind(&self.bytes)
            .bind(&self.correlations)
            .bind(&self.causations)
            .bind(&self.occurred)
            .bind(&self.headers)
    }
}

/// Refuses a batch of `stream` that repeats an event id: it could never be
/// stored, and no retry of it could be told from a reused id.
pub(crate) fn check_ids(stream: &StreamId, events: &[NewEvent]) -> Result<(), StoreError> {
    if events.len() < 2 {
        return Ok(());
    }
    let mut seen = HashSet::with_capacity(events.len());
    match events
        .iter()
        .map(|e| e.metadata.event_id)
        .find(|id| !seen.insert(*id))
    {
        Some(event_id) => Err(StoreError::DuplicateEventId {
            stream: stream.clone(),
            event_id,
        }),
        None => Ok(()),
    }
}
