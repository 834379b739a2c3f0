-- #23, measured: the text coalesce key of 0025 (a uuid written as 36
-- characters, indexed after the job kind) made every job insert write a
-- wider heap row and index entry than the evidence-added index of 0010 it
-- replaced; `intake_closed_api_16c` wrote about 5 % more WAL per request.
-- A key is a uuid (what the jobs are about together, e.g. a case), and the
-- index is as narrow as 0010's: the kind is checked on the rows the index
-- hands over, which share the key and so, in practice, the kind.
DROP INDEX jobs_queued_by_coalesce_key;
ALTER TABLE jobs ALTER COLUMN coalesce_key TYPE uuid USING coalesce_key::uuid;
CREATE INDEX jobs_queued_by_coalesce_key ON jobs (coalesce_key, created_at, id)
    WHERE status = 'queued' AND coalesce_key IS NOT NULL;
