-- R54: custody receipts. Each org signs with its own Ed25519 keys: the public
-- half (base64url, as in a JWK) and the private half sealed under a key
-- derived from the audit key (nonce || ChaCha20-Poly1305, the kid as
-- associated data). One active key per org; a rotated key is retired, never
-- removed, so what it signed stays verifiable.
CREATE TABLE org_signing_keys (
    kid            text PRIMARY KEY,
    org_id         uuid NOT NULL REFERENCES orgs (id),
    public_x       text NOT NULL,
    sealed_private bytea NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    retired_at     timestamptz
);
CREATE UNIQUE INDEX org_signing_keys_active ON org_signing_keys (org_id) WHERE retired_at IS NULL;
CREATE INDEX org_signing_keys_org ON org_signing_keys (org_id, created_at);

-- A partner share's manifest, signed by the sharing org when the share
-- completes, and the receiving org's signed acknowledgement after its import.
CREATE TABLE share_receipts (
    share_id     uuid PRIMARY KEY REFERENCES shares (id),
    manifest_jws text NOT NULL,
    manifest_kid text NOT NULL REFERENCES org_signing_keys (kid),
    created_at   timestamptz NOT NULL DEFAULT now(),
    ack_jws      text,
    ack_kid      text REFERENCES org_signing_keys (kid),
    acked_at     timestamptz
);
