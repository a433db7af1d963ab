-- Projection checkpoints. Names are unqualified: `migrate()` runs this file
-- with the configured schema first on the search_path.
CREATE TABLE projections (
    name             text        PRIMARY KEY,
    -- The log position the read model reflects, as the runner encodes it
    -- (opaque to SQL: only compared for equality, never ordered here).
    position         text        NOT NULL,
    -- Which physical table (`<table>__g<generation>`) the read model's view
    -- shows; a rebuild fills generation + 1, then swaps the view.
    generation       bigint      NOT NULL DEFAULT 1,
    -- How far a rebuild in progress has read (NULL when none runs).
    rebuild_position text,
    updated_at       timestamptz NOT NULL DEFAULT now()
);
