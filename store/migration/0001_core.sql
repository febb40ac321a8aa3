-- 0001: the call gate's data. Times are Unix seconds (UTC); money is in
-- integer minor units of the account's currency; rates in millionths of
-- a major unit per minute.

CREATE TABLE accounts (
	id                    TEXT PRIMARY KEY,
	name                  TEXT NOT NULL DEFAULT '',
	country               TEXT NOT NULL,
	national_prefix       TEXT NOT NULL DEFAULT '',
	intl_prefix           TEXT NOT NULL DEFAULT '',
	internal_max_len      INTEGER NOT NULL DEFAULT 0,
	zone                  TEXT NOT NULL DEFAULT 'UTC',
	hours_spec            TEXT NOT NULL DEFAULT '',
	holidays              TEXT NOT NULL DEFAULT '',      -- comma-separated
	after_hours           TEXT NOT NULL DEFAULT 'international,premium',
	currency              TEXT NOT NULL,
	scale                 INTEGER NOT NULL,
	balance               INTEGER NOT NULL DEFAULT 0,
	credit_limit          INTEGER NOT NULL DEFAULT 0 CHECK (credit_limit >= 0),
	call_cap              INTEGER NOT NULL DEFAULT 0 CHECK (call_cap >= 0),
	max_call_secs         INTEGER NOT NULL DEFAULT 0 CHECK (max_call_secs >= 0),
	national_ceiling      INTEGER NOT NULL DEFAULT 200000,
	intl_ceiling          INTEGER NOT NULL DEFAULT 20000,
	whitelist             INTEGER NOT NULL DEFAULT 0,
	intl_block            INTEGER NOT NULL DEFAULT 0,
	intl_block_reason     TEXT NOT NULL DEFAULT '',
	ext_per_minute        INTEGER NOT NULL DEFAULT 0,
	ext_per_hour          INTEGER NOT NULL DEFAULT 0,
	ext_per_day           INTEGER NOT NULL DEFAULT 0,
	acct_per_minute       INTEGER NOT NULL DEFAULT 0,
	acct_per_hour         INTEGER NOT NULL DEFAULT 0,
	acct_per_day          INTEGER NOT NULL DEFAULT 0,
	ext_concurrent        INTEGER NOT NULL DEFAULT 0,
	acct_concurrent       INTEGER NOT NULL DEFAULT 0,
	alert_mode            TEXT NOT NULL DEFAULT 'ip_or_agent' CHECK (alert_mode IN ('ip_or_agent','agent','none')),
	max_extensions        INTEGER NOT NULL DEFAULT 0,
	max_created_per_day   INTEGER NOT NULL DEFAULT 0,
	spend_threshold       INTEGER NOT NULL DEFAULT 0,
	spend_factor_permil   INTEGER NOT NULL DEFAULT 1200,
	created_at            INTEGER NOT NULL,
	updated_at            INTEGER NOT NULL
);

