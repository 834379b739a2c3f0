-- Statuses as enums, like jobs and shares already are: a notice's and a link
-- share's status can only hold a known value, and Rust reads them as enums.
-- The checks and partial indexes that compare the status with text are
-- dropped before the type changes and made again after it.
CREATE TYPE notice_status AS ENUM ('pending', 'sent', 'failed');
ALTER TABLE notices DROP CONSTRAINT notices_status_check;
ALTER TABLE notices ALTER COLUMN status DROP DEFAULT;
ALTER TABLE notices ALTER COLUMN status TYPE notice_status USING status::notice_status;
ALTER TABLE notices ALTER COLUMN status SET DEFAULT 'pending';

CREATE TYPE link_share_status AS ENUM ('processing', 'complete', 'failed', 'revoked');
ALTER TABLE link_shares DROP CONSTRAINT link_shares_status_check;
ALTER TABLE link_shares DROP CONSTRAINT link_shares_check;
ALTER TABLE link_shares DROP CONSTRAINT link_shares_check1;
DROP INDEX link_shares_to_sweep;
DROP INDEX link_shares_to_remind;
DROP INDEX link_shares_revoked_to_sweep;
ALTER TABLE link_shares ALTER COLUMN status DROP DEFAULT;
ALTER TABLE link_shares ALTER COLUMN status TYPE link_share_status USING status::link_share_status;
ALTER TABLE link_shares ALTER COLUMN status SET DEFAULT 'processing';
ALTER TABLE link_shares ADD CONSTRAINT link_shares_complete_has_package
    CHECK (status <> 'complete'
           OR (manifest_sha256 IS NOT NULL AND size_bytes IS NOT NULL
               AND expires_at IS NOT NULL AND completed_at IS NOT NULL));
ALTER TABLE link_shares ADD CONSTRAINT link_shares_failed_has_failure
    CHECK (status <> 'failed' OR failure IS NOT NULL);
CREATE INDEX link_shares_to_sweep ON link_shares (expires_at)
    WHERE status = 'complete' AND package_deleted_at IS NULL;
CREATE INDEX link_shares_to_remind ON link_shares (expires_at)
    WHERE status = 'complete' AND reminder_queued_at IS NULL AND package_deleted_at IS NULL;
CREATE INDEX link_shares_revoked_to_sweep ON link_shares (revoked_at)
    WHERE status = 'revoked' AND package_deleted_at IS NULL;
