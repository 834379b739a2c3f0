-- Issue 19: an audit entry is signed where it is written. The service computes
-- each entry's HMAC (under a key derived from CASESHARE_AUDIT_KEY, which never
-- reaches the database) in the transaction that inserts it, and the sealer
-- chains only entries whose MAC holds: a row forged by a plain INSERT is
-- refused (listed in audit_refused, left out of every trail and reported by
-- `caseshare audit verify`), not sealed as genuine.
ALTER TABLE audit_log ADD COLUMN mac bytea;

-- Entries written before this migration and not yet sealed have no MAC; these
-- ids alone are sealed without one. The list is fixed: nothing may be added,
-- changed or removed.
CREATE TABLE audit_legacy_unsealed (id bigint PRIMARY KEY);
INSERT INTO audit_legacy_unsealed SELECT id FROM audit_log WHERE seq IS NULL;
CREATE FUNCTION audit_fixed_table() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is fixed', TG_TABLE_NAME;
END $$;
CREATE TRIGGER audit_legacy_unsealed_fixed BEFORE INSERT OR UPDATE OR DELETE ON audit_legacy_unsealed
    FOR EACH ROW EXECUTE FUNCTION audit_fixed_table();
CREATE TRIGGER audit_legacy_unsealed_no_truncate BEFORE TRUNCATE ON audit_legacy_unsealed
    FOR EACH STATEMENT EXECUTE FUNCTION audit_fixed_table();

-- Entries the sealer refused, with its reason.
CREATE TABLE audit_refused (
    id     bigint PRIMARY KEY,
    reason text NOT NULL,
    at     timestamptz NOT NULL DEFAULT now()
);

-- Still append-only. Two updates are allowed, neither touching the content:
-- the service setting an unsealed entry's MAC once, and sealing an entry once
-- (seq, prev_hash, hash) without changing its MAC.
CREATE OR REPLACE FUNCTION audit_log_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE'
       AND (NEW.id, NEW.at, NEW.org_id, NEW.actor_user_id, NEW.action, NEW.case_id, NEW.evidence_id, NEW.share_id, NEW.details)
           IS NOT DISTINCT FROM
           (OLD.id, OLD.at, OLD.org_id, OLD.actor_user_id, OLD.action, OLD.case_id, OLD.evidence_id, OLD.share_id, OLD.details)
       AND ((OLD.mac IS NULL AND NEW.mac IS NOT NULL AND OLD.seq IS NULL AND NEW.seq IS NULL
             AND NEW.hash IS NULL AND NEW.prev_hash IS NULL)
            OR (OLD.hash IS NULL AND NEW.seq IS NOT NULL AND (OLD.seq IS NULL OR OLD.seq = NEW.seq)
                AND NEW.mac IS NOT DISTINCT FROM OLD.mac))
    THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'audit_log is append-only';
END $$;
