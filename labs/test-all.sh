#!/usr/bin/env bash
# Runs tenet's whole test suite: format and lint checks, unit and conformance
# tests, and the end-to-end tests against real Open vSwitch and Mininet.
#
# The end-to-end tests need root and a running Open vSwitch (labs/setup-host.sh
# installs and starts it); without them they fail with a message saying so. The IPS
# tests (tests/tests/ips_appliance.rs, via labs/ips-appliance.sh) also need Suricata,
# which labs/setup-host.sh installs too.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

section() { printf '\n=== %s ===\n' "$*"; }

section "format (cargo fmt --check)"
cargo fmt --all -- --check

section "lint (cargo clippy, warnings are errors)"
cargo clippy --workspace --all-targets -- -D warnings

section "build"
cargo build --workspace --all-targets

section "tests (unit, conformance, property, end-to-end)"
# The end-to-end tests run Mininet labs one after another (LAB_LOCK); two
# threads keep the unit tests quick without starving the labs.
cargo test --workspace -- --test-threads=2

section "all tests passed"
