-- R41, R42: who may see a case besides its owner and its org's admins (and,
-- at a receiver, the receiving org's admins). One row per (cause, principal):
--   * a share that named the principal (internal users and groups; a
--     partner's named users, groups, badge holders and users whose email was
--     named), with `share_id`;
--   * an onward addition by the receiver (R28), with `received_id`; this
--     replaces `received_recipients`.
-- `case_id` is the case as its owner knows it; a receiver's principals reach
-- the external view and the imported copy through the collaboration. A
-- revoked share keeps its rows with `revoked_at` set: they no longer open the
-- external view, but the imported copy stays with its recipients (R30).
-- Stopping sharing with one principal (R44) deletes its rows.
CREATE TABLE case_access (
    case_id         uuid NOT NULL REFERENCES cases (id),
    -- The principal's org (the owner's for internal shares, the partner's otherwise).
    org_id          uuid NOT NULL REFERENCES orgs (id),
    principal_id    uuid NOT NULL,
    principal_kind  text NOT NULL CHECK (principal_kind IN ('user', 'group')),
    share_id        uuid REFERENCES shares (id),
    received_id     uuid REFERENCES received (id),
    added_by        uuid REFERENCES users (id),
    added_at        timestamptz NOT NULL DEFAULT now(),
    revoked_at      timestamptz,
    CHECK ((share_id IS NULL) <> (received_id IS NULL))
);
CREATE UNIQUE INDEX case_access_by_share ON case_access (share_id, principal_id) WHERE share_id IS NOT NULL;
CREATE UNIQUE INDEX case_access_onward ON case_access (received_id, principal_id) WHERE received_id IS NOT NULL;
-- "Which cases may this user (or one of its groups) see": listing.
CREATE INDEX case_access_principal ON case_access (principal_id, case_id);
-- "Who may see this case": the access check and the access list.
CREATE INDEX case_access_case ON case_access (case_id, org_id);
-- A user's own cases among many of the org.
CREATE INDEX cases_owner ON cases (owner_id, org_id);
CREATE INDEX group_members_user ON group_members (user_id);

-- Existing shares: every named principal, resolved as the share resolved it
-- (badges carry the user they named; emails name the target org's users with
-- that address). Shares no longer live keep their rows, marked revoked.
INSERT INTO case_access (case_id, org_id, principal_id, principal_kind, share_id, added_by, added_at, revoked_at)
SELECT DISTINCT ON (s.id, p.id)
       s.case_id, coalesce(s.target_org_id, s.org_id), p.id, p.kind, s.id, s.created_by, s.created_at,
       CASE WHEN s.status IN ('processing', 'complete') THEN NULL ELSE coalesce(s.revoked_at, now()) END
  FROM shares s
 CROSS JOIN LATERAL jsonb_array_elements(coalesce(s.target -> 'recipients', '[]'::jsonb)) AS e(r)
 CROSS JOIN LATERAL (
        SELECT (e.r ->> 'user_id')::uuid, 'user' WHERE e.r ? 'user_id'
        UNION ALL
        SELECT (e.r ->> 'group_id')::uuid, 'group' WHERE e.r ? 'group_id'
        UNION ALL
        SELECT u.id, 'user' FROM users u
         WHERE e.r ? 'email' AND u.org_id = coalesce(s.target_org_id, s.org_id)
           AND lower(u.email) = lower(e.r ->> 'email')
       ) AS p (id, kind)
 WHERE p.id IS NOT NULL
 ORDER BY s.id, p.id;

INSERT INTO case_access (case_id, org_id, principal_id, principal_kind, received_id, added_by, added_at)
SELECT r.case_id, r.receiver_org_id, coalesce(rr.user_id, rr.group_id),
       CASE WHEN rr.user_id IS NOT NULL THEN 'user' ELSE 'group' END,
       rr.received_id, rr.added_by, rr.added_at
  FROM received_recipients rr JOIN received r ON r.id = rr.received_id;

DROP TABLE received_recipients;

-- R41: a job's status is read by those who see its case.
ALTER TABLE jobs ADD COLUMN case_id uuid;

-- R44: the email to a principal that sharing stopped with.
ALTER TABLE notices DROP CONSTRAINT notices_kind_check;
ALTER TABLE notices ADD CONSTRAINT notices_kind_check
    CHECK (kind IN ('share', 'internal_share', 'revoke', 'access_revoked', 'onward_share', 'link_share',
                    'link_share_reminder'));
