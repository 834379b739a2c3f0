-- caseshare schema. Constraints make wrong states unrepresentable: one default
-- policy per org (a column, not a flag), symmetric partnerships stored once,
-- composite foreign keys that keep every child row inside its owner's org.

CREATE TYPE org_kind AS ENUM ('lea', 'justice', 'fpp');
CREATE TYPE user_role AS ENUM ('admin', 'user');

CREATE TABLE orgs (
    id                  uuid PRIMARY KEY,
    name                text NOT NULL CHECK (length(btrim(name)) > 0),
    kind                org_kind NOT NULL,
    notification_email  text,
    -- R2: set exactly once, by the setup wizard; NULL means "not set up".
    default_policy_id   uuid,
    setup_completed_at  timestamptz,
    -- R5: receiving settings.
    auto_import         boolean NOT NULL,
    auto_sync           boolean NOT NULL DEFAULT false,
    created_at          timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT auto_sync_only_for_justice CHECK (NOT auto_sync OR kind = 'justice'),
    CONSTRAINT setup_has_default CHECK ((default_policy_id IS NULL) = (setup_completed_at IS NULL))
);

CREATE TABLE users (
    id          uuid PRIMARY KEY,
    org_id      uuid NOT NULL REFERENCES orgs (id),
    name        text NOT NULL CHECK (length(btrim(name)) > 0),
    email       text NOT NULL CHECK (position('@' IN email) > 1),
    badge_id    text,
    role        user_role NOT NULL,
    -- SHA-256 of the bearer token; the token itself is never stored.
    token_hash  bytea NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (org_id, id)
);

CREATE TABLE groups (
    id          uuid PRIMARY KEY,
    org_id      uuid NOT NULL REFERENCES orgs (id),
    name        text NOT NULL CHECK (length(btrim(name)) > 0),
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (org_id, id)
);

CREATE TABLE group_members (
    group_id  uuid NOT NULL,
    org_id    uuid NOT NULL,
    user_id   uuid NOT NULL,
    PRIMARY KEY (group_id, user_id),
    FOREIGN KEY (org_id, group_id) REFERENCES groups (org_id, id),
    FOREIGN KEY (org_id, user_id) REFERENCES users (org_id, id)
);

-- Symmetric: stored once with the smaller id first.
CREATE TABLE partnerships (
    org_a       uuid NOT NULL REFERENCES orgs (id),
    org_b       uuid NOT NULL REFERENCES orgs (id),
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_a, org_b),
    CHECK (org_a < org_b)
);

CREATE TABLE policies (
    id          uuid PRIMARY KEY,
    org_id      uuid NOT NULL REFERENCES orgs (id),
    name        text NOT NULL CHECK (length(btrim(name)) > 0),
    -- The policy body (permissions, case_terms, evidence_terms), validated by
    -- the Rust type `policy::PolicyRules` before it is written.
    rules       jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (org_id, id)
);

ALTER TABLE orgs ADD CONSTRAINT default_policy_belongs_to_org
    FOREIGN KEY (id, default_policy_id) REFERENCES policies (org_id, id);

-- R3: per-partner override; at most one per (org, partner).
CREATE TABLE partner_policies (
    org_id          uuid NOT NULL REFERENCES orgs (id),
    partner_org_id  uuid NOT NULL REFERENCES orgs (id),
    policy_id       uuid NOT NULL,
    PRIMARY KEY (org_id, partner_org_id),
    FOREIGN KEY (org_id, policy_id) REFERENCES policies (org_id, id)
);

CREATE TABLE cases (
    id            uuid PRIMARY KEY,
    org_id        uuid NOT NULL REFERENCES orgs (id),
    owner_id      uuid,
    case_number   text NOT NULL CHECK (length(btrim(case_number)) > 0),
    title         text NOT NULL CHECK (length(btrim(title)) > 0),
    description   text,
    notes         jsonb NOT NULL DEFAULT '[]',
    tags          jsonb NOT NULL DEFAULT '[]',
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (org_id, id),
    FOREIGN KEY (org_id, owner_id) REFERENCES users (org_id, id)
);
CREATE INDEX cases_org ON cases (org_id, created_at);

CREATE TABLE folders (
    id          uuid PRIMARY KEY,
    case_id     uuid NOT NULL REFERENCES cases (id),
    parent_id   uuid,
    name        text NOT NULL CHECK (length(btrim(name)) > 0),
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (case_id, id),
    FOREIGN KEY (case_id, parent_id) REFERENCES folders (case_id, id),
    CHECK (parent_id IS DISTINCT FROM id)
);

CREATE TABLE evidence (
    id                  uuid PRIMARY KEY,
    case_id             uuid NOT NULL REFERENCES cases (id),
    folder_id           uuid,
    title               text NOT NULL CHECK (length(btrim(title)) > 0),
    -- Every other field of the evidence body (API.md), as sent or as filtered
    -- for an imported copy.
    data                jsonb NOT NULL,
    -- For an imported copy: the owner's evidence it was copied from.
    source_evidence_id  uuid,
    -- The evidence-added job recorded with it (owner's evidence only).
    job_id              uuid,
    created_at          timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (case_id, folder_id) REFERENCES folders (case_id, id),
    UNIQUE (case_id, source_evidence_id)
);
CREATE INDEX evidence_case ON evidence (case_id, created_at);

-- Jobs. A job row is written in the same transaction as its cause; the outbox
-- row beside it is what the relay publishes.
CREATE TYPE job_status AS ENUM ('queued', 'running', 'retrying', 'complete', 'dead');

CREATE TABLE jobs (
    id           uuid PRIMARY KEY,
    kind         text NOT NULL,
    payload      jsonb NOT NULL,
    -- The org whose request caused the job (who may read its status).
    org_id       uuid REFERENCES orgs (id),
    status       job_status NOT NULL DEFAULT 'queued',
    attempts     integer NOT NULL DEFAULT 0,
    deliveries   integer NOT NULL DEFAULT 0,
    last_error   text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    started_at   timestamptz,
    finished_at  timestamptz,
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX jobs_status ON jobs (status);

CREATE TABLE outbox (
    id            bigserial PRIMARY KEY,
    exchange      text NOT NULL CHECK (exchange IN ('jobs', 'status')),
    routing_key   text NOT NULL,
    payload       jsonb NOT NULL,
    job_id        uuid REFERENCES jobs (id),
    created_at    timestamptz NOT NULL DEFAULT now(),
    published_at  timestamptz
);
CREATE INDEX outbox_unpublished ON outbox (id) WHERE published_at IS NULL;

-- R39: append-only audit trail.
CREATE TABLE audit_log (
    id            bigserial PRIMARY KEY,
    at            timestamptz NOT NULL DEFAULT now(),
    org_id        uuid REFERENCES orgs (id),
    actor_user_id uuid REFERENCES users (id),
    action        text NOT NULL,
    case_id       uuid,
    evidence_id   uuid,
    share_id      uuid,
    details       jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_case ON audit_log (case_id, id);

CREATE FUNCTION audit_log_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only';
END $$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_is_append_only();
