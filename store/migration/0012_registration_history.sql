-- 0012: the addresses and user agents each extension registered from,
-- apart from its contacts. A NATed phone under rewrite_contact=yes gets
-- a new contact URI, so a new registrations row, each time its router
-- rebinds the port: with removed contacts kept as the history, that was
-- thousands of rows per phone. Removed contacts now go soon after
-- Asterisk removes them; "new IP" and "new user agent" are judged
-- against this table, one row per extension and value.
CREATE TABLE registration_history (
	extension   TEXT NOT NULL,
	kind        TEXT NOT NULL CHECK (kind IN ('ip','agent')),
	value       TEXT NOT NULL,
	first_seen  INTEGER NOT NULL,
	last_seen   INTEGER NOT NULL,
	PRIMARY KEY (extension, kind, value)
) WITHOUT ROWID;

INSERT INTO registration_history(extension, kind, value, first_seen, last_seen)
	SELECT extension, 'ip', ip, MIN(first_seen), MAX(last_seen) FROM registrations WHERE ip <> '' GROUP BY extension, ip;
INSERT INTO registration_history(extension, kind, value, first_seen, last_seen)
	SELECT extension, 'agent', user_agent, MIN(first_seen), MAX(last_seen) FROM registrations WHERE user_agent <> '' GROUP BY extension, user_agent;
