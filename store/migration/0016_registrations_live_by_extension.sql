-- 0016: an extension's live contacts, found without reading the others.
-- A registration's write judges against them and its history; through
-- registrations_live it read every extension's live contacts, through
-- registrations_ext all of its own, removed ones kept a day included (a
-- thief registering from a new contact each time: thousands). Listing
-- the live contacts in order reads the new index too.
DROP INDEX registrations_live;
CREATE INDEX registrations_live ON registrations(extension, contact_id) WHERE live = 1;
