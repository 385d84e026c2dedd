//! Texture models in UV space: the progressive GAN generator (GANFit's texture prior), the
//! corpus of unwrapped photo textures it is trained on, and its training.

pub mod latent;
pub mod model;
pub mod pggan;
pub mod weights;

#[cfg(not(target_arch = "wasm32"))]
pub mod augment;
#[cfg(not(target_arch = "wasm32"))]
pub mod corpus;
#[cfg(not(target_arch = "wasm32"))]
pub mod images;
#[cfg(not(target_arch = "wasm32"))]
pub mod pca;
#[cfg(not(target_arch = "wasm32"))]
pub mod train;
