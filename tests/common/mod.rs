//! Paths shared by the integration tests: the repository, the data folder (`GANFIT_DATA`) and
//! the converted models (`GANFIT_MODELS`), defaulting to the Makefile's locations.

// Each test crate compiles this module on its own and uses only part of it.
#![allow(dead_code)]

use std::path::PathBuf;

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
