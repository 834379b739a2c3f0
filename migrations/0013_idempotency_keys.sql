-- Idempotency-Key on POST (API.md, Conventions). A row is the claim of one
-- key by one bearer token: it is inserted in the transaction that makes the
-- request's effect, so it exists exactly when that effect committed. The
-- answer (status, content type, body) is filled in once the handler returns.
CREATE TABLE idempotency_keys (
    scope        bytea       NOT NULL,           -- SHA-256 of the bearer token
    key          text        NOT NULL,
    request_hash bytea       NOT NULL,           -- SHA-256 of method, path and body
    created_at   timestamptz NOT NULL DEFAULT now(),
    status       smallint,                       -- NULL until the answer is recorded
    content_type text,
    body         bytea,
    PRIMARY KEY (scope, key)
);

CREATE INDEX idempotency_keys_created_at ON idempotency_keys (created_at);
