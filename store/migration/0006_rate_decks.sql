-- 0006: the rate deck by generation.
--
-- An import used to apply its changes to the live deck in one write
-- transaction: for a carrier deck that held SQLite's write lock for a
-- few hundred milliseconds, and the gate's decisions (deadline 300 ms)
-- waited behind it. Now an import copies its deck in as a new
-- generation in short transactions, none of which a reader sees, and
-- makes it live in one tiny one; the old generation is then deleted in
-- short transactions too.
CREATE TABLE rate_decks (
	id          INTEGER PRIMARY KEY,
	-- staging: being copied in (or left by an import that died);
	-- live: the deck in force, exactly one; old: replaced, being deleted.
	state       TEXT NOT NULL CHECK (state IN ('staging','live','old')),
	rows        INTEGER NOT NULL DEFAULT 0,
	started_at  INTEGER NOT NULL,
	live_at     INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX rate_decks_live ON rate_decks(state) WHERE state = 'live';

INSERT INTO rate_decks(id, state, rows, started_at, live_at)
	SELECT 1, 'live', COUNT(*), CAST(strftime('%s','now') AS INTEGER), CAST(strftime('%s','now') AS INTEGER) FROM rates;

CREATE TABLE rates_by_deck (
	deck         INTEGER NOT NULL,           -- rate_decks.id
	prefix       TEXT NOT NULL,              -- E.164 digits without '+'
	destination  TEXT NOT NULL DEFAULT '',
	rate         INTEGER NOT NULL CHECK (rate >= 0),
	PRIMARY KEY (deck, prefix)
) WITHOUT ROWID;
INSERT INTO rates_by_deck(deck, prefix, destination, rate) SELECT 1, prefix, destination, rate FROM rates;
DROP TABLE rates;
ALTER TABLE rates_by_deck RENAME TO rates;
