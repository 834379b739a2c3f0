-- Classic link sharing (R40): a package (ZIP) of a case, or of selected
-- folders/evidence, downloadable through an unguessable token until it expires.
-- Evidence content lives in the content store (`content_dir`), not here.

CREATE TABLE link_shares (
    id                       uuid PRIMARY KEY,
    case_id                  uuid NOT NULL REFERENCES cases (id),
    org_id                   uuid NOT NULL REFERENCES orgs (id),
    created_by               uuid REFERENCES users (id),
    scope                    jsonb NOT NULL,
    -- {"email": ...} or {"user_id": ...}
    recipient                jsonb NOT NULL,
    -- {"audit_trails", "transcripts", "table_of_contents"}: booleans
    attachments              jsonb NOT NULL,
    retain_folder_structure  boolean NOT NULL,
    package                  text NOT NULL CHECK (package IN ('zip', 'iso')),
    duration_hours           integer NOT NULL CHECK (duration_hours > 0),
    message                  text,
    status                   text NOT NULL DEFAULT 'processing'
                             CHECK (status IN ('processing', 'complete', 'failed')),
    failure                  text,
    -- The download credential: 32 random bytes, hex.
    token                    text NOT NULL UNIQUE CHECK (length(token) = 64),
    manifest_sha256          text,
    size_bytes               bigint,
    expires_at               timestamptz,
    created_at               timestamptz NOT NULL DEFAULT now(),
    completed_at             timestamptz,
    CHECK (status <> 'complete'
           OR (manifest_sha256 IS NOT NULL AND size_bytes IS NOT NULL
               AND expires_at IS NOT NULL AND completed_at IS NOT NULL)),
    CHECK (status <> 'failed' OR failure IS NOT NULL)
);
CREATE INDEX link_shares_case ON link_shares (case_id, created_at);
