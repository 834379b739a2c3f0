-- Queued jobs by kind: the evidence fan-out looks for the queued
-- evidence-added jobs of a case on every run (coalescing), and the queued
-- set is small however large the jobs table grows.
CREATE INDEX jobs_queued ON jobs (kind, created_at) WHERE status = 'queued';
