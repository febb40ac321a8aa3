-- 0018: each row of extensions gets an id no later row reuses. `ext rm`
-- checks Asterisk, then deletes the row it checked by that id: by name
-- it deleted a line removed and recorded again meanwhile by another
-- admin. creation_id is 0 for every unmanaged line, and a deleted
-- rowid is reused, so neither tells the two apart.
ALTER TABLE extensions ADD COLUMN row_id INTEGER NOT NULL DEFAULT 0;
CREATE TABLE extension_row_ids (last INTEGER NOT NULL);
INSERT INTO extension_row_ids(last) SELECT COALESCE(MAX(rowid), 0) FROM extensions;
UPDATE extensions SET row_id = rowid;
-- Every insert, whichever code makes it, takes the next id.
CREATE TRIGGER extensions_row_id AFTER INSERT ON extensions BEGIN
	UPDATE extension_row_ids SET last = last + 1;
	UPDATE extensions SET row_id = (SELECT last FROM extension_row_ids) WHERE rowid = NEW.rowid;
END;
