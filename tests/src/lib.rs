//! Shared helpers for tenet's end-to-end tests (real OVS, real Mininet).
