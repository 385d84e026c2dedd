//! What each fuzz target does with its input: hand the bytes to one of ganfit's parsers the way
//! the CLI or the page would, and check what a parser that accepts them promises. An `Err` is a
//! fine answer; a panic, an abort (a failed allocation) or a broken promise is a crash.
//!
//! The same functions run over the committed corpus on stable Rust in `make test`
//! (`tests/fuzz_corpus.rs` includes this file), so every crash kept in `regressions/` stays
//! fixed without a fuzzer.

use ganfit::device::{cpu, read_floats_blocking};
use ganfit::face_model::format::ModelFile;
use ganfit::face_model::{FaceModel, RegionSelection};
use ganfit::fit::FitOptions;
use ganfit::io::{image, obj};
use ganfit::texture::model::PcaTexture;
use ganfit::texture::weights::load_generator;

/// A photo as the CLI reads it and the page hands it over: any bytes.
pub fn photo(data: &[u8]) {
    if let Ok(decoded) = image::decode(data) {
        let pixels = decoded.width() as u64 * decoded.height() as u64;
        assert!(
            pixels > 0 && pixels <= image::MAX_PIXELS,
            "decoded {pixels} pixels"
        );
    }
}

/// A face-model file, parsed and loaded on the CPU with every region, then evaluated once. The
/// input is the file without its closing SHA-256, which is appended here: a fuzzer would
/// otherwise almost never get past the checksum to the header and the arrays behind it.
pub fn face_model(data: &[u8]) {
    use sha2::{Digest, Sha256};
    let mut bytes = data.to_vec();
    bytes.extend_from_slice(&Sha256::digest(data));
    let Ok(file) = ModelFile::parse(&bytes, "fuzz.gfm") else {
        return;
    };
    let device = cpu();
    for selection in [RegionSelection::default(), RegionSelection::all()] {
        let Ok(model) = FaceModel::from_file(&file, &device, selection) else {
            continue;
        };
        let identity = burn::tensor::Tensor::zeros([1, model.num_identity()], &device);
        let expression = burn::tensor::Tensor::zeros([1, model.num_expression()], &device);
        if let Ok(vertices) = model.vertices(identity, expression) {
            let (values, dims) = read_floats_blocking(vertices).expect("CPU read-back");
            assert_eq!(values.len(), dims.iter().product::<usize>());
        }
    }
}

/// A texture-model file (burnpack with metadata), read as a PCA model and as a GAN generator.
pub fn texture_model(data: &[u8]) {
    let device = cpu();
    if let Ok(pca) = PcaTexture::from_bytes(data.to_vec(), &device, "fuzz.bpk") {
        let coefficients = burn::tensor::Tensor::zeros([1, pca.components()], &device);
        let dims = pca.uv_map(coefficients).dims();
        assert_eq!(dims[0], 1);
    }
    let _ = load_generator(data.to_vec(), &device, "fuzz.bpk");
}

/// Fit options as `--options` and the web API take them: accepted options survive a round trip
/// through the JSON that `params.json` stores.
pub fn options(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(options) = FitOptions::from_json(text) {
        let json = serde_json::to_string(&options).expect("accepted options serialise");
        let again = FitOptions::from_json(&json).expect("serialised options are accepted");
        assert_eq!(again, options);
    }
}

/// An OBJ file (the face-model converter reads ICT-FaceKit's): accepted meshes refer only to
/// the vertices and texture coordinates they define.
pub fn obj(data: &[u8]) {
    for read in [obj::Read::Everything, obj::Read::Positions] {
        if let Ok(mesh) = obj::parse(data, "fuzz.obj", read) {
            for polygon in &mesh.polygons {
                assert!(polygon.corners.len() >= 3);
                for corner in &polygon.corners {
                    assert!((corner.position as usize) < mesh.positions.len());
                    assert!(corner.uv.is_none_or(|t| (t as usize) < mesh.uvs.len()));
                }
            }
        }
    }
}
