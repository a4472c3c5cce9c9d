//! Network API: tenants, networks, subnets, ports, bindings, security groups and
//! steering policies. The platform's source of truth.
//!
//! Not yet built; this crate exists so the workspace has its final shape.
