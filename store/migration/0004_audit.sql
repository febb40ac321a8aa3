-- 0004: scheduled audits and the extension lifecycle (design.md §4).
-- Times are Unix seconds (UTC).

-- Every audit run: what it found and what it did (JSON), even when it
-- failed. New SIP passwords and PINs are never stored here.
CREATE TABLE audit_runs (
	id            INTEGER PRIMARY KEY,
	job           TEXT NOT NULL,
	triggered_by  TEXT NOT NULL DEFAULT 'cli',   -- cli or cron
	apply         INTEGER NOT NULL DEFAULT 0,
	started_at    INTEGER NOT NULL,
	ended_at      INTEGER NOT NULL,
	n_findings    INTEGER NOT NULL DEFAULT 0,
	n_actions     INTEGER NOT NULL DEFAULT 0,
	worst         TEXT NOT NULL DEFAULT '',      -- highest finding severity
	findings      TEXT NOT NULL DEFAULT '[]',
	actions       TEXT NOT NULL DEFAULT '[]',
	error         TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_runs_job ON audit_runs(job, started_at);

-- The full JSON of an extension's PJSIP objects (as ARI returned
-- them, auth passwords included) taken before a purge deleted them,
-- for `tollguard ext restore`.
CREATE TABLE extension_snapshots (
	id           INTEGER PRIMARY KEY,
	extension    TEXT NOT NULL,
	account_id   TEXT NOT NULL DEFAULT '',
	taken_at     INTEGER NOT NULL,
	reason       TEXT NOT NULL DEFAULT '',
	objects      TEXT NOT NULL,
	restored_at  INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX extension_snapshots_ext ON extension_snapshots(extension, id);

-- Extensions blocked for a grace period before their purge. One open
-- (done_at = 0) row per extension; finished rows stay as history.
CREATE TABLE pending_purges (
	id            INTEGER PRIMARY KEY,
	extension     TEXT NOT NULL,
	job           TEXT NOT NULL,
	reason        TEXT NOT NULL DEFAULT '',
	scheduled_at  INTEGER NOT NULL,
	due_at        INTEGER NOT NULL,
	done_at       INTEGER NOT NULL DEFAULT 0,
	outcome       TEXT NOT NULL DEFAULT ''     -- purged, cancelled, gone
);
CREATE UNIQUE INDEX pending_purges_open ON pending_purges(extension) WHERE done_at = 0;
CREATE INDEX pending_purges_due ON pending_purges(due_at) WHERE done_at = 0;

-- One spend alert per account, month and kind of threshold; a higher
-- threshold crossed later in the month alerts again.
CREATE TABLE spend_alerts (
	account_id  TEXT NOT NULL,
	month       TEXT NOT NULL,                 -- YYYY-MM (UTC)
	kind        TEXT NOT NULL CHECK (kind IN ('fixed','factor')),
	threshold   INTEGER NOT NULL,
	spend       INTEGER NOT NULL,
	alerted_at  INTEGER NOT NULL,
	PRIMARY KEY (account_id, month, kind)
) WITHOUT ROWID;

-- When Asterisk first listed each PJSIP endpoint: the creation time of
-- endpoints made outside tollguard. Endpoints already there on the
-- first look are baseline (creation time unknown). The row named ''
-- marks that the first look happened.
CREATE TABLE endpoint_sightings (
	name         TEXT PRIMARY KEY,
	first_seen   INTEGER NOT NULL,
	last_listed  INTEGER NOT NULL,
	baseline     INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
