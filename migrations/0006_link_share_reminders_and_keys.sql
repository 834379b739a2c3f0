-- R40: the recipient of a link share is reminded by email a configurable time
-- before the link expires, once; link shares report status events.
ALTER TABLE notices DROP CONSTRAINT notices_kind_check;
ALTER TABLE notices ADD CONSTRAINT notices_kind_check
    CHECK (kind IN ('share', 'internal_share', 'revoke', 'onward_share', 'link_share',
                    'link_share_reminder'));

-- Set when the reminder notice was queued (the notice's idempotency key makes
-- it once per recipient even without this; the column keeps the sweep cheap).
ALTER TABLE link_shares ADD COLUMN reminder_queued_at timestamptz;
CREATE INDEX link_shares_to_remind ON link_shares (expires_at)
    WHERE status = 'complete' AND reminder_queued_at IS NULL AND package_deleted_at IS NULL;

-- The store key of a built package, unique per build (a racing second build
-- of the same link share uploads under its own key and deletes it when it
-- loses). NULL for packages built before: their key is "<id>.zip".
ALTER TABLE link_shares ADD COLUMN package_key text;

-- The sharing policy that governed the request (R10, R12 as for shares): the
-- partner's policy for a partner user, the default for an email address, none
-- within the own org. The package is built under it, whatever changes later.
ALTER TABLE link_shares ADD COLUMN policy jsonb;

-- A link share can be revoked before it expires (a link sent to the wrong
-- address): downloads are refused at once, the package is swept.
ALTER TABLE link_shares ADD COLUMN revoked_at timestamptz;
ALTER TABLE link_shares DROP CONSTRAINT link_shares_status_check;
ALTER TABLE link_shares ADD CONSTRAINT link_shares_status_check
    CHECK (status IN ('processing', 'complete', 'failed', 'revoked'));
CREATE INDEX link_shares_revoked_to_sweep ON link_shares (revoked_at)
    WHERE status = 'revoked' AND package_deleted_at IS NULL;
