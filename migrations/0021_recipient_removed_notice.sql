-- R57: the email to a recipient a receiving org removed from a case it had
-- added them to onward (not the sharer's doing, so not 'access_revoked').
ALTER TABLE notices DROP CONSTRAINT notices_kind_check;
ALTER TABLE notices ADD CONSTRAINT notices_kind_check
    CHECK (kind IN ('share', 'internal_share', 'revoke', 'access_revoked', 'recipient_removed',
                    'onward_share', 'link_share', 'link_share_reminder'));
