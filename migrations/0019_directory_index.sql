-- R56, recipient lookup (`GET /v1/directory`): a user finds users of its own
-- org by a prefix of their name, email address or badge ID and groups by a
-- prefix of their name, case-insensitively; in a partner org only by an exact
-- email address or badge ID. Each search reads one org's range of one of
-- these indexes: `lower(..)` because matching ignores case, `text_pattern_ops`
-- because the prefix is a byte-wise range (`~>=~ lower(q) AND ~<~ successor`,
-- see src/directory.rs) whatever the database's collation, and the exact
-- partner match (`=`) uses the same operator family.
CREATE INDEX users_directory_name ON users (org_id, lower(name) text_pattern_ops);
CREATE INDEX users_directory_email ON users (org_id, lower(email) text_pattern_ops);
CREATE INDEX users_directory_badge ON users (org_id, lower(badge_id) text_pattern_ops);
CREATE INDEX groups_directory_name ON groups (org_id, lower(name) text_pattern_ops);
