-- 0015: one row per creation, even two in one second. 0014 keyed
-- creations by (account, second, extension), so a line added, removed
-- and added again within a second was recorded once (and counted once
-- against max_created_per_day), and the undo of a failed re-add took
-- the first add's record with it. A rowid table keeps every creation;
-- the newest id of a name is its latest creation (ids only grow while
-- a newer row exists).
CREATE TABLE extension_creations_new (
	id          INTEGER PRIMARY KEY,
	account_id  TEXT NOT NULL,
	extension   TEXT NOT NULL,
	created_at  INTEGER NOT NULL,
	how         TEXT NOT NULL CHECK (how IN ('add','backfill'))
);
INSERT INTO extension_creations_new(account_id, extension, created_at, how)
	SELECT account_id, extension, created_at, how FROM extension_creations ORDER BY created_at, extension;
DROP TABLE extension_creations;
ALTER TABLE extension_creations_new RENAME TO extension_creations;
-- The daily count (by account), the audit's list and prune (by time).
CREATE INDEX extension_creations_account ON extension_creations(account_id, created_at);
CREATE INDEX extension_creations_created ON extension_creations(created_at);
