-- R43: each granted item is now filtered by the snapshot of the share that
-- first granted it (grants.share_id -> shares.policy), no longer by the
-- collaboration's latest policy. Until now every item of a live collaboration
-- was shown under `received.policy` (the latest share's). So that nothing
-- already shared is re-filtered more loosely, each such share's snapshot is
-- narrowed to what its items were shown under: a term or permission stays
-- allowed only where both allowed it.
CREATE FUNCTION pg_temp.meet_terms(a jsonb, b jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT coalesce(
        jsonb_object_agg(k, coalesce((a ->> k)::boolean, false) AND coalesce((b ->> k)::boolean, false)),
        '{}'::jsonb)
    FROM jsonb_object_keys(a) AS k
$$;

UPDATE shares s
   SET policy = s.policy || jsonb_build_object(
           'permissions', pg_temp.meet_terms(s.policy -> 'permissions', r.policy -> 'permissions'),
           'case_terms', pg_temp.meet_terms(s.policy -> 'case_terms', r.policy -> 'case_terms'),
           'evidence_terms', pg_temp.meet_terms(s.policy -> 'evidence_terms', r.policy -> 'evidence_terms'))
  FROM received r
 WHERE s.received_id = r.id
   AND r.revoked_at IS NULL
   AND s.policy IS NOT NULL
   AND s.policy IS DISTINCT FROM r.policy;
