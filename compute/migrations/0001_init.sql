-- tenet compute schema, version 1 (SQLite and PostgreSQL: only TEXT and BIGINT).
-- Each table keeps the object's id, the column it is listed by (`owner`: the owning
-- project, or the host's name), an insertion sequence (listing order) and the whole
-- object as JSON text in `body`.

CREATE TABLE flavors (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    seq BIGINT NOT NULL,
    body TEXT NOT NULL
);

CREATE TABLE images (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    seq BIGINT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX images_owner ON images (owner);

CREATE TABLE servers (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    seq BIGINT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX servers_owner ON servers (owner);

CREATE TABLE hosts (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    seq BIGINT NOT NULL,
    body TEXT NOT NULL
);
