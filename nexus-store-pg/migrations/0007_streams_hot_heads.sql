-- Every append rewrites its stream's head row. Leaving half of each page of
-- `streams` free lets that new row version go on the same page as the old
-- one: a HOT update, which writes no new entry to `streams_pkey` and only a
-- small heap record to the WAL, and whose dead versions the next visit of
-- the page prunes without a vacuum. No index of `streams` covers a column
-- an append changes (`version`, `updated_at`), which HOT also needs: keep
-- it so. The setting applies to pages written from now on (a table
-- migrated from 0006 gets it as its heads move to new pages, or at once
-- with `VACUUM FULL streams` in a quiet window).
--
-- An expand step: a storage parameter, taken with a lock that blocks no
-- reader or writer; older binaries are unaffected.
SET LOCAL lock_timeout = '5s';
ALTER TABLE streams SET (fillfactor = 50);
