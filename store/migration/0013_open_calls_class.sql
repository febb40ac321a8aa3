-- 0013: the concurrency limit leaves emergency calls out, so the open
-- calls' sums read class too: it joins the covering index (only calls
-- in progress are in it, so rebuilding it is quick).
DROP INDEX calls_open;
CREATE INDEX calls_open ON calls(account_id, extension, reserve, class, verdict, settled_at) WHERE verdict = 'allow' AND settled_at IS NULL;
