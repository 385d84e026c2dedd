//! ganfit: single-photo 3D face reconstruction in the manner of GANFit (Gecer et al. 2019),
//! running on WebGPU in the browser and natively.
//!
//! The tree follows the pipeline: [`device`] (where tensors live), [`io`] (photos in, meshes
//! out, model files), [`face_model`] (the ICT morphable model), [`nets`] (the pretrained face
//! networks and alignment), [`render`] (the differentiable rasterizer), [`texture`] (the UV
//! texture GAN, PCA and corpus), [`fit`] (the two-stage optimisation), [`eval`] (metrics), and
//! the web binding (`web`, wasm only).

pub mod device;
pub mod error;
pub mod eval;
pub mod face_model;
pub mod fit;
pub mod io;
pub mod nets;
pub mod render;
pub mod texture;
#[cfg(not(target_arch = "wasm32"))]
pub mod texture_corpus;
pub mod util;
#[cfg(target_arch = "wasm32")]
pub mod web;

pub use error::{Error, Result};
