-- 0008: voicemail PIN rewrites that still owe a reload.
--
-- The pins audit writes new PINs to voicemail.conf, then reloads
-- app_voicemail through ARI; until that reload Asterisk keeps accepting
-- the old, weak PINs. A run killed between the two, or a reload that
-- failed, used to be forgotten: the rerun found nothing weak, so it
-- never reloaded. One row per voicemail source is written before any
-- PIN is, and deleted only after a reload that worked; every pins run
-- retries the rows it finds.
--
-- pins lists the mailboxes whose PINs the run was about to replace and
-- had not reported yet (JSON [{mailbox, where, email}]): if it died,
-- nobody was shown the new PINs. The PINs themselves are never stored.
CREATE TABLE voicemail_reloads (
	source     TEXT PRIMARY KEY,           -- MailboxSource.Name()
	module     TEXT NOT NULL DEFAULT '',   -- '' when the source needs no reload
	seq        INTEGER NOT NULL DEFAULT 1, -- bumped by every mark, so a finish only clears what it reloaded
	marked_at  INTEGER NOT NULL,
	pins       TEXT NOT NULL DEFAULT '[]'
) WITHOUT ROWID;
