-- 0009: find an alert's latest occurrence, acknowledged or not.
--
-- An audit finding raised again looks up the latest alert of its kind
-- and subject, acknowledged ones included, to stay quiet when nothing
-- changed; alerts_open covers only open alerts, so this scanned them all.
CREATE INDEX alerts_kind_subject ON alerts(kind, subject, last_seen);
