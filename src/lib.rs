//! ganfit: single-photo 3D face reconstruction in the manner of GANFit (Gecer et al. 2019),
//! running on WebGPU in the browser and natively.
//!
//! The tree follows the pipeline: [`device`] (where tensors live), [`face_model`] (the ICT
//! morphable model: converter, file format, runtime), [`render`] (the differentiable
//! rasterizer), [`io`] (OBJ reading, mesh export), and the web binding (`web`, wasm only).

pub mod device;
pub mod error;
pub mod face_model;
pub mod fit;
pub mod io;
pub mod render;
pub mod texture;
pub mod util;
#[cfg(target_arch = "wasm32")]
pub mod web;

pub use error::{Error, Result};
