-- 0011: the rate deck's currency.
--
-- One deck prices every account in the account's own currency, so a deck
-- in US dollars priced a yen account's calls at a hundredth of their
-- cost, and credit did not bound them. A deck now records the currency
-- it is in, when the import knows it ('' when it does not, as before),
-- and the gate refuses to price an account's calls by a deck in another
-- currency.
ALTER TABLE rate_decks ADD COLUMN currency TEXT NOT NULL DEFAULT '';
