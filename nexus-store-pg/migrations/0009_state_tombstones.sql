-- Durable-state deletes leave a tombstone one version up instead of
-- removing the row, so versions only grow and a writer that read a row
-- before it was deleted and re-created cannot overwrite the new one. A
-- constant default only touches the catalog: existing rows are not
-- rewritten.
SET LOCAL lock_timeout = '5s';
ALTER TABLE states ADD COLUMN deleted boolean NOT NULL DEFAULT false;
-- A release before this one reads a tombstone as a live row: it must not
-- run against this schema (the expand/contract rule of `migrate`).
UPDATE schema_compat SET oldest_compatible = 9;
