-- The rescuer (jobs::rescue) looks for jobs left `running` past their lease:
-- a partial index over the few running jobs, by when they last showed life.
CREATE INDEX jobs_running_since ON jobs (updated_at) WHERE status = 'running';
