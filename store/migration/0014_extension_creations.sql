-- 0014: every extension `ext add` created, kept after the line is
-- removed. The daily quota and the quotas audit counted only rows that
-- still exist, so add, purge, rm, add again dodged max_created_per_day.
-- One row per creation (a name added twice counts twice, but not twice
-- in one second: the key holds the second); the account
-- is the one it was created under, so a move does not take it along.
-- Only managed lines count, as before: recording a line Asterisk
-- already had (--no-asterisk, adopted, restored) creates nothing.
-- Pruned after a week by serve's hourly housekeeping.
CREATE TABLE extension_creations (
	account_id  TEXT NOT NULL,
	extension   TEXT NOT NULL,
	created_at  INTEGER NOT NULL,
	how         TEXT NOT NULL CHECK (how IN ('add','backfill')),
	PRIMARY KEY (account_id, created_at, extension)
) WITHOUT ROWID;

-- Today's counts must not drop at the upgrade: the existing lines'
-- creations, as the quota counted them.
INSERT INTO extension_creations(account_id, extension, created_at, how)
	SELECT account_id, name, created_at, 'backfill' FROM extensions WHERE managed <> 0;
