-- Durable state: one versioned row per persistence id.
CREATE TABLE states (
    id         text        NOT NULL,
    version    bigint      NOT NULL CHECK (version >= 1),
    payload    bytea       NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT states_pkey PRIMARY KEY (id)
);
