//! Small shared helpers with no better home.

pub mod adam;
pub mod clock;
pub mod nme;
pub mod rng;