CREATE TABLE extensions (
	name          TEXT PRIMARY KEY,
	account_id    TEXT NOT NULL REFERENCES accounts(id),
	cidrs         TEXT NOT NULL DEFAULT '',   -- comma-separated prefixes, v4 and v6
	blocked       INTEGER NOT NULL DEFAULT 0,
	block_reason  TEXT NOT NULL DEFAULT '',
	blocked_by    TEXT NOT NULL DEFAULT '',
	blocked_at    INTEGER NOT NULL DEFAULT 0,
	caller_id     TEXT NOT NULL DEFAULT '',
	description   TEXT NOT NULL DEFAULT '',
	managed       INTEGER NOT NULL DEFAULT 0,
	created_at    INTEGER NOT NULL,
	last_seen     INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX extensions_account ON extensions(account_id, created_at);

-- Allow (whitelist) and deny prefix rules; account_id '' is global.
CREATE TABLE rules (
	id          INTEGER PRIMARY KEY,
	account_id  TEXT NOT NULL DEFAULT '',
	prefix      TEXT NOT NULL,               -- E.164 digits without '+'
	action      TEXT NOT NULL CHECK (action IN ('allow','deny')),
	note        TEXT NOT NULL DEFAULT '',
	created_at  INTEGER NOT NULL,
	UNIQUE (account_id, prefix, action)
);
CREATE INDEX rules_prefix ON rules(prefix);

CREATE TABLE rates (
	prefix       TEXT PRIMARY KEY,           -- E.164 digits without '+'
	destination  TEXT NOT NULL DEFAULT '',
	rate         INTEGER NOT NULL CHECK (rate >= 0)
) WITHOUT ROWID;

CREATE TABLE high_risk (
	prefix       TEXT PRIMARY KEY,
	description  TEXT NOT NULL DEFAULT '',
	source       TEXT NOT NULL DEFAULT ''
) WITHOUT ROWID;

-- Every gate decision. Allowed calls stay open (settled_at NULL) until
-- the hangup request, the ARI listener or the sweep settles them.
CREATE TABLE calls (
	id           INTEGER PRIMARY KEY,
	created_at   INTEGER NOT NULL,
	extension    TEXT NOT NULL,
	account_id   TEXT NOT NULL,
	dialled      TEXT NOT NULL,
	e164         TEXT NOT NULL DEFAULT '',
	class        TEXT NOT NULL,
	region       TEXT NOT NULL DEFAULT '',
	remote       TEXT NOT NULL DEFAULT '',
	channel      TEXT NOT NULL DEFAULT '',
	uniqueid     TEXT NOT NULL DEFAULT '',
	linkedid     TEXT NOT NULL DEFAULT '',
	verdict      TEXT NOT NULL CHECK (verdict IN ('allow','deny')),
	reason       TEXT NOT NULL,
	cause        INTEGER NOT NULL DEFAULT 0,
	rate         INTEGER NOT NULL DEFAULT 0,
	reserve      INTEGER NOT NULL DEFAULT 0 CHECK (reserve >= 0),
	maxsec       INTEGER NOT NULL DEFAULT -1,
	scale        INTEGER NOT NULL DEFAULT 2,
	steps        TEXT NOT NULL DEFAULT '[]',
	settled_at   INTEGER,
	settled_by   TEXT NOT NULL DEFAULT '',
	billsec      INTEGER NOT NULL DEFAULT 0,
	charge       INTEGER NOT NULL DEFAULT 0 CHECK (charge >= 0 AND charge <= reserve),
	dial_status  TEXT NOT NULL DEFAULT ''
);
-- Rate limits count an extension's or account's attempts in a window.
CREATE INDEX calls_ext_time ON calls(extension, created_at);
CREATE INDEX calls_acct_time ON calls(account_id, created_at);
-- Calls in progress: concurrency and reservations. Small by construction.
CREATE INDEX calls_open ON calls(account_id, extension) WHERE verdict = 'allow' AND settled_at IS NULL;
CREATE INDEX calls_uniqueid ON calls(uniqueid) WHERE uniqueid <> '';
CREATE INDEX calls_linkedid ON calls(linkedid) WHERE linkedid <> '';
CREATE INDEX calls_time ON calls(created_at);

-- Old calls roll up into monthly totals, so decisions stay flat in cost.
CREATE TABLE monthly_totals (
	account_id   TEXT NOT NULL,
	month        TEXT NOT NULL,              -- 'YYYY-MM', UTC
	calls        INTEGER NOT NULL DEFAULT 0,
	allowed      INTEGER NOT NULL DEFAULT 0,
	denied       INTEGER NOT NULL DEFAULT 0,
	billsec      INTEGER NOT NULL DEFAULT 0,
	charge       INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (account_id, month)
) WITHOUT ROWID;

-- Every change of balance other than a call's charge.
CREATE TABLE credit_ledger (
	id             INTEGER PRIMARY KEY,
	account_id     TEXT NOT NULL REFERENCES accounts(id),
	at             INTEGER NOT NULL,
	amount         INTEGER NOT NULL,
	balance_after  INTEGER NOT NULL,
	note           TEXT NOT NULL DEFAULT '',
	by             TEXT NOT NULL DEFAULT ''
);
CREATE INDEX credit_ledger_account ON credit_ledger(account_id, at);

-- Blocks on extensions and on accounts' international calls: who set
-- them, why, with what evidence; clearing keeps the row.
CREATE TABLE blocks (
	id          INTEGER PRIMARY KEY,
	kind        TEXT NOT NULL CHECK (kind IN ('extension','intl')),
	subject     TEXT NOT NULL,
	set_by      TEXT NOT NULL,
	reason      TEXT NOT NULL DEFAULT '',
	evidence    TEXT NOT NULL DEFAULT '',
	set_at      INTEGER NOT NULL,
	cleared_by  TEXT NOT NULL DEFAULT '',
	cleared_at  INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX blocks_subject ON blocks(kind, subject, set_at);

-- Small facts about the database itself (e.g. whether the default
-- high-risk list has been seeded).
CREATE TABLE settings (
	key    TEXT PRIMARY KEY,
	value  TEXT NOT NULL
) WITHOUT ROWID;
