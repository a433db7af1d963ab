//! The coalesced append of several streams (`crate::coalesce`): one
//! statement and one transaction for all, built for the shape of its group
//! (which kinds of expectation it holds, and whether any append is fenced),
//! so a statement plans and starts only the parts its group uses: a group
//! of entities' `Exact` appends runs one `UPDATE` of heads and one
//! `INSERT` of events.
//!
//! Parameters: `$1` stream ids, `$2` expected versions (NULL for any), `$3`
//! event counts, `$4` fence shards and `$5` fence epochs (NULL for an
//! unfenced append), one element per stream, all of different streams;
//! `$6` the stream (1-based, as `$1`'s ordinality) and `$7` the place
//! within it (1-based) of each event, `$8`–`$16` the events' columns as in
//! a one-stream append.
//!
//! Each stream's fence is checked as a one-stream fenced append checks it
//! (its lease row locked `FOR KEY SHARE`), and its head written as a
//! one-stream append writes it, by the part of its kind of expectation. A
//! stream whose fence or head is refused (a stale version, an existing
//! stream for "no stream", an archived stream) gets no head row and so no
//! events, and the others are stored: one stream's refusal never fails
//! another. Returns `stream_id, epoch, version, tx_id, seq` per stored
//! event, and, when fenced, one row with a NULL version per stream its
//! fence refused.
//!
//! One store never has a stream in two coalesced statements at once, so
//! its statements never wait on each other's head locks; two processes
//! writing the same streams may deadlock (Postgres detects it and rolls one
//! back), and each append of that group is then run alone.

use nexus_core::ExpectedVersion;

const INPUT: &str = r"
input AS (
    SELECT * FROM UNNEST($1::text[], $2::int8[], $3::int8[], $4::int4[], $5::int8[])
        WITH ORDINALITY AS i(stream_id, expected, n_events, shard, epoch, idx)
)";

/// The fenced appends whose lease holds, and every unfenced one.
const FENCE: &str = r"
fence AS (
    SELECT i.idx FROM input AS i
    JOIN {schema}.leases AS l
      ON l.shard = i.shard AND l.epoch = i.epoch AND l.expires_at > clock_timestamp()
    FOR KEY SHARE OF l
),
allowed AS (
    SELECT * FROM input AS i WHERE i.shard IS NULL OR i.idx IN (SELECT idx FROM fence)
)";

const HEAD_NEW: &str = r"
head_new AS (
    INSERT INTO {schema}.streams (stream_id, aggregate_type, version)
    SELECT stream_id, split_part(stream_id, '-', 1), n_events
    FROM {source} WHERE expected = 0
    ORDER BY stream_id
    ON CONFLICT (stream_id) DO NOTHING
    RETURNING stream_id, version
)";

const HEAD_EXACT: &str = r"
head_exact AS (
    UPDATE {schema}.streams AS s
    SET version = s.version + a.n_events, updated_at = now()
    FROM {source} AS a
    WHERE s.stream_id = a.stream_id AND a.expected > 0 AND s.version = a.expected
      AND NOT s.archived
    RETURNING s.stream_id, s.version
)";

const HEAD_ANY: &str = r"
head_any AS (
    INSERT INTO {schema}.streams AS s (stream_id, aggregate_type, version)
    SELECT stream_id, split_part(stream_id, '-', 1), n_events
    FROM {source} WHERE expected IS NULL
    ORDER BY stream_id
    ON CONFLICT (stream_id) DO UPDATE
        SET version = s.version + excluded.version, updated_at = now()
        WHERE NOT s.archived
    RETURNING s.stream_id, s.version
)";

/// Each written head with the version its events start after.
const HEAD: &str = r"
head AS (
    SELECT a.idx, h.stream_id, h.version - a.n_events AS base
    FROM ({heads}) AS h
    JOIN {source} AS a ON a.stream_id = h.stream_id
)";

const INSERT_EVENTS: &str = r"
INSERT INTO {schema}.events
    (stream_id, version, event_id, event_type, schema_version, payload, payload_bytes,
     correlation_id, causation_id, occurred_at, headers)
SELECT head.stream_id, head.base + e.n, e.event_id, e.event_type, e.schema_version,
       e.payload, e.payload_bytes, e.correlation_id, e.causation_id, e.occurred_at,
       e.headers
FROM UNNEST($6::int8[], $7::int8[], $8::uuid[], $9::text[], $10::int8[], $11::jsonb[],
            $12::bytea[], $13::uuid[], $14::uuid[], $15::timestamptz[], $16::jsonb[])
         AS e(idx, n, event_id, event_type, schema_version, payload, payload_bytes,
              correlation_id, causation_id, occurred_at, headers)
