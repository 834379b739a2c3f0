-- R53: an imported copy carries the evidence files. A copied item whose
-- sender had stored content starts 'pending'; the CopyContent job re-hashes
-- the sender's stored bytes against the SHA-256 the sender recorded and gives
-- the copy its own stored object ('match'), or records 'content_mismatch'
-- (the bytes do not hash to the recorded SHA-256: nothing is kept, nothing
-- passed off as good) or 'missing' (the sender's object is gone).
CREATE TYPE content_state AS ENUM ('pending', 'match', 'content_mismatch', 'missing');
ALTER TABLE evidence ADD COLUMN content_state content_state;
-- The job reads a case's pending items in id order.
CREATE INDEX evidence_content_pending ON evidence (case_id, id) WHERE content_state = 'pending';
-- Copies of one item, found when its content is uploaded after the copy.
CREATE INDEX IF NOT EXISTS evidence_source_evidence_id ON evidence (source_evidence_id)
    WHERE source_evidence_id IS NOT NULL;
