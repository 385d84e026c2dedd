//! Paths shared by the integration tests: the repository, the data folder (`GANFIT_DATA`) and
//! the converted models (`GANFIT_MODELS`), defaulting to the Makefile's locations.

// Each test crate compiles this module on its own and uses only part of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use image::RgbImage;

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn data_dir() -> PathBuf {
    std::env::var_os("GANFIT_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("../shared/data"))
}

pub fn models_dir() -> PathBuf {
    std::env::var_os("GANFIT_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("models"))
}

/// A photo of `../shared/data/samples`.
pub fn sample(name: &str) -> RgbImage {
    let path = data_dir().join("samples").join(name);
    ganfit::io::image::read(&path)
        .unwrap_or_else(|e| panic!("sample photo {}: {e}", path.display()))
}

/// Runs the Khronos glTF validator (strict) on `path`; panics with its report when it rejects.
pub fn validate_glb(path: &Path) {
    let validator = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/gltf-validator");
    assert!(
        validator.join("node_modules/gltf-validator").is_dir(),
        "the Khronos glTF validator is not installed: run `make setup` (npm ci in {})",
        validator.display()
    );
    let out = Command::new("node")
        .arg(validator.join("validate.mjs"))
        .arg("--strict")
        .arg(path)
        .output()
        .expect("running node");
    let report = String::from_utf8_lossy(&out.stdout);
    eprintln!("{report}{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        out.status.success(),
        "the glTF validator rejected the GLB:\n{report}"
    );
}
