//! Isolation proof over installed flows (being written).
