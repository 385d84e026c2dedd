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

/// Lower-case hexadecimal of `bytes` (a digest as `sha256sum` prints it).
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The checksum list `make models` writes next to the model files (`sha256sum` format).
pub const MODEL_SUMS: &str = "SHA256SUMS";

/// Reads model file `name` from `dir`, checked against `dir`'s [`MODEL_SUMS`] when that lists
/// it, as the web app checks its manifest: a file changed or damaged since `make models` is
/// refused with both digests named instead of loading (burnpack records carry no checksum of
/// their own; a detector with 4 KB of 0xFF inside used to load). A folder without the list
/// (models built by hand) is read unchecked.
#[cfg(not(target_arch = "wasm32"))]
pub fn read_model_file(dir: &std::path::Path, name: &str) -> crate::error::Result<Vec<u8>> {
    use sha2::{Digest, Sha256};
    let path = dir.join(name);
    let failed = |reason: String| crate::error::Error::model(path.display().to_string(), reason);
    let bytes = std::fs::read(&path).map_err(|e| failed(format!("{e} (run `make models`)")))?;
    let sums = match std::fs::read_to_string(dir.join(MODEL_SUMS)) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(bytes),
        Err(e) => return Err(failed(format!("{MODEL_SUMS}: {e}"))),
    };
    let expected = sums.lines().find_map(|line| {
        let (digest, file) = line.split_once(char::is_whitespace)?;
        (file.trim_start().trim_start_matches('*') == name).then(|| digest.to_ascii_lowercase())
    });
    if let Some(expected) = expected {
        let actual = hex(&Sha256::digest(&bytes));
        if actual != expected {
            return Err(failed(format!(
                "SHA-256 {actual} differs from {MODEL_SUMS}'s {expected}: the file changed since `make models` wrote it (run `make models` again)"
            )));
        }
    }
    Ok(bytes)
}

/// A digest of `dir`'s model files: SHA-256 of its [`MODEL_SUMS`] list (which names every
/// file's own digest), or `"unlisted"` for a folder without the list. Results computed with
/// one models folder can be told from another's (say, two PCA texture models) by it.
#[cfg(not(target_arch = "wasm32"))]
pub fn models_digest(dir: &std::path::Path) -> crate::error::Result<String> {
    use sha2::{Digest, Sha256};
    let path = dir.join(MODEL_SUMS);
    match std::fs::read(&path) {
        Ok(text) => Ok(hex(&Sha256::digest(&text))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok("unlisted".into()),
        Err(e) => Err(crate::error::Error::io(&path, e)),
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;

    #[test]
    fn model_files_are_checked_against_their_sums() {
        let dir = std::env::temp_dir().join(format!("ganfit-sums-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("a.bpk"), b"weights").unwrap();
        std::fs::write(dir.join("b.bpk"), b"other").unwrap();
        // No list: read as it is.
        assert_eq!(read_model_file(&dir, "a.bpk").unwrap(), b"weights");
        // A list naming a.bpk only: b.bpk stays unchecked.
        let wrong = "d5b9f1d0ce79b4ba9b5e0ff2b4f2a5ad0e5dd0a8f0e1d66e6a7e0ec2a06b0a8c";
        let real = {
            use sha2::{Digest, Sha256};
            hex(&Sha256::digest(b"weights"))
        };
        std::fs::write(dir.join(MODEL_SUMS), format!("{real}  a.bpk\n")).unwrap();
        assert_eq!(read_model_file(&dir, "a.bpk").unwrap(), b"weights");
        assert_eq!(read_model_file(&dir, "b.bpk").unwrap(), b"other");
        // A changed file is refused, naming both digests.
        std::fs::write(dir.join("a.bpk"), b"weightz").unwrap();
        let reason = read_model_file(&dir, "a.bpk").unwrap_err().to_string();
        assert!(
            reason.contains(&real) && reason.contains("make models"),
            "{reason}"
        );
        // A wrong list entry is refused too.
        std::fs::write(dir.join(MODEL_SUMS), format!("{wrong}  b.bpk\n")).unwrap();
        assert!(read_model_file(&dir, "b.bpk").is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_models_digest_follows_the_list_of_sums() {
        let dir = std::env::temp_dir().join(format!("ganfit-digest-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert_eq!(models_digest(&dir).unwrap(), "unlisted");
        std::fs::write(dir.join(MODEL_SUMS), "00  texture_pca.bpk\n").unwrap();
        let one = models_digest(&dir).unwrap();
        assert_eq!(one.len(), 64);
        assert_eq!(models_digest(&dir).unwrap(), one);
        // Another texture file, another digest.
        std::fs::write(dir.join(MODEL_SUMS), "01  texture_pca.bpk\n").unwrap();
        assert_ne!(models_digest(&dir).unwrap(), one);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
