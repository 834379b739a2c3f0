-- Statuses as enums, like jobs and shares already are: a notice's and a link
-- share's status can only hold a known value, and Rust reads them as enums.
CREATE TYPE notice_status AS ENUM ('pending', 'sent', 'failed');
ALTER TABLE notices DROP CONSTRAINT notices_status_check;
ALTER TABLE notices ALTER COLUMN status DROP DEFAULT;
ALTER TABLE notices ALTER COLUMN status TYPE notice_status USING status::notice_status;
ALTER TABLE notices ALTER COLUMN status SET DEFAULT 'pending';

CREATE TYPE link_share_status AS ENUM ('processing', 'complete', 'failed', 'revoked');
ALTER TABLE link_shares DROP CONSTRAINT link_shares_status_check;
ALTER TABLE link_shares ALTER COLUMN status DROP DEFAULT;
ALTER TABLE link_shares ALTER COLUMN status TYPE link_share_status USING status::link_share_status;
ALTER TABLE link_shares ALTER COLUMN status SET DEFAULT 'processing';
