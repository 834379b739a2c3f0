-- Email recipients of a partner share must be at the partner's own domains
-- (set when the org is created by the service principal): a share is not a
-- relay to arbitrary addresses. An org with none is reached only through its
-- users, groups, badges and its notification address.
ALTER TABLE orgs ADD COLUMN email_domains text[] NOT NULL DEFAULT '{}';
