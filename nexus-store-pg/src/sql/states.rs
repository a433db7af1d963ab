//! SQL of the `states` table.

use super::render;
use crate::config::Schema;

/// Inserts a row that was never written; zero rows when it exists, also as
/// a tombstone (its version is then what a writer must expect).
const INSERT: &str = r"
INSERT INTO {schema}.states (id, version, payload) VALUES ($1, 1, $2)
ON CONFLICT (id) DO NOTHING
RETURNING version
";

/// Updates a row that must be at `$3`; zero rows otherwise.
const UPDATE: &str = r"
UPDATE {schema}.states
SET version = version + 1, payload = $2, deleted = false, updated_at = now()
WHERE id = $1 AND version = $3
RETURNING version
";

/// Writes whatever the current version is.
const UPSERT: &str = r"
INSERT INTO {schema}.states (id, version, payload) VALUES ($1, 1, $2)
ON CONFLICT (id) DO UPDATE
    SET version = {schema}.states.version + 1, payload = excluded.payload, deleted = false,
        updated_at = now()
RETURNING version
";

// The fenced writes below stop a writer whose lease was taken over from
// overwriting the new owner's row: each writes only while shard `$4`'s
// lease is at epoch `$5` and not expired, holding the lease row FOR KEY
// SHARE so that a takeover waits for it (as the fenced append does). Each
// returns one row: the new version (NULL when nothing was written) and
// whether the fence passed, so a refusal is told from a version conflict.

/// [`INSERT`] under a fence (`$3` unused, for one parameter layout).
const INSERT_FENCED: &str = r"
WITH fence AS (
    SELECT FROM {schema}.leases
    WHERE shard = $4 AND epoch = $5 AND expires_at > clock_timestamp()
    FOR KEY SHARE
), written AS (
    INSERT INTO {schema}.states (id, version, payload)
    SELECT $1, 1, $2 FROM fence WHERE $3::int8 IS NULL
    ON CONFLICT (id) DO NOTHING
    RETURNING version
)
SELECT (SELECT version FROM written), EXISTS (SELECT FROM fence)
";

/// [`UPDATE`] under a fence.
const UPDATE_FENCED: &str = r"
WITH fence AS (
    SELECT FROM {schema}.leases
    WHERE shard = $4 AND epoch = $5 AND expires_at > clock_timestamp()
    FOR KEY SHARE
), written AS (
    UPDATE {schema}.states
    SET version = version + 1, payload = $2, deleted = false, updated_at = now()
    WHERE id = $1 AND version = $3 AND EXISTS (SELECT FROM fence)
    RETURNING version
)
SELECT (SELECT version FROM written), EXISTS (SELECT FROM fence)
";

/// [`UPSERT`] under a fence (`$3` unused, for one parameter layout).
const UPSERT_FENCED: &str = r"
WITH fence AS (
    SELECT FROM {schema}.leases
    WHERE shard = $4 AND epoch = $5 AND expires_at > clock_timestamp()
    FOR KEY SHARE
), written AS (
    INSERT INTO {schema}.states (id, version, payload)
    SELECT $1, 1, $2 FROM fence WHERE $3::int8 IS NULL
    ON CONFLICT (id) DO UPDATE
        SET version = {schema}.states.version + 1, payload = excluded.payload,
            deleted = false, updated_at = now()
    RETURNING version
)
SELECT (SELECT version FROM written), EXISTS (SELECT FROM fence)
";

/// The live row: a tombstone reads as none.
const LOAD: &str = r"
SELECT version, payload FROM {schema}.states WHERE id = $1 AND NOT deleted
";

/// The row with its version also when deleted (payload NULL then).
const LOAD_VERSIONED: &str = r"
SELECT version, CASE WHEN deleted THEN NULL ELSE payload END
FROM {schema}.states WHERE id = $1
";

const VERSION: &str = r"
SELECT coalesce((SELECT version FROM {schema}.states WHERE id = $1), 0)
";

/// Turns the row into a tombstone one version up if it is at `$2` (any
/// version when NULL); zero rows otherwise. An existing tombstone keeps its
/// version: deleting twice changes nothing.
const DELETE: &str = r"
UPDATE {schema}.states
SET version = version + CASE WHEN deleted THEN 0 ELSE 1 END, deleted = true,
    payload = '\x', updated_at = now()
WHERE id = $1 AND ($2::int8 IS NULL OR version = $2::int8)
";

/// The rendered statements of one store.
#[derive(Debug)]
pub(crate) struct StateSql {
    pub(crate) insert: String,
    pub(crate) update: String,
    pub(crate) upsert: String,
    pub(crate) insert_fenced: String,
    pub(crate) update_fenced: String,
    pub(crate) upsert_fenced: String,
    pub(crate) load: String,
    pub(crate) load_versioned: String,
    pub(crate) version: String,
    pub(crate) delete: String,
}

impl StateSql {
    pub(crate) fn new(schema: &Schema) -> Self {
        Self {
            insert: render(INSERT, schema),
            update: render(UPDATE, schema),
            upsert: render(UPSERT, schema),
            insert_fenced: render(INSERT_FENCED, schema),
            update_fenced: render(UPDATE_FENCED, schema),
            upsert_fenced: render(UPSERT_FENCED, schema),
            load: render(LOAD, schema),
            load_versioned: render(LOAD_VERSIONED, schema),
            version: render(VERSION, schema),
            delete: render(DELETE, schema),
        }
    }
}
