-- Tamper-evident audit trail: entries are sealed into a hash chain in `seq`
-- order by a sealer (any caseshare process); each sealed entry carries the
-- hash of the one before it. Editing or deleting a sealed entry breaks the
-- chain, which `caseshare audit verify` reports.

ALTER TABLE audit_log ADD COLUMN seq bigint UNIQUE;
ALTER TABLE audit_log ADD COLUMN prev_hash bytea;
ALTER TABLE audit_log ADD COLUMN hash bytea;
CREATE INDEX audit_unsealed ON audit_log (id) WHERE seq IS NULL;

-- The one definition of an entry's hash, used to seal and to verify.
CREATE FUNCTION audit_entry_hash(prev bytea, e audit_log) RETURNS bytea
LANGUAGE sql IMMUTABLE AS $$
    SELECT sha256(coalesce(prev, '\x'::bytea) || convert_to(concat_ws('|',
        e.seq, e.id, to_char(e.at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US'),
        e.org_id, e.actor_user_id, e.action, e.case_id, e.evidence_id, e.share_id, e.details::text), 'UTF8'))
$$;

-- Still append-only: the only update allowed is sealing an entry not yet
-- sealed (its hash unset), without touching its content.
CREATE OR REPLACE FUNCTION audit_log_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.hash IS NULL AND NEW.seq IS NOT NULL
       AND (OLD.seq IS NULL OR OLD.seq = NEW.seq)
       AND (NEW.id, NEW.at, NEW.org_id, NEW.actor_user_id, NEW.action, NEW.case_id, NEW.evidence_id, NEW.share_id, NEW.details)
           IS NOT DISTINCT FROM
           (OLD.id, OLD.at, OLD.org_id, OLD.actor_user_id, OLD.action, OLD.case_id, OLD.evidence_id, OLD.share_id, OLD.details)
    THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'audit_log is append-only';
END $$;
