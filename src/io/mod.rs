//! Files in and out: photos from bytes, the OBJ reader the model converter uses, mesh export
//! (OBJ + MTL + PNG, binary glTF), and the model files a fit loads. Exporters take plain data
//! and return bytes, so they run on wasm too.

pub mod burnpack;
pub mod export;
pub mod glb;
pub mod image;
pub mod mesh;
pub mod models;
pub mod obj;

pub use mesh::{MeshData, png_bytes};
