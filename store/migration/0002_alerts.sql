-- 0002: alerts and their delivery outbox (design.md §3). Times are Unix
-- seconds (UTC); 0 means never.

-- One row per incident: repeats of the same kind and subject within the
-- cool-down merge into it (count, last_seen, bounded evidence).
CREATE TABLE alerts (
	id                INTEGER PRIMARY KEY,
	kind              TEXT NOT NULL,
	severity          TEXT NOT NULL CHECK (severity IN ('info','warning','critical')),
	subject           TEXT NOT NULL,
	account_id        TEXT NOT NULL DEFAULT '',
	extension         TEXT NOT NULL DEFAULT '',
	message           TEXT NOT NULL,
	evidence          TEXT NOT NULL DEFAULT '[]',  -- JSON array of occurrences: the first and the latest
	evidence_dropped  INTEGER NOT NULL DEFAULT 0,  -- occurrences dropped from it
	first_seen        INTEGER NOT NULL,
	last_seen         INTEGER NOT NULL,
	count             INTEGER NOT NULL DEFAULT 1 CHECK (count >= 1),
	notified_count    INTEGER NOT NULL DEFAULT 0,  -- count when the last notice went out
	notified_at       INTEGER NOT NULL DEFAULT 0,
	digest_due        INTEGER NOT NULL DEFAULT 0,  -- when a digest of the repeats goes out
	acked_at          INTEGER NOT NULL DEFAULT 0,
	acked_by          TEXT NOT NULL DEFAULT ''
);
-- Raise finds the open alert of a kind and subject.
CREATE INDEX alerts_open ON alerts(kind, subject, last_seen) WHERE acked_at = 0;
CREATE INDEX alerts_digest ON alerts(digest_due) WHERE digest_due > 0;
CREATE INDEX alerts_last_seen ON alerts(last_seen);

-- One row per notice and notifier. The notice is a JSON snapshot, so a
-- retry delivers what was true when it was made.
CREATE TABLE alert_outbox (
	id          INTEGER PRIMARY KEY,
	alert_id    INTEGER NOT NULL REFERENCES alerts(id) ON DELETE CASCADE,
	notifier    TEXT NOT NULL,
	event       TEXT NOT NULL,
	notice      TEXT NOT NULL,
	status      TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending','sending','sent','failed')),
	attempts    INTEGER NOT NULL DEFAULT 0,
	next_at     INTEGER NOT NULL,  -- pending: when due; sending: when the claim lapses
	last_error  TEXT NOT NULL DEFAULT '',
	created_at  INTEGER NOT NULL,
	done_at     INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX alert_outbox_due ON alert_outbox(notifier, next_at) WHERE status IN ('pending','sending');
CREATE INDEX alert_outbox_alert ON alert_outbox(alert_id);
