//! Files in and out: the OBJ reader the model converter uses, and mesh export (OBJ + MTL +
//! PNG, binary glTF). Exporters take plain data and return bytes, so they run on wasm too.

pub mod glb;
pub mod mesh;
pub mod obj;

pub use mesh::{MeshData, png_bytes};
