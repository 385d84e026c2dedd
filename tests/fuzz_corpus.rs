//! The fuzz targets (`fuzz/src/lib.rs`) over the committed corpus (`fuzz/corpus/TARGET`) and the
//! crashes the fuzzers found (`fuzz/regressions/TARGET`), on stable Rust: what `make fuzz`
//! explored keeps passing. The ignored `write_seed_corpus` wrote the seeds the fuzzers started
//! from, all made here from nothing (no photo of the data folder is in the corpus).

#[path = "../fuzz/src/lib.rs"]
mod targets;

use std::path::{Path, PathBuf};

type Target = fn(&[u8]);

const TARGETS: [(&str, Target); 5] = [
    ("photo", targets::photo),
    ("face_model", targets::face_model),
    ("texture_model", targets::texture_model),
    ("options", targets::options),
    ("obj", targets::obj),
];

fn fuzz_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

#[test]
fn every_corpus_input_and_every_found_crash_is_handled() {
    for (name, target) in TARGETS {
        let corpus = files(&fuzz_dir().join("corpus").join(name));
        assert!(!corpus.is_empty(), "no corpus for the `{name}` target");
        let regressions = files(&fuzz_dir().join("regressions").join(name));
        for path in corpus.iter().chain(&regressions) {
            let bytes = std::fs::read(path).unwrap();
            let outcome = std::panic::catch_unwind(|| target(&bytes));
            assert!(outcome.is_ok(), "{name}: {} panics", path.display());
        }
        eprintln!(
            "{name}: {} corpus inputs, {} regressions",
            corpus.len(),
            regressions.len()
        );
    }
}

/// Writes the seeds the fuzzers start from: `cargo test --release --features cli --test
/// fuzz_corpus -- --ignored` (then `make fuzz` grows and minimises the corpus).
#[test]
#[ignore]
fn write_seed_corpus() {
    use ganfit::face_model::format::{ModelContents, Precision, encode};
    use ganfit::fit::FitOptions;
    use ganfit::texture::model::PcaTexture;
    use ganfit::texture::pggan::{Generator, PgganConfig};

    let write = |target: &str, name: &str, bytes: &[u8]| {
        let dir = fuzz_dir().join("corpus").join(target);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), bytes).unwrap();
    };

    // Photos: one small gradient in every format the decoder takes, with and without alpha.
    let rgb = image::RgbImage::from_fn(12, 9, |x, y| image::Rgb([x as u8 * 20, y as u8 * 28, 90]));
    let rgba = image::RgbaImage::from_fn(6, 5, |x, y| {
        image::Rgba([200, x as u8 * 40, 10, y as u8 * 60])
    });
    for (format, name) in [
        (image::ImageFormat::Png, "gradient.png"),
        (image::ImageFormat::Jpeg, "gradient.jpg"),
        (image::ImageFormat::Bmp, "gradient.bmp"),
        (image::ImageFormat::Pnm, "gradient.ppm"),
        (image::ImageFormat::WebP, "gradient.webp"),
    ] {
        let mut bytes = std::io::Cursor::new(Vec::new());
        rgb.write_to(&mut bytes, format).unwrap();
        write("photo", name, bytes.get_ref());
    }
    let mut bytes = std::io::Cursor::new(Vec::new());
    rgba.write_to(&mut bytes, image::ImageFormat::Png).unwrap();
    write("photo", "alpha.png", bytes.get_ref());

    // Face models: the format's tiny model at both precisions, without the closing SHA-256
    // (the target appends it).
    let tiny = ModelContents::tiny();
    for (precision, name) in [
        (Precision::F32, "tiny-f32.gfm"),
        (Precision::F16, "tiny-f16.gfm"),
    ] {
        let file = encode(&tiny, precision).unwrap();
        write("face_model", name, &file[..file.len() - 32]);
    }

    // Texture models: a small PCA model and a small generator.
    let device = ganfit::device::cpu();
    let n = 4 * 8 * 3;
    let pca = PcaTexture::new(
        burn::tensor::Tensor::ones([1, n], &device).mul_scalar(0.5),
        burn::tensor::Tensor::ones([2, n], &device).mul_scalar(0.1),
        4,
        2,
    );
    write("texture_model", "pca.bpk", &pca.to_bytes().unwrap());
    let config = PgganConfig {
        latent: 8,
        resolution: 8,
        aspect: 2,
        base_channels: 4,
        full_channel_levels: 1,
        min_channels: 2,
    };
    let generator = ganfit::texture::weights::generator_bytes(&Generator::new(&config, &device));
    write("texture_model", "generator.bpk", &generator.unwrap());

    // Options: none, all of them, and a few nested ones.
    write("options", "empty.json", b"{}");
    let all = serde_json::to_string_pretty(&FitOptions::default()).unwrap();
    write("options", "defaults.json", all.as_bytes());
    write(
        "options",
        "nested.json",
        br#"{"iterations": 20, "resolution": 112, "weights": {"landmarks": 2.0, "identity": 0.5}, "rates": {"identity": 0.01}, "landmark_rates": {"angles": 0.02}}"#,
    );

    // OBJ: positions, texture coordinates, materials, polygons, negative indices.
    write(
        "obj",
        "quad.obj",
        b"# a quad\nv 0 0 0\nv 1 0 0\nv 1 1 0\nv 0 1 0\nvt 0 0\nvt 1 0\nvt 1 1\nvt 0 1\nusemtl skin\nf 1/1 2/2 3/3 4/4\nusemtl eyes\nf -4/-4 -3/-3 -2/-2\nf 1 2 3\n",
    );
}
