-- R40: the recipient of a link share is emailed the download link, through the
-- same once-per-key notices as every other email.
ALTER TABLE notices ADD COLUMN link_share_id uuid REFERENCES link_shares (id);
ALTER TABLE notices DROP CONSTRAINT notices_kind_check;
ALTER TABLE notices ADD CONSTRAINT notices_kind_check
    CHECK (kind IN ('share', 'internal_share', 'revoke', 'onward_share', 'link_share'));
