-- R60 (N6): recorded answers are now sealed under the requester's token.
-- Answers recorded before were kept in plain text (a new user's bearer token
-- among them): drop them. A retry of such a request within the 24 hours its
-- key lives gets 409 ("applied, read the resource") instead of a replay; the
-- claim itself stays, so nothing is applied twice.
UPDATE idempotency_keys SET status = NULL, content_type = NULL, body = NULL
 WHERE body IS NOT NULL;
