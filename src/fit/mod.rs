//! The fitting engine (GANFit's two-stage optimisation).

pub mod adam;
pub mod pose_init;
