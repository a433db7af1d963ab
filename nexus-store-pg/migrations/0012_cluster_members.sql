-- Cluster membership (an expand migration: older releases never read it).
-- Names are unqualified: `migrate()` runs this file with the configured
-- schema first on the search_path.
--
-- One row per node start. A node is a member while `expires_at` (the
-- database's clock) is in the future; it renews the row on every heartbeat
-- and deletes it when it leaves. The node id is also the `owner` of the
-- shard leases it holds, so a lease names its holder's address.
CREATE TABLE cluster_members (
    node       text        NOT NULL,
    address    text        NOT NULL,
    joined_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    expires_at timestamptz NOT NULL,
    CONSTRAINT cluster_members_pkey PRIMARY KEY (node)
);
