//! SQL of the `states` table.

use super::render;
use crate::config::Schema;

/// Inserts a row that must not exist; zero rows when it does.
const INSERT: &str = r"
INSERT INTO {schema}.states (id, version, payload) VALUES ($1, 1, $2)
ON CONFLICT (id) DO NOTHING
RETURNING version
";

/// Updates a row that must be at `$3`; zero rows otherwise.
const UPDATE: &str = r"
UPDATE {schema}.states SET version = version + 1, payload = $2, updated_at = now()
WHERE id = $1 AND version = $3
RETURNING version
";

/// Writes whatever the current version is.
const UPSERT: &str = r"
INSERT INTO {schema}.states (id, version, payload) VALUES ($1, 1, $2)
ON CONFLICT (id) DO UPDATE
    SET version = {schema}.states.version + 1, payload = excluded.payload, updated_at = now()
RETURNING version
";

const LOAD: &str = r"
SELECT version, payload FROM {schema}.states WHERE id = $1
";

const VERSION: &str = r"
SELECT coalesce((SELECT version FROM {schema}.states WHERE id = $1), 0)
";

/// Deletes the row if it is at `$2` (any version when NULL); zero rows
/// otherwise.
const DELETE: &str = r"
DELETE FROM {schema}.states WHERE id = $1 AND ($2::int8 IS NULL OR version = $2::int8)
";

/// The rendered statements of one store.
#[derive(Debug)]
pub(crate) struct StateSql {
    pub(crate) insert: String,
    pub(crate) update: String,
    pub(crate) upsert: String,
    pub(crate) load: String,
    pub(crate) version: String,
    pub(crate) delete: String,
}

impl StateSql {
    pub(crate) fn new(schema: &Schema) -> Self {
        Self {
            insert: render(INSERT, schema),
            update: render(UPDATE, schema),
            upsert: render(UPSERT, schema),
            load: render(LOAD, schema),
            version: render(VERSION, schema),
            delete: render(DELETE, schema),
        }
    }
}
