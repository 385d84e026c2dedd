//! The CLI as a user drives it, with input it must refuse: each case ends with exit status 1
//! and a message that says what is wrong (never a panic, a signal, or a fit of garbage), and
//! before any model is loaded or any fitting time is spent.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

fn ganfit(args: &[&str]) -> (i32, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_ganfit"))
        .args(args)
        .output()
        .expect("the ganfit binary runs");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    // `code()` is None when a signal (an abort) ended the process.
    (output.status.code().unwrap_or(-1), stderr)
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ganfit-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn refused(args: &[&str], expected: &str) {
    let (code, stderr) = ganfit(args);
    assert_eq!(code, 1, "{args:?}: exit {code}, stderr:\n{stderr}");
    assert!(
        stderr.contains("error: ") && stderr.contains(expected),
        "{args:?}: expected {expected:?} in:\n{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{args:?} panicked:\n{stderr}");
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `ganfit fit PHOTO --out OUT --device cpu EXTRA...` must be refused with `expected`.
fn fit_refused(photo: &Path, out: &Path, extra: &[&str], expected: &str) {
    let mut args = vec!["fit", path(photo), "--out", path(out), "--device", "cpu"];
    args.extend_from_slice(extra);
    refused(&args, expected);
}

#[test]
fn photos_that_are_not_photos_are_refused_before_any_fitting() {
    let dir = scratch("photos");
    let out = dir.join("out");
    let text = dir.join("notes.jpg");
    std::fs::write(&text, "this is not a photo").unwrap();
    let empty = dir.join("empty.png");
    std::fs::write(&empty, b"").unwrap();
    // A device that never ends: read up to the size limit, not until memory runs out.
    refused(
        &["fit", "/dev/zero", "--out", path(&out)],
        "MB are accepted",
    );
    refused(
        &["fit", path(&text), "--out", path(&out)],
        "unrecognised format",
    );
    refused(&["fit", path(&empty), "--out", path(&out)], "empty");
    refused(
        &["fit", path(&dir.join("absent.jpg")), "--out", path(&out)],
        "absent.jpg",
    );
}

#[test]
fn bad_options_are_refused_naming_the_problem() {
    let dir = scratch("options");
    let out = dir.join("out");
    let photo = dir.join("photo.png");
    image::RgbImage::new(64, 64).save(&photo).unwrap();
    let options = |name: &str, text: &str| {
        let file = dir.join(name);
        std::fs::write(&file, text).unwrap();
        file
    };
    let typo = options("typo.json", r#"{"iteration": 99999}"#);
    fit_refused(
        &photo,
        &out,
        &["--options", path(&typo)],
        "unknown field `iteration`",
    );
    let negative = options("negative.json", r#"{"weights": {"pixel": -1}}"#);
    fit_refused(
        &photo,
        &out,
        &["--options", path(&negative)],
        "weights.pixel is -1",
    );
    let array = options("array.json", "[224, 300]");
    fit_refused(
        &photo,
        &out,
        &["--options", path(&array)],
        "expected a JSON object",
    );
    fit_refused(&photo, &out, &["--options", "/dev/zero"], "accepted");
    fit_refused(&photo, &out, &["--iterations", "99999"], "more than 20000");
    fit_refused(&photo, &out, &["--resolution", "8"], "resolution 8");
}

#[test]
fn a_corrupt_identity_evaluation_cache_is_refused_naming_the_file_and_line() {
    let dir = scratch("identity-cache");
    let cache = dir.join("identity.jsonl");
    std::fs::write(&cache, "{\"image\": \"a.jpg\"}\nnot json\n").unwrap();
    let data = common::data_dir().join("celeba-wild");
    let models = common::models_dir();
    refused(
        &[
            "eval",
            "identity",
            "--fitted",
            "--data",
            path(&data),
            "--models",
            path(&models),
            "--limit",
            "2",
            "--cache",
            path(&cache),
        ],
        "identity.jsonl line 1: not a cached image",
    );
}

#[test]
fn a_corrupt_points_file_is_refused_by_the_annotated_embedding_naming_the_line() {
    let dir = scratch("annotated-points");
    let points = dir.join("points.jsonl");
    let good = format!(
        "{{\"yaw\": 10.0, \"fitted_yaw\": 12.0, \"annotated\": {:?}, \"vertices\": [[0.0, 0.0]]}}",
        vec![[1.0f32, 2.0]; 68]
    );
    std::fs::write(&points, format!("{good}\n{{\"yaw\": 10.0, \"fitted_yaw\": 12.0, \"annotated\": [[1.0, 2.0]], \"vertices\": []}}\n")).unwrap();
    refused(
        &["eval", "embedding", "--annotated", path(&points)],
        "points.jsonl line 2: 1 annotated points, expected 68",
    );
    std::fs::write(&points, "not json\n").unwrap();
    refused(
        &["eval", "embedding", "--annotated", path(&points)],
        "points.jsonl line 1: not a fitted photo's points",
    );
}

#[test]
fn an_output_folder_that_cannot_be_written_is_refused_before_the_fit() {
    let dir = scratch("out");
    let photo = dir.join("photo.png");
    image::RgbImage::new(64, 64).save(&photo).unwrap();
    let file = dir.join("a-file");
    std::fs::write(&file, "").unwrap();
    refused(&["fit", path(&photo), "--out", path(&file)], "a-file");
    refused(
        &["fit", path(&photo), "--out", "/proc/ganfit-out"],
        "/proc/ganfit-out",
    );
}

#[test]
fn model_info_describes_odd_but_valid_files_and_refuses_corrupt_ones() {
    use ganfit::face_model::format::{ModelContents, Precision, encode};
    let dir = scratch("model");
    let mut contents = ModelContents::tiny();
    // Provenance text is the converter's, but a file could carry any UTF-8 there.
    contents.header.source.commit = "ü€😀 non-ASCII commit".into();
    let odd = dir.join("odd.gfm");
    std::fs::write(&odd, encode(&contents, Precision::F16).unwrap()).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_ganfit"))
        .args(["model", "info", path(&odd)])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("ü€😀"), "{stdout}");

    let zip = dir.join("zipped.gfm");
    std::fs::write(&zip, b"PK\x03\x04 not a model at all").unwrap();
    refused(&["model", "info", path(&zip)], "not a ganfit face model");
}

mod with_models {
    //! Cases that get as far as loading the models (`GANFIT_MODELS`, `make models`).
    use super::*;

    fn models() -> PathBuf {
        std::env::var_os("GANFIT_MODELS")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models"))
    }

    /// A models folder of links to the real files, with `replace`d files written instead.
    fn models_with(dir: &Path, replace: &[(&str, &[u8])]) -> PathBuf {
        let out = dir.join("models");
        std::fs::create_dir_all(&out).unwrap();
        for entry in std::fs::read_dir(models()).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name();
            if replace.iter().all(|(r, _)| name.to_str() != Some(*r)) {
                std::os::unix::fs::symlink(entry.path(), out.join(&name)).unwrap();
            }
        }
        for (name, bytes) in replace {
            std::fs::write(out.join(name), bytes).unwrap();
        }
        out
    }

    fn grey_photo(dir: &Path) -> PathBuf {
        let photo = dir.join("grey.png");
        image::RgbImage::from_pixel(320, 240, image::Rgb([128, 128, 128]))
            .save(&photo)
            .unwrap();
        photo
    }

    #[test]
    fn a_photo_without_a_face_is_no_face_not_a_fit() {
        let dir = scratch("noface");
        let photo = grey_photo(&dir);
        fit_refused(&photo, &dir.join("out"), &[], "no face found in the photo");
        assert!(!dir.join("out/face.glb").exists());
    }

    #[test]
    fn huge_and_truncated_photos_are_refused_from_their_bytes() {
        let dir = scratch("huge");
        // 16384² grey+alpha: a small file that would decode to 268 million pixels.
        let huge = dir.join("huge.png");
        image::GrayAlphaImage::new(16384, 16384)
            .save(&huge)
            .unwrap();
        refused(
            &["fit", path(&huge), "--out", path(&dir.join("out"))],
            "million pixels",
        );
        let jpeg = dir.join("whole.jpg");
        image::RgbImage::from_fn(64, 48, |x, y| image::Rgb([x as u8 * 4, y as u8 * 5, 60]))
            .save(&jpeg)
            .unwrap();
        let bytes = std::fs::read(&jpeg).unwrap();
        let cut = dir.join("cut.jpg");
        std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
        refused(
            &["fit", path(&cut), "--out", path(&dir.join("out"))],
            "end-of-image marker",
        );
    }

    #[test]
    fn changed_and_lying_model_files_are_refused_naming_them() {
        let dir = scratch("models");
        let photo = grey_photo(&dir);
        // A network changed after `make models` wrote the folder's SHA256SUMS.
        let mut blazeface = std::fs::read(models().join("blazeface.bpk")).unwrap();
        let middle = blazeface.len() / 2;
        blazeface[middle..middle + 4].copy_from_slice(&[0xff; 4]);
        let changed = models_with(&dir.join("changed"), &[("blazeface.bpk", &blazeface)]);
        fit_refused(
            &photo,
            &dir.join("out"),
            &["--models", path(&changed)],
            "blazeface.bpk",
        );
        // A texture model whose metadata claims more than the file holds.
        use ganfit::texture::model::PcaTexture;
        let device = ganfit::device::cpu();
        let n = 4 * 8 * 3;
        let small = PcaTexture::new(
            burn::tensor::Tensor::zeros([1, n], &device),
            burn::tensor::Tensor::zeros([2, n], &device),
            4,
            2,
        )
        .to_bytes()
        .unwrap();
        // Same length, so the file stays a well-formed burnpack: only the claim changes.
        let (honest, claim): (&[u8], &[u8]) = (
            br#"{"resolution":4,"aspect":2,"components":2}"#,
            br#"{"resolution":9,"aspect":2,"components":9}"#,
        );
        let at = small
            .windows(honest.len())
            .position(|w| w == honest)
            .expect("the PCA metadata is not where this test expects it");
        let mut lying = small.clone();
        lying[at..at + claim.len()].copy_from_slice(claim);
        let mut sums = std::fs::read_to_string(models().join("SHA256SUMS")).unwrap();
        sums = sums
            .lines()
            .filter(|l| !l.ends_with("texture_pca.bpk"))
            .map(|l| format!("{l}\n"))
            .collect();
        let lying_dir = models_with(
            &dir.join("lying"),
            &[("texture_pca.bpk", &lying), ("SHA256SUMS", sums.as_bytes())],
        );
        fit_refused(
            &photo,
            &dir.join("out"),
            &["--models", path(&lying_dir), "--texture", "pca"],
            "texture_pca.bpk",
        );
    }

    #[test]
    fn a_corrupt_face_model_is_refused_by_model_info() {
        let dir = scratch("face-model");
        let bytes = std::fs::read(models().join("face_model.gfm")).unwrap();
        let cut = dir.join("cut.gfm");
        std::fs::write(&cut, &bytes[..bytes.len() - 1000]).unwrap();
        refused(&["model", "info", path(&cut)], "truncated or corrupt");
        let mut flipped = bytes.clone();
        let at = flipped.len() - 5000;
        flipped[at] ^= 1;
        let flipped_path = dir.join("flipped.gfm");
        std::fs::write(&flipped_path, &flipped).unwrap();
        refused(&["model", "info", path(&flipped_path)], "checksum");
    }
}

/// `ganfit fit --blendshapes --interior`'s GLB: valid, the whole ICT head (eyes and mouth
/// interior included) with 53 quantised morph targets, and a texture of six tiles (the fit's
/// two, four painted).
fn avatar_has_the_interior(path: &Path) {
    common::validate_glb(path);
    let bytes = std::fs::read(path).unwrap();
    let doc = gltf::Gltf::from_slice_without_validation(&bytes).unwrap();
    assert!(
        doc.extensions_required()
            .any(|e| e == "KHR_mesh_quantization")
    );
    let prim = doc.meshes().next().unwrap().primitives().next().unwrap();
    assert_eq!(prim.morph_targets().count(), 53);
    let vertices = prim.get(&gltf::Semantic::Positions).unwrap().count();
    // `ganfit model info`: 26,783 render vertices with the eyes and the mouth interior, 11,657
    // without.
    assert!(vertices > 25_000, "{vertices} vertices");
    let blob = doc.blob.as_ref().unwrap();
    let gltf::image::Source::View { view, .. } = doc.images().next().unwrap().source() else {
        panic!("the texture is not embedded");
    };
    let texture =
        image::load_from_memory(&blob[view.offset()..view.offset() + view.length()]).unwrap();
    assert_eq!(texture.width(), 6 * texture.height(), "six tiles");
    eprintln!(
        "avatar GLB: {} bytes, {vertices} vertices, texture {} × {}",
        bytes.len(),
        texture.width(),
        texture.height()
    );
}

#[test]
fn track_writes_each_frames_expression_and_pose_and_holds_without_a_face() {
    let dir = scratch("track");
    let data = std::env::var_os("GANFIT_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data"));
    let astronaut = data.join("samples/astronaut.png");
    let fitted = dir.join("fit");
    let (code, stderr) = ganfit(&[
        "fit",
        path(&astronaut),
        "--out",
        path(&fitted),
        "--device",
        "cpu",
        "--landmark-iterations",
        "60",
        "--iterations",
        "2",
        "--resolution",
        "112",
        "--blendshapes",
        "--interior",
    ]);
    assert_eq!(code, 0, "{stderr}");
    avatar_has_the_interior(&fitted.join("face.glb"));
    let frames = dir.join("frames");
    std::fs::create_dir_all(&frames).unwrap();
    std::fs::copy(&astronaut, frames.join("0.png")).unwrap();
    let photo = image::open(&astronaut).unwrap().to_rgb8();
    image::RgbImage::from_pixel(photo.width(), photo.height(), image::Rgb([128; 3]))
        .save(frames.join("1.png"))
        .unwrap();
    std::fs::write(frames.join("notes.txt"), "not a frame").unwrap();
    let out = dir.join("track");
    let (code, stderr) = ganfit(&[
        "track",
        path(&frames),
        "--identity",
        path(&fitted.join("params.json")),
        "--out",
        path(&out),
        "--device",
        "cpu",
        "--iterations",
        "10",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let track: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("track.json")).unwrap()).unwrap();
    assert_eq!(track["blendshapes"].as_array().unwrap().len(), 53);
    assert!(
        track["blendshapes"]
            .as_array()
            .unwrap()
            .contains(&"jawOpen".into())
    );
    // track.glb: the person's rig with the frames as one animation (weights and rotation).
    let glb = out.join("track.glb");
    common::validate_glb(&glb);
    let bytes = std::fs::read(&glb).unwrap();
    let doc = gltf::Gltf::from_slice_without_validation(&bytes).unwrap();
    let animation = doc.animations().next().expect("an animation");
    assert_eq!(animation.channels().count(), 2);
    let prim = doc.meshes().next().unwrap().primitives().next().unwrap();
    assert_eq!(prim.morph_targets().count(), 53);
    let tracked = track["frames"].as_array().unwrap();
    assert_eq!(tracked.len(), 2, "the text file is not a frame");
    assert_eq!(tracked[0]["face_found"], true);
    assert_eq!(tracked[0]["expression"].as_array().unwrap().len(), 53);
    assert_eq!(tracked[1]["face_found"], false);
    assert_eq!(tracked[1]["angles"], tracked[0]["angles"]);
    // Refused: a params.json that is not a fit's, a folder without frames.
    let junk = dir.join("junk.json");
    std::fs::write(&junk, "{}").unwrap();
    refused(
        &[
            "track",
            path(&frames),
            "--identity",
            path(&junk),
            "--out",
            path(&out),
        ],
        "expected a fit's params.json",
    );
    refused(
        &[
            "track",
            path(&out),
            "--identity",
            path(&fitted.join("params.json")),
            "--out",
            path(&out),
        ],
        "no frames",
    );
}

#[test]
fn a_corpus_build_on_two_threads_keeps_faces_skips_the_rest_with_reasons_and_resumes() {
    let dir = scratch("unwrap");
    let photos = dir.join("photos");
    std::fs::create_dir_all(&photos).unwrap();
    std::fs::copy(
        common::data_dir().join("samples/astronaut.png"),
        photos.join("a.png"),
    )
    .unwrap();
    std::fs::write(photos.join("b.jpg"), "not a photo").unwrap();
    image::RgbImage::from_pixel(160, 160, image::Rgb([128, 128, 128]))
        .save(photos.join("c.png"))
        .unwrap();
    // A close-up profile the face mesh refuses (AFLW2000-3D, read from the data folder at test
    // time): its keypoint-posed landmarks are too coarse to unwrap.
    std::fs::copy(
        common::data_dir().join("aflw2000-3d/images/image01662.jpg"),
        photos.join("d.jpg"),
    )
    .unwrap();
    let out = dir.join("corpus");
    let unwrap = || {
        let output = Command::new(env!("CARGO_BIN_EXE_ganfit"))
            .args([
                "texture",
                "unwrap",
                "--photos",
                path(&photos),
                "--out",
                path(&out),
            ])
            .args(["--jobs", "2", "--resolution", "64", "--device", "cpu"])
            .output()
            .expect("the ganfit binary runs");
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert!(output.status.success(), "{stdout}\n{stderr}");
        stdout
    };
    let first = unwrap();
    assert!(
        first.contains("corpus photos: 4") && first.contains("corpus kept: 1"),
        "{first}"
    );
    let index = ganfit::texture::corpus::read_index(&out).unwrap();
    assert_eq!(index.entries.len(), 1);
    assert_eq!(index.entries[0].source, "photos/a.png");
    let id = &index.entries[0].id;
    assert!(out.join(format!("{id}.png")).exists() && out.join(format!("{id}_mask.png")).exists());
    let reasons: Vec<String> = index
        .rejected
        .iter()
        .map(|(s, r)| format!("{s}: {r}"))
        .collect();
    assert!(
        reasons
            .iter()
            .any(|r| r.starts_with("photos/b.jpg: unreadable"))
            && reasons
                .iter()
                .any(|r| r.starts_with("photos/c.png: no face"))
            && reasons
                .iter()
                .any(|r| r.starts_with("photos/d.jpg: face mesh refused the face")),
        "{reasons:?}"
    );
    // A second run finds everything done and changes nothing.
    let second = unwrap();
    assert!(second.contains("corpus photos: 4"), "{second}");
    let again = ganfit::texture::corpus::read_index(&out).unwrap();
    assert_eq!(
        serde_json::to_string(&again).unwrap(),
        serde_json::to_string(&index).unwrap()
    );
}
