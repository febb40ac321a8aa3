-- 0017: each row names the creation record of the `ext add` that made
-- it (0: none, a line recorded, not created). A failed add undoes its
-- own row by that id: by name it deleted a line added again under the
-- name while it ran (after an ext rm), and a rowid or created_at cannot
-- tell the two apart (a deleted rowid is reused; both in one second).
ALTER TABLE extensions ADD COLUMN creation_id INTEGER NOT NULL DEFAULT 0;
