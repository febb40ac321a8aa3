-- 0007: alert ids are never reused.
--
-- An id is the alert's name to the admin ("tollguard alerts show 42")
-- and half of its notice key, on which webhook receivers drop
-- duplicates. With a plain INTEGER PRIMARY KEY, SQLite hands out the
-- largest id again once the retention prune has deleted it: on a quiet
-- PBX, the next alert after a prune took the id, and the notice key, of
-- one sent months before. AUTOINCREMENT needs the table rebuilt, and
-- the outbox with it (its foreign key names the table).
CREATE TABLE alerts_new (
	id                INTEGER PRIMARY KEY AUTOINCREMENT,
	kind              TEXT NOT NULL,
	severity          TEXT NOT NULL CHECK (severity IN ('info','warning','critical')),
	subject           TEXT NOT NULL,
	account_id        TEXT NOT NULL DEFAULT '',
	extension         TEXT NOT NULL DEFAULT '',
	message           TEXT NOT NULL,
	evidence          TEXT NOT NULL DEFAULT '[]',
	evidence_dropped  INTEGER NOT NULL DEFAULT 0,
	first_seen        INTEGER NOT NULL,
	last_seen         INTEGER NOT NULL,
	count             INTEGER NOT NULL DEFAULT 1 CHECK (count >= 1),
	notified_count    INTEGER NOT NULL DEFAULT 0,
	notified_at       INTEGER NOT NULL DEFAULT 0,
	digest_due        INTEGER NOT NULL DEFAULT 0,
	acked_at          INTEGER NOT NULL DEFAULT 0,
	acked_by          TEXT NOT NULL DEFAULT ''
);
INSERT INTO alerts_new SELECT id, kind, severity, subject, account_id, extension, message, evidence, evidence_dropped,
	first_seen, last_seen, count, notified_count, notified_at, digest_due, acked_at, acked_by FROM alerts;

CREATE TABLE alert_outbox_new (
	id          INTEGER PRIMARY KEY,
	alert_id    INTEGER NOT NULL REFERENCES alerts_new(id) ON DELETE CASCADE,
	notifier    TEXT NOT NULL,
	event       TEXT NOT NULL,
	notice      TEXT NOT NULL,
	status      TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending','sending','sent','failed')),
	attempts    INTEGER NOT NULL DEFAULT 0,
	next_at     INTEGER NOT NULL,
	last_error  TEXT NOT NULL DEFAULT '',
	created_at  INTEGER NOT NULL,
	done_at     INTEGER NOT NULL DEFAULT 0
);
INSERT INTO alert_outbox_new SELECT id, alert_id, notifier, event, notice, status, attempts, next_at, last_error,
	created_at, done_at FROM alert_outbox;

-- The outbox first, so dropping alerts cascades into nothing; renaming
-- alerts_new rewrites the new outbox's foreign key to "alerts".
DROP TABLE alert_outbox;
DROP TABLE alerts;
ALTER TABLE alerts_new RENAME TO alerts;
ALTER TABLE alert_outbox_new RENAME TO alert_outbox;

CREATE INDEX alerts_open ON alerts(kind, subject, last_seen) WHERE acked_at = 0;
CREATE INDEX alerts_digest ON alerts(digest_due) WHERE digest_due > 0;
CREATE INDEX alerts_last_seen ON alerts(last_seen);
CREATE INDEX alert_outbox_due ON alert_outbox(notifier, next_at) WHERE status IN ('pending','sending');
CREATE INDEX alert_outbox_alert ON alert_outbox(alert_id);
