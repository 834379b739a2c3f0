-- R40: the recipient of a link share is emailed the download link, through the
-- same once-per-key notices as every other email.
ALTER TABLE notices ADD COLUMN link_share_id uuid REFERENCES link_shares (id);
ALTER TABLE notices DROP CONSTRAINT notices_kind_check;
ALTER TABLE notices ADD CONSTRAINT notices_kind_check
    CHECK (kind IN ('share', 'internal_share', 'revoke', 'onward_share', 'link_share'));

-- Expired packages are deleted from the store by a periodic sweep; the row
-- (and its manifest hash) stays as the record of what was sent.
ALTER TABLE link_shares ADD COLUMN package_deleted_at timestamptz;
CREATE INDEX link_shares_to_sweep ON link_shares (expires_at)
    WHERE status = 'complete' AND package_deleted_at IS NULL;
