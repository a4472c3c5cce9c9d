//! Compute service: scheduler, hypervisor drivers and VM lifecycle.
//!
//! Not yet built; this crate exists so the workspace has its final shape.
