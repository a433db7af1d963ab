-- The log epoch of a new event comes from the column's default, kept equal
-- to the newest epoch by a trigger on `log_epochs`, instead of a subquery
-- of `log_epochs` in every append (one more plan node and index probe per
-- append). Names are unqualified: `migrate()` runs this file with the
-- configured schema first on the search_path.
--
-- Why a default is as safe as the subquery: `ALTER TABLE … SET DEFAULT`
-- takes the table's ACCESS EXCLUSIVE lock, so it waits for every append in
-- flight and every later append starts after the new epoch committed: no
-- append straddles the switch (with the subquery, one that started before
-- it could still commit the old epoch after it). Prepared appends of other
-- sessions are planned again, since the ALTER invalidates their plans.
--
-- An expand step: releases that still take the epoch from the subquery
-- write the same value, and the trigger moves the default when any release
-- opens an epoch.
SET LOCAL lock_timeout = '5s';

CREATE FUNCTION log_epoch_opened() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    newest integer;
BEGIN
    -- Qualified by the trigger's schema: a caller's search_path need not
    -- name it.
    EXECUTE format('SELECT max(epoch) FROM %I.log_epochs', TG_TABLE_SCHEMA) INTO newest;
    -- Opening an epoch is rare (a start after a failover or a restore, or
    -- by hand); it must not queue every append behind a long reader.
    PERFORM set_config('lock_timeout', '5s', true);
    EXECUTE format('ALTER TABLE %I.events ALTER COLUMN epoch SET DEFAULT %s', TG_TABLE_SCHEMA, newest);
    RETURN NULL;
END
$$;

CREATE TRIGGER log_epochs_opened
    AFTER INSERT ON log_epochs
    FOR EACH STATEMENT EXECUTE FUNCTION log_epoch_opened();

DO $$
BEGIN
    EXECUTE format(
        'ALTER TABLE events ALTER COLUMN epoch SET DEFAULT %s',
        (SELECT max(epoch) FROM log_epochs)
    );
END
$$;
