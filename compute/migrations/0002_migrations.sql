-- tenet compute schema, version 2: live migrations (Nova's `migrations`), kept as the
-- other objects are: the migration's UUID, the server it moves (`owner`), the insertion
-- sequence and the whole record as JSON text.

CREATE TABLE migrations (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    seq BIGINT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX migrations_owner ON migrations (owner);
