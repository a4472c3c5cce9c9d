//! tenet's OpenFlow controller.
//!
//! - [`wire`]: the OpenFlow 1.3 and 1.0 codec (parse with nom, emit by hand, byte-identical round trips).
pub mod wire;
