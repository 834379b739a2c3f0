-- The audit chain becomes an HMAC chain keyed by CASESHARE_AUDIT_KEY, computed
-- by the service (the key never reaches the database): whoever can write the
-- table can no longer rewrite the chain consistently. Each entry's fields are
-- encoded by position with NULL explicit (concat_ws dropped NULLs, so two
-- different rows could hash the same). Entries sealed under the old unkeyed
-- SHA-256 chain are re-sealed under the key by the first sealer after this
-- migration (their seal is cleared here, with the append-only trigger off for
-- this one statement).
ALTER TABLE audit_log DISABLE TRIGGER USER;
UPDATE audit_log SET seq = NULL, prev_hash = NULL, hash = NULL WHERE seq IS NOT NULL;
ALTER TABLE audit_log ENABLE TRIGGER USER;
DROP FUNCTION audit_entry_hash(bytea, audit_log);

-- TRUNCATE bypasses row triggers: refuse it too.
CREATE FUNCTION audit_log_no_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: TRUNCATE is refused';
END $$;
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_no_truncate();
