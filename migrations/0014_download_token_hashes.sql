-- Download tokens are no longer stored. A link share's token is an HMAC of
-- its id under a key derived from CASESHARE_AUDIT_KEY (linkshare::token),
-- which the service recomputes for its emails and for the sharer's view;
-- the table keeps only the token's SHA-256, to find the link by it, as for
-- user tokens. Links made before this had random tokens: their hashes keep
-- them downloading (token_derived = false), but their URL can no longer be
-- shown or sent again.
ALTER TABLE link_shares
    ADD COLUMN token_hash bytea,
    ADD COLUMN token_derived boolean NOT NULL DEFAULT true;

UPDATE link_shares SET token_hash = sha256(convert_to(token, 'UTF8')), token_derived = false;

ALTER TABLE link_shares
    ALTER COLUMN token_hash SET NOT NULL,
    ADD CONSTRAINT link_shares_token_hash_key UNIQUE (token_hash),
    DROP COLUMN token;
