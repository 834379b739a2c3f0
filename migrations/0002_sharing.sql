-- Advanced sharing (R12–R31): shares, the collaboration per (case, partner),
-- grants, the receiver's folder copies, updates, onward recipients, notices.

CREATE TYPE share_status AS ENUM ('processing', 'complete', 'failed', 'revoked');

CREATE TABLE shares (
    id              uuid PRIMARY KEY,
    case_id         uuid NOT NULL REFERENCES cases (id),
    org_id          uuid NOT NULL REFERENCES orgs (id),
    created_by      uuid REFERENCES users (id),
    target_kind     text NOT NULL CHECK (target_kind IN ('internal', 'partner')),
    target_org_id   uuid REFERENCES orgs (id),
    scope           jsonb NOT NULL,
    target          jsonb NOT NULL,
    message         text,
    redact_caption_evidence_ids uuid[] NOT NULL DEFAULT '{}',
    -- R12: the resolved policy, recorded when the share is made.
    policy          jsonb,
    status          share_status NOT NULL DEFAULT 'processing',
    failure         text,
    received_id     uuid,
    created_at      timestamptz NOT NULL DEFAULT now(),
    completed_at    timestamptz,
    revoked_at      timestamptz,
    CHECK ((target_kind = 'partner') = (target_org_id IS NOT NULL)),
    CHECK (target_kind = 'internal' OR policy IS NOT NULL)
);
CREATE INDEX shares_case ON shares (case_id, status);

-- One collaboration per (case, receiving org): a second share extends it (R17).
CREATE TABLE received (
    id               uuid PRIMARY KEY,
    case_id          uuid NOT NULL REFERENCES cases (id),
    sharer_org_id    uuid NOT NULL REFERENCES orgs (id),
    receiver_org_id  uuid NOT NULL REFERENCES orgs (id),
    -- The governing policy snapshot: that of the latest share (R12).
    policy           jsonb NOT NULL,
    share_id         uuid NOT NULL REFERENCES shares (id),
    imported_case_id uuid UNIQUE REFERENCES cases (id),
    sender_snapshot  jsonb,
    received_at      timestamptz NOT NULL DEFAULT now(),
    revoked_at       timestamptz,
    UNIQUE (case_id, receiver_org_id),
    CHECK (sharer_org_id <> receiver_org_id)
);
CREATE INDEX received_receiver ON received (receiver_org_id);

ALTER TABLE shares ADD FOREIGN KEY (received_id) REFERENCES received (id);

-- R21: the receiver's copy of the folder tree, made once.
CREATE TABLE received_folders (
    id                uuid PRIMARY KEY,
    received_id       uuid NOT NULL REFERENCES received (id),
    source_folder_id  uuid NOT NULL REFERENCES folders (id),
    parent_id         uuid REFERENCES received_folders (id),
    name              text NOT NULL,
    UNIQUE (received_id, source_folder_id)
);

-- What the receiver may see: one row per (collaboration, evidence), never two.
CREATE TABLE grants (
    received_id       uuid NOT NULL REFERENCES received (id),
    evidence_id       uuid NOT NULL REFERENCES evidence (id),
    share_id          uuid NOT NULL REFERENCES shares (id),
    caption_redacted  boolean NOT NULL DEFAULT false,
    granted_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (received_id, evidence_id)
);
CREATE INDEX grants_share ON grants (share_id);

-- R25–R27: updates offered to an imported copy.
CREATE TABLE case_updates (
    id           uuid PRIMARY KEY,
    received_id  uuid NOT NULL REFERENCES received (id),
    field        text NOT NULL CHECK (field IN ('title', 'case_number', 'description')),
    old_value    text,
    new_value    text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    applied_at   timestamptz
);
CREATE INDEX case_updates_pending ON case_updates (received_id) WHERE applied_at IS NULL;

CREATE TABLE evidence_updates (
    id           uuid PRIMARY KEY,
    received_id  uuid NOT NULL REFERENCES received (id),
    evidence_id  uuid NOT NULL REFERENCES evidence (id),
    kind         text NOT NULL DEFAULT 'added' CHECK (kind IN ('added')),
    created_at   timestamptz NOT NULL DEFAULT now(),
    applied_at   timestamptz,
    UNIQUE (received_id, evidence_id, kind)
);

-- R28: users/groups of the receiving org added by the receiver.
CREATE TABLE received_recipients (
    received_id  uuid NOT NULL REFERENCES received (id),
    user_id      uuid REFERENCES users (id),
    group_id     uuid REFERENCES groups (id),
    added_by     uuid NOT NULL REFERENCES users (id),
    added_at     timestamptz NOT NULL DEFAULT now(),
    CHECK ((user_id IS NULL) <> (group_id IS NULL))
);
CREATE UNIQUE INDEX received_recipients_user ON received_recipients (received_id, user_id) WHERE user_id IS NOT NULL;
CREATE UNIQUE INDEX received_recipients_group ON received_recipients (received_id, group_id) WHERE group_id IS NOT NULL;

-- R32–R34: one row per (notice, recipient); the idempotency key makes a
-- second copy impossible to record.
CREATE TABLE notices (
    id               uuid PRIMARY KEY,
    kind             text NOT NULL CHECK (kind IN ('share', 'internal_share', 'revoke', 'onward_share')),
    share_id         uuid REFERENCES shares (id),
    received_id      uuid REFERENCES received (id),
    recipient        text NOT NULL,
    idempotency_key  text NOT NULL UNIQUE,
    status           text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed')),
    -- A worker sending this notice holds it until then (a lease, not a lock:
    -- no database connection is held while the SMTP server answers).
    claimed_until    timestamptz,
    attempts         integer NOT NULL DEFAULT 0,
    last_error       text,
    message_id       text NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    sent_at          timestamptz
);
