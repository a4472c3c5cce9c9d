-- tenet netapi schema, version 1.
-- Written for both SQLite and PostgreSQL: only TEXT and BIGINT columns, no
-- engine-specific types or functions. Resource tables keep the columns that
-- are searched or constrained; the full API object lives in `body` (JSON text).

-- The global revision: every API write transaction bumps it first (which also
-- serialises writers) and logs what it changed under that revision in `changes`.
CREATE TABLE revision (
    id BIGINT PRIMARY KEY,
    value BIGINT NOT NULL
);
INSERT INTO revision (id, value) VALUES (1, 0);

-- The change log the change feed streams: one row per object written.
CREATE TABLE changes (
    revision BIGINT NOT NULL,
    seq BIGINT NOT NULL,
    kind TEXT NOT NULL,
    op TEXT NOT NULL,
    id TEXT NOT NULL,
    project_id TEXT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (revision, seq)
);

-- Identity (one domain, "default").
CREATE TABLE projects (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL,
    name TEXT NOT NULL UNIQUE,
    rev BIGINT NOT NULL,
    body TEXT NOT NULL
);

CREATE TABLE users (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    rev BIGINT NOT NULL,
    body TEXT NOT NULL
);

CREATE TABLE roles (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    grade BIGINT NOT NULL
);
INSERT INTO roles (id, name, grade) VALUES ('reader', 'reader', 1);
INSERT INTO roles (id, name, grade) VALUES ('member', 'member', 2);
INSERT INTO roles (id, name, grade) VALUES ('admin', 'admin', 3);

CREATE TABLE role_assignments (
    project_id TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role_id TEXT NOT NULL REFERENCES roles (id),
    PRIMARY KEY (project_id, user_id, role_id)
);

CREATE TABLE tokens (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    project_id TEXT REFERENCES projects (id) ON DELETE CASCADE,
    issued_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX tokens_expires ON tokens (expires_at);

CREATE TABLE ec2_credentials (
    access TEXT PRIMARY KEY,
    secret TEXT NOT NULL,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    project_id TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE
);

-- Networking.
CREATE TABLE networks (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL,
    name TEXT NOT NULL,
    shared BIGINT NOT NULL,
    rev BIGINT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX networks_project ON networks (project_id);

CREATE TABLE subnets (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL,
    name TEXT NOT NULL,
    network_id TEXT NOT NULL REFERENCES networks (id),
    rev BIGINT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX subnets_network ON subnets (network_id);

CREATE TABLE ports (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL,
    name TEXT NOT NULL,
    network_id TEXT NOT NULL REFERENCES networks (id),
    mac_address TEXT NOT NULL,
    rev BIGINT NOT NULL,
    body TEXT NOT NULL,
    UNIQUE (network_id, mac_address)
);
CREATE INDEX ports_project ON ports (project_id);

CREATE TABLE ip_allocations (
    subnet_id TEXT NOT NULL REFERENCES subnets (id),
    ip_address TEXT NOT NULL,
    port_id TEXT NOT NULL REFERENCES ports (id) ON DELETE CASCADE,
    PRIMARY KEY (subnet_id, ip_address)
);
CREATE INDEX ip_allocations_port ON ip_allocations (port_id);

CREATE TABLE security_groups (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL,
    name TEXT NOT NULL,
    rev BIGINT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX security_groups_project ON security_groups (project_id);

-- Each project's "default" group, created on first use.
CREATE TABLE default_security_groups (
    project_id TEXT PRIMARY KEY,
    security_group_id TEXT NOT NULL REFERENCES security_groups (id) ON DELETE CASCADE
);

CREATE TABLE security_group_rules (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL,
    name TEXT NOT NULL,
    security_group_id TEXT NOT NULL REFERENCES security_groups (id) ON DELETE CASCADE,
    remote_group_id TEXT REFERENCES security_groups (id) ON DELETE CASCADE,
    rev BIGINT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX security_group_rules_group ON security_group_rules (security_group_id);

CREATE TABLE port_security_groups (
    port_id TEXT NOT NULL REFERENCES ports (id) ON DELETE CASCADE,
    security_group_id TEXT NOT NULL REFERENCES security_groups (id),
    PRIMARY KEY (port_id, security_group_id)
);
CREATE INDEX port_security_groups_group ON port_security_groups (security_group_id);

-- Port bindings (binding-extended): at most one ACTIVE per port.
CREATE TABLE port_bindings (
    port_id TEXT NOT NULL REFERENCES ports (id) ON DELETE CASCADE,
    host TEXT NOT NULL,
    status TEXT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (port_id, host)
);

-- networking-sfc (steering).
CREATE TABLE port_pairs (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL,
    name TEXT NOT NULL,
    rev BIGINT NOT NULL,
    body TEXT NOT NULL
);

CREATE TABLE port_pair_groups (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL,
    name TEXT NOT NULL,
    rev BIGINT NOT NULL,
    body TEXT NOT NULL
);

CREATE TABLE flow_classifiers (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL,
    name TEXT NOT NULL,
    rev BIGINT NOT NULL,
    body TEXT NOT NULL
);

CREATE TABLE port_chains (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL,
    name TEXT NOT NULL,
    rev BIGINT NOT NULL,
    body TEXT NOT NULL
);

-- Which sfc object references which (for 409 "in use" and for cascading checks).
CREATE TABLE sfc_references (
    owner_id TEXT NOT NULL,
    target_kind TEXT NOT NULL,
    target_id TEXT NOT NULL,
    PRIMARY KEY (owner_id, target_kind, target_id)
);
CREATE INDEX sfc_references_target ON sfc_references (target_id);