JOIN head ON head.idx = e.idx
ORDER BY e.idx, e.n
RETURNING stream_id, epoch, version, tx_id, seq";

/// The rows of a fenced group: the stored events, then the refused fences.
const FENCED_RESULT: &str = r"
SELECT stream_id, epoch, version, tx_id, seq FROM appended
UNION ALL
SELECT stream_id, NULL, NULL, NULL, NULL FROM input
WHERE shard IS NOT NULL AND idx NOT IN (SELECT idx FROM fence)";

/// Which parts a group's statement needs, as bits: the kinds of
/// expectation it holds, and whether any append is fenced.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct GroupShape(u8);

impl GroupShape {
    const NEW: u8 = 1;
    const EXACT: u8 = 2;
    const ANY: u8 = 4;
    const FENCED: u8 = 8;

    /// Every shape, in index order.
    pub(crate) fn all() -> impl Iterator<Item = Self> {
        (0..16_u8).map(Self)
    }

    /// Adds one append of the group.
    pub(crate) fn add(&mut self, expected: ExpectedVersion, fenced: bool) {
        self.0 |= match expected.pinned() {
            None => Self::ANY,
            Some(0) => Self::NEW,
            Some(_) => Self::EXACT,
        };
        if fenced {
            self.0 |= Self::FENCED;
        }
    }

    /// The shape's place in [`all`](Self::all).
    pub(crate) fn index(self) -> usize {
        usize::from(self.0)
    }

    fn has(self, part: u8) -> bool {
        self.0 & part != 0
    }

    /// The statement of this shape (a template over `{schema}`).
    pub(crate) fn sql(self) -> String {
        let fenced = self.has(Self::FENCED);
        let source = if fenced { "allowed" } else { "input" };
        let parts: Vec<(&str, &str)> = [
            (self.has(Self::NEW), HEAD_NEW, "head_new"),
            (self.has(Self::EXACT), HEAD_EXACT, "head_exact"),
            (self.has(Self::ANY), HEAD_ANY, "head_any"),
        ]
        .into_iter()
        .filter(|(used, _, _)| *used)
        .map(|(_, cte, name)| (cte, name))
        .collect();
        if parts.is_empty() {
            // No append: a statement that writes nothing (never run).
            return "SELECT NULL::text, NULL::int4, NULL::int8, NULL::xid8, NULL::int8 WHERE false"
                .to_owned();
        }
        let heads = parts
            .iter()
            .map(|(_, name)| format!("SELECT * FROM {name}"))
            .collect::<Vec<_>>()
            .join(" UNION ALL ");
        let mut ctes = vec![INPUT.to_owned()];
        if fenced {
            ctes.push(FENCE.to_owned());
        }
        ctes.extend(parts.iter().map(|(cte, _)| (*cte).to_owned()));
        ctes.push(HEAD.replace("{heads}", &heads));
        let sql = if fenced {
            ctes.push(format!("appended AS ({INSERT_EVENTS})"));
            format!("WITH {} {FENCED_RESULT}", ctes.join(","))
        } else {
            format!("WITH {} {INSERT_EVENTS}", ctes.join(","))
        };
        sql.replace("{source}", source)
    }
}

#[cfg(test)]
mod tests {
    use super::GroupShape;
    use nexus_core::ExpectedVersion;

    #[test]
    fn a_shape_uses_only_the_parts_its_group_needs() {
        let mut shape = GroupShape::default();
        shape.add(ExpectedVersion::Exact(3), false);
        shape.add(ExpectedVersion::Exact(7), false);
        let sql = shape.sql();
        assert!(sql.contains("head_exact AS") && sql.contains("FROM input AS a"));
        assert!(!sql.contains("head_new") && !sql.contains("head_any") && !sql.contains("leases"));

        shape.add(ExpectedVersion::NoStream, true);
        let sql = shape.sql();
        assert!(sql.contains("head_new AS") && sql.contains("FOR KEY SHARE OF l"));
        assert!(sql.contains("FROM allowed AS a") && sql.contains("UNION ALL"));
        assert!(!sql.contains("FROM input AS a"));
    }

    #[test]
    fn every_shape_has_its_own_index() {
        let indexes: Vec<usize> = GroupShape::all().map(GroupShape::index).collect();
        assert_eq!(indexes, (0..16).collect::<Vec<_>>());
    }
}
