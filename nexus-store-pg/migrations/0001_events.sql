-- The event log. Names are unqualified: `migrate()` runs this file with the
-- configured schema first on the search_path.
CREATE TABLE events (
    -- Global log position = (tx_id, seq). The sequence alone commits out of
    -- order under concurrent transactions; the transaction id lets readers stop
    -- at pg_snapshot_xmin(pg_current_snapshot()), below which every
    -- transaction has finished, so a late commit causes lag, never a skip.
    seq            bigint GENERATED ALWAYS AS IDENTITY,
    tx_id          xid8        NOT NULL DEFAULT pg_current_xact_id(),
    stream_id      text        NOT NULL,
    version        bigint      NOT NULL CHECK (version >= 1),
    event_id       uuid        NOT NULL,
    event_type     text        NOT NULL,
    schema_version bigint      NOT NULL,
    payload        bytea       NOT NULL,
    correlation_id uuid,
    causation_id   uuid,
    occurred_at    timestamptz NOT NULL,
    recorded_at    timestamptz NOT NULL DEFAULT now(),
    -- Reading a stream is a range scan of this key; a second writer of a
    -- version fails on it with 23505.
    CONSTRAINT events_stream_version_key PRIMARY KEY (stream_id, version),
    -- Event ids make a retried append idempotent.
    CONSTRAINT events_event_id_key UNIQUE (event_id)
);

-- Reading the global log in position order.
CREATE UNIQUE INDEX events_position_idx ON events (tx_id, seq);
