-- 0010: carriers' billing steps and connection fees.
--
-- tollguard billed every call by the second from the per-minute price,
-- so on a 60/60 deck a 61 s call was charged 61 s where the carrier
-- bills 120 s, and credit ran out later than the carrier's bill. A rate
-- now carries its deck's steps (bill_first seconds at least, then steps
-- of bill_step) and a connection fee in micro-units, and each call keeps
-- the terms it was reserved with, so its settlement charges by them
-- even after a new deck. Existing rows are per-second with no fee: what
-- they were billed by.
ALTER TABLE rates ADD COLUMN bill_first INTEGER NOT NULL DEFAULT 1 CHECK (bill_first BETWEEN 1 AND 3600);
ALTER TABLE rates ADD COLUMN bill_step INTEGER NOT NULL DEFAULT 1 CHECK (bill_step BETWEEN 1 AND 3600);
ALTER TABLE rates ADD COLUMN connect_fee INTEGER NOT NULL DEFAULT 0 CHECK (connect_fee >= 0);
ALTER TABLE calls ADD COLUMN bill_first INTEGER NOT NULL DEFAULT 1;
ALTER TABLE calls ADD COLUMN bill_step INTEGER NOT NULL DEFAULT 1;
ALTER TABLE calls ADD COLUMN connect_fee INTEGER NOT NULL DEFAULT 0;
