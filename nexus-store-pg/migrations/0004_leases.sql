-- Fenced shard leases. Names are unqualified: `migrate()` runs this file with
-- the configured schema first on the search_path.
--
-- How many shards the streams of this schema are spread over. The count is
-- part of the lease namespace: shard 3 of 16 and shard 3 of 32 hold different
-- streams, so every process of the schema must agree on it. One row only.
CREATE TABLE lease_config (
    singleton boolean NOT NULL DEFAULT true CHECK (singleton),
    shards    integer NOT NULL CHECK (shards >= 1),
    CONSTRAINT lease_config_pkey PRIMARY KEY (singleton)
);

-- One row per shard ever leased; rows are never deleted, so an epoch only
-- grows. A shard is held by `owner` while `expires_at` (the database's clock)
-- is in the future; a released shard has `expires_at` in the past.
CREATE TABLE leases (
    shard      integer     NOT NULL CHECK (shard >= 0),
    owner      text        NOT NULL,
    epoch      bigint      NOT NULL CHECK (epoch >= 1),
    expires_at timestamptz NOT NULL,
    CONSTRAINT leases_pkey PRIMARY KEY (shard),
    -- Not for lookups: it makes `epoch` a key column, so a takeover (which
    -- changes the epoch) needs the row's FOR UPDATE lock and waits for every
    -- in-flight fenced write, which holds FOR KEY SHARE on the row, while a
    -- renewal (which changes only `expires_at`) does not wait for them.
    CONSTRAINT leases_shard_epoch_key UNIQUE (shard, epoch)
);
