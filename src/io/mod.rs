//! File formats, below every model that reads or writes them: photos from bytes, the OBJ
//! reader the model converter uses, mesh writers (OBJ + MTL + PNG, binary glTF) and burnpack
//! weight records. Writers take plain data and return bytes, so they run on wasm too; what a
//! fit loads and exports by name lives in `fit::models` and `fit::export`.

pub mod burnpack;
pub mod glb;
pub mod image;
pub mod mesh;
pub mod obj;

pub use mesh::{MeshData, png_bytes};

/// Writes atomically (temp file + rename), so an interrupted run never leaves a torn file.
pub fn write_atomic(path: &std::path::Path, bytes: &[u8]) -> crate::error::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".partial");
    std::fs::write(&tmp, bytes).map_err(|e| crate::error::Error::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| crate::error::Error::io(path, e))
}
