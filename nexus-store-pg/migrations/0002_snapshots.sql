-- Snapshots: a stream's folded state at a version.
CREATE TABLE snapshots (
    stream_id text        NOT NULL,
    version   bigint      NOT NULL,
    payload   bytea       NOT NULL,
    taken_at  timestamptz NOT NULL,
    CONSTRAINT snapshots_pkey PRIMARY KEY (stream_id, version)
);
