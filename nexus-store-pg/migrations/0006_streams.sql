-- Stream heads, JSON payloads, category reads, archiving, log epochs and the
-- schema's compatibility version. Names are unqualified: `migrate()` runs
-- this file with the configured schema first on the search_path.
--
-- A contract step: writers of 0005 and older do not maintain `streams`, so
-- stop them before this runs (the compatibility version below makes newer
-- binaries refuse nothing older; older binaries do not check it).
SET LOCAL lock_timeout = '5s';

-- The oldest release (by the newest migration it embeds) that may still
-- read and write this schema. An expand migration (new table, nullable
-- column, new index) leaves it; a contract migration (drop, rename, a new
-- rule every writer must follow) raises it to its own number. A binary
-- whose newest migration is below it refuses to start.
CREATE TABLE schema_compat (
    singleton         boolean NOT NULL DEFAULT true CHECK (singleton),
    oldest_compatible bigint  NOT NULL,
    CONSTRAINT schema_compat_pkey PRIMARY KEY (singleton)
);
INSERT INTO schema_compat (oldest_compatible) VALUES (6);

-- Ranges of the global log. A position is (epoch, tx_id, seq): when the
-- history forks (a restore, a promoted standby: a new timeline or another
-- cluster), `migrate()` opens a new epoch, so positions of the new history
-- sort after every old one although its transaction ids may be smaller.
CREATE TABLE log_epochs (
    epoch             integer     NOT NULL CHECK (epoch >= 0),
    system_identifier bigint,
    timeline          integer,
    started_at        timestamptz NOT NULL DEFAULT now(),
    reason            text        NOT NULL,
    CONSTRAINT log_epochs_pkey PRIMARY KEY (epoch)
);
INSERT INTO log_epochs (epoch, reason) VALUES (0, 'the log before epochs');

-- One row per stream: the head an append checks and moves in the same
-- statement that inserts the events.
CREATE TABLE streams (
    stream_id      text        NOT NULL,
    -- The category: everything before the first '-' of the id.
    aggregate_type text        NOT NULL,
    version        bigint      NOT NULL CHECK (version >= 0),
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    archived       boolean     NOT NULL DEFAULT false,
    CONSTRAINT streams_pkey PRIMARY KEY (stream_id)
);
-- Reads skip archived streams with a probe of this (small) index.
CREATE INDEX streams_archived_idx ON streams (stream_id) WHERE archived;

INSERT INTO streams (stream_id, aggregate_type, version, created_at, updated_at)
SELECT stream_id, split_part(stream_id, '-', 1), max(version), min(recorded_at), max(recorded_at)
FROM events GROUP BY stream_id;

-- Payloads: `payload` is jsonb for a JSON codec's payloads (queryable and
-- indexable), `payload_bytes` keeps anything else; exactly one is set.
-- Renaming and adding a nullable column only touch the catalog; existing
-- rows keep their bytes.
ALTER TABLE events RENAME COLUMN payload TO payload_bytes;
ALTER TABLE events ALTER COLUMN payload_bytes DROP NOT NULL;
ALTER TABLE events ADD COLUMN payload jsonb;
ALTER TABLE events
    ADD CONSTRAINT events_one_payload CHECK ((payload IS NULL) <> (payload_bytes IS NULL)) NOT VALID;

-- A constant default: catalog only, existing rows read as epoch 0.
ALTER TABLE events ADD COLUMN epoch integer NOT NULL DEFAULT 0;

-- The global log in position order, and one category's events in position
-- order.
CREATE UNIQUE INDEX events_log_idx ON events (epoch, tx_id, seq);
DROP INDEX events_position_idx;
CREATE INDEX events_category_idx ON events (split_part(stream_id, '-', 1), epoch, tx_id, seq);
