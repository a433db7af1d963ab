-- User metadata of each event (`EventMetadata::headers`): a JSON object of
-- strings, NULL when the event has none. Adding a nullable column without a
-- default only touches the catalog, so existing rows are not rewritten.
SET LOCAL lock_timeout = '5s';
ALTER TABLE events ADD COLUMN headers jsonb;
