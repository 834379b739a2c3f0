-- Throughput: an evidence-added run takes the other queued evidence-added
-- jobs of its case (coalescing). It found them through `jobs_status`, i.e.
-- by reading every queued job of every case and joining its evidence, so a
-- backlog of N events into one case cost O(N) per run and O(N^2) in all.
-- Jobs now carry their case (migration 0009); this index hands a run the
-- oldest queued jobs of its case directly.
CREATE INDEX jobs_queued_by_case ON jobs (case_id, created_at, id)
    WHERE status = 'queued' AND kind = 'evidence-added';
