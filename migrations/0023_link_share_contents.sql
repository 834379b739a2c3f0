-- The landing page of a link share (#22) lists what its package holds: the
-- files of its manifest ({path, size_bytes, sha256}), recorded when it is built.
ALTER TABLE link_shares ADD COLUMN contents jsonb;
