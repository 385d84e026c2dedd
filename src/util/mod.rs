//! Small shared helpers with no better home.

pub mod adam;
pub mod clock;
#[cfg(not(target_arch = "wasm32"))]
pub mod jobs;
pub mod nme;
pub mod rng;
pub mod rotation;
