-- #23: the job layer speaks its own vocabulary. A job's case becomes its
-- subject (what the job is about: whose users may read its status, R41),
-- and coalescing becomes a queue feature over a key of its own: queued jobs
-- of one kind and one key may be taken and done by one run
-- (`jobs::take_queued`), replacing the evidence-added index of 0010.
ALTER TABLE jobs RENAME COLUMN case_id TO subject_id;
ALTER TABLE jobs ADD COLUMN coalesce_key text;
UPDATE jobs SET coalesce_key = subject_id::text
 WHERE kind = 'evidence-added' AND status = 'queued' AND subject_id IS NOT NULL;
DROP INDEX jobs_queued_by_case;
CREATE INDEX jobs_queued_by_coalesce_key ON jobs (kind, coalesce_key, created_at, id)
    WHERE status = 'queued' AND coalesce_key IS NOT NULL;
