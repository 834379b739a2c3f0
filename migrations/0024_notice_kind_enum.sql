-- #23: a notice's kind is a PostgreSQL enum, as its status is (0007): a kind
-- the service does not know cannot be stored, and the service matches the
-- kinds exhaustively (a new kind without a template does not compile).
CREATE TYPE notice_kind AS ENUM ('share', 'internal_share', 'revoke', 'access_revoked',
                                 'recipient_removed', 'onward_share', 'link_share',
                                 'link_share_reminder');
ALTER TABLE notices DROP CONSTRAINT notices_kind_check;
ALTER TABLE notices ALTER COLUMN kind TYPE notice_kind USING kind::notice_kind;
