-- 0003: the ARI listener's data. Registrations: every contact an
-- extension registered, with its address and user agent, first and last
-- seen, and how many times it was seen; removed contacts stay as history
-- (for "new IP" and "new user agent") until pruned. Detector overrides:
-- per-account thresholds, windows and actions over the config's defaults.

CREATE TABLE registrations (
	contact_id   TEXT PRIMARY KEY,            -- '<aor>;@<md5 of uri>'
	extension    TEXT NOT NULL,               -- the PJSIP endpoint
	aor          TEXT NOT NULL,
	uri          TEXT NOT NULL,
	ip           TEXT NOT NULL DEFAULT '',
	port         INTEGER NOT NULL DEFAULT 0,
	addr_source  TEXT NOT NULL DEFAULT '',    -- rewritten, contact or via
	user_agent   TEXT NOT NULL DEFAULT '',
	via_addr     TEXT NOT NULL DEFAULT '',
	call_id      TEXT NOT NULL DEFAULT '',
	status       TEXT NOT NULL DEFAULT '',
	expires      INTEGER NOT NULL DEFAULT 0,
	first_seen   INTEGER NOT NULL,
	last_seen    INTEGER NOT NULL,
	seen_count   INTEGER NOT NULL DEFAULT 1,
	live         INTEGER NOT NULL DEFAULT 1,
	removed_at   INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX registrations_ext ON registrations(extension, last_seen);
CREATE INDEX registrations_live ON registrations(live) WHERE live = 1;

CREATE TABLE detector_overrides (
	account_id     TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
	detector       TEXT NOT NULL,
	threshold      INTEGER NOT NULL CHECK (threshold >= 0),
	window_secs    INTEGER NOT NULL DEFAULT 0 CHECK (window_secs >= 0),
	action         TEXT NOT NULL DEFAULT 'alert' CHECK (action IN ('alert','intl_block','block_extension')),
	duration_secs  INTEGER NOT NULL DEFAULT 0 CHECK (duration_secs >= 0),
	updated_at     INTEGER NOT NULL,
	PRIMARY KEY (account_id, detector)
) WITHOUT ROWID;
