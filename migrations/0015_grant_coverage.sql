-- R43, R51: a granted item keeps the snapshot of the share that first granted
-- it (`grants.share_id`, never rewritten by a later covering share), and
-- `covering` lists every share of the collaboration that covers it. Revoking
-- a share removes it from `covering`; an item is taken back when no live share
-- covers it any more. Scope is never re-derived at revocation (a folder moved
-- under a shared folder does not go out unaudited).
--
-- Until now a later covering share rewrote `share_id` to itself, and the
-- revoke job re-granted the remaining shares newest-last, so an item could
-- show under a looser snapshot than the one it was first shared under. The
-- repair points each item back to the strictest snapshot that ever covered
-- it: among the collaboration's shares whose scope covers the item (live or
-- revoked, never failed), the one that allows the fewest evidence terms
-- (the oldest among equals).

ALTER TABLE grants ADD COLUMN covering uuid[] NOT NULL DEFAULT '{}';

-- Whether a share's scope (R13) covers an item, on today's folder tree.
CREATE FUNCTION pg_temp.covers(scope jsonb, evidence_id uuid, folder_id uuid) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT CASE scope ->> 'kind'
        WHEN 'case' THEN true
        WHEN 'evidence' THEN coalesce(scope -> 'evidence_ids', '[]'::jsonb) ? evidence_id::text
        WHEN 'folders' THEN folder_id IS NOT NULL AND EXISTS (
            WITH RECURSIVE up AS (
                SELECT f.id, f.parent_id FROM folders f WHERE f.id = folder_id
                UNION
                SELECT f.id, f.parent_id FROM folders f JOIN up ON f.id = up.parent_id)
            SELECT 1 FROM up WHERE coalesce(scope -> 'folder_ids', '[]'::jsonb) ? up.id::text)
        ELSE false
    END
$$;

UPDATE grants g
   SET covering = ARRAY(
           SELECT s.id FROM shares s JOIN evidence e ON e.id = g.evidence_id
            WHERE s.received_id = g.received_id AND s.status IN ('processing', 'complete')
              AND (s.id = g.share_id OR pg_temp.covers(s.scope, e.id, e.folder_id))
            ORDER BY s.created_at, s.id),
       share_id = coalesce((
           SELECT s.id FROM shares s JOIN evidence e ON e.id = g.evidence_id
            WHERE s.received_id = g.received_id AND s.status <> 'failed' AND s.policy IS NOT NULL
              AND (s.id = g.share_id OR pg_temp.covers(s.scope, e.id, e.folder_id))
            ORDER BY (SELECT count(*) FROM jsonb_each(s.policy -> 'evidence_terms') t
                       WHERE t.value = 'true'::jsonb),
                     s.created_at, s.id
            LIMIT 1), g.share_id);

-- Items no live share covers (a revocation whose job has not run yet) go.
DELETE FROM grants WHERE covering = '{}';

-- R51, N4: onward recipients of a collaboration that has ended lose the
-- external view for good; a later share to the same partner does not bring
-- them back (they keep an imported copy, R30).
UPDATE case_access a SET revoked_at = r.revoked_at
  FROM received r
 WHERE a.received_id = r.id AND r.revoked_at IS NOT NULL AND a.revoked_at IS NULL;

-- R51: a revocation never widens. The collaboration's governing snapshot
-- (case-level fields and permissions, R43) is the meet of every share it was
-- ever given (revoked ones included), so revoking the strictest share leaves
-- the permissions where they were, and an imported copy kept after the end
-- keeps them (onward, internal and link sharing stay refused).
CREATE FUNCTION pg_temp.meet_all(received uuid, section text, fallback jsonb) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT coalesce(jsonb_object_agg(k, v), fallback) FROM (
        SELECT t.key AS k, bool_and(t.value = 'true'::jsonb) AS v
          FROM shares s CROSS JOIN LATERAL jsonb_each(s.policy -> section) t
         WHERE s.received_id = received AND s.status <> 'failed' AND s.policy IS NOT NULL
         GROUP BY t.key) m
$$;

UPDATE received r
   SET policy = r.policy || jsonb_build_object(
           'permissions', pg_temp.meet_all(r.id, 'permissions', r.policy -> 'permissions'),
           'case_terms', pg_temp.meet_all(r.id, 'case_terms', r.policy -> 'case_terms'),
           'evidence_terms', pg_temp.meet_all(r.id, 'evidence_terms', r.policy -> 'evidence_terms'));

-- Revocation no longer finds grants by their first share (it walks the
-- collaboration's grants by `covering`), so the index only slowed inserts.
DROP INDEX IF EXISTS grants_share;

-- The per-user link-share quota counts a user's link shares of the last day.
CREATE INDEX link_shares_by_creator ON link_shares (created_by, created_at);
