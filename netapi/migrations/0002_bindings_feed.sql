-- tenet netapi schema, version 2: where a binding is plugged, network segments,
-- the `service` role, and the change log's retention floor.
-- Like 0001: only TEXT and BIGINT, valid on SQLite and PostgreSQL.

-- The OpenFlow datapath id (16 hex digits, '' when unknown) of the bridge the
-- port's interface is on, and the interface's name (data flow 3).
ALTER TABLE port_bindings ADD COLUMN datapath_id TEXT NOT NULL DEFAULT '';
ALTER TABLE port_bindings ADD COLUMN interface_name TEXT NOT NULL DEFAULT '';
CREATE INDEX port_bindings_datapath ON port_bindings (datapath_id);

-- Each network's segment (VLAN id on fabric links). NULL only for networks made
-- before this migration until the server assigns them one at start.
ALTER TABLE networks ADD COLUMN segmentation_id BIGINT;
CREATE UNIQUE INDEX networks_segmentation ON networks (segmentation_id);

-- Services (compute, storage, the controller) hold `service`: they may use the
-- gRPC API; through REST they read like a reader.
INSERT INTO roles (id, name, grade) VALUES ('service', 'service', 1);

-- Changes at or below `value` may have been pruned from `changes`: a feed client
-- resuming from an older revision needs a snapshot.
CREATE TABLE change_log_floor (
    id BIGINT PRIMARY KEY,
    value BIGINT NOT NULL
);
INSERT INTO change_log_floor (id, value) VALUES (1, 0);

-- IPAM: per subnet, every assignable address of its pools below `next_ip` is
-- taken, so the lowest free address is found from there with point lookups
-- instead of reading every allocation. No row: start at the first pool.
CREATE TABLE ip_allocation_hints (
    subnet_id TEXT PRIMARY KEY REFERENCES subnets (id) ON DELETE CASCADE,
    next_ip TEXT NOT NULL
);
