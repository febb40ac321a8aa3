-- 0005: calls in progress, read from the index alone.
--
-- Every decision sums the reservations of its account's calls in
-- progress. With reserve in the index, that is one walk of the
-- account's open entries; before, each entry also cost a lookup of its
-- call row, which added up for an account with hundreds of calls up.
-- verdict and settled_at are constant in the index, but SQLite counts
-- an index as covering only if it holds every column the query names.
DROP INDEX calls_open;
CREATE INDEX calls_open ON calls(account_id, extension, reserve, verdict, settled_at) WHERE verdict = 'allow' AND settled_at IS NULL;
