//! Parity of the burn ports with the original networks: face-api 1.7.15 and human-models'
//! faceres, BlazeFace and face mesh run by `tests/parity/reference.mjs` on tfjs's pure-JS CPU backend.
//!
//! Both sides see identical pixels: Rust decodes the sample photos and writes raw RGB for the
//! Node script (JPEG decoders differ by ±1). References are generated at test time into the
//! git-ignored `tests/parity/out/` (reused while the inputs are byte-identical) and never
//! committed. Needs `make setup` (npm packages) and `make models` (converted records).
//!
//! Tolerances: detection boxes within 0.25 px and scores within 2e-3; landmarks within 0.5 px
//! (the Rust landmarks against face-api's network outputs mapped through the same crop
//! geometry); ResNet descriptors cosine > 0.999; faceres' raw descriptors cosine > 0.9999
//! and relative error < 1e-3 (CPU only, on three crops: a 224² MobileNet is slow in tfjs's JS).

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

use burn::tensor::{Device, Tensor, TensorData};
use common::{data_dir, models_dir, repo};
use ganfit::device::{block_on, cpu, gpu, read_floats_blocking};
use ganfit::eval::verification::cosine;
use ganfit::nets::{
    BlazeFace, BlazeFaceOptions, Eyes, FaceMesh, FaceNets, Network, Points68, Rect, SquareCrop,
    align, blazeface, facemesh, faceres, landmarks68, resnet,
};
use image::RgbImage;
use serde::Deserialize;

const CPU_IMAGES: [&str; 5] = [
    "astronaut.png",
    "takeo.ppm",
    "einstein.jpg",
    "image_0010.png",
    "breakingbad.jpg",
];
// One photo on wgpu: the same kernels as on the CPU list, at a cost lavapipe can bear in CI.
const GPU_IMAGES: [&str; 1] = ["astronaut.png"];
// faceres on the first face of three photos (the JS reference takes seconds per 224² crop).
const FACERES_IMAGES: [&str; 3] = ["astronaut.png", "takeo.ppm", "image_0010.png"];

#[derive(Debug, Deserialize)]
struct RefRect {
    x: f64,
    y: f64,
    width: f64,
    height: f64,
}

#[derive(Debug, Deserialize)]
struct RefFace {
    score: f64,
    #[serde(rename = "box")]
    rect: RefRect,
    landmark_crop: RefRect,
    landmark_raw: Vec<f32>,
    landmarks: Vec<[f32; 2]>,
    chip: RefRect,
    descriptor: Vec<f32>,
}

#[derive(Debug, Deserialize)]
struct RefImage {
    name: String,
    faces: Vec<RefFace>,
}

/// faceres' `global_pooling/Mean` for one crop.
#[derive(Debug, Deserialize)]
struct RefDescriptor {
    name: String,
    raw: Vec<f32>,
}

/// BlazeFace's raw outputs for one letterboxed photo.
#[derive(Debug, Deserialize)]
struct RefBlazeFace {
    name: String,
    logits: Vec<f32>,
    regressions: Vec<f32>,
}

/// The face mesh's outputs for one crop.
#[derive(Debug, Deserialize)]
struct RefFaceMesh {
    name: String,
    mesh: Vec<f32>,
    confidence: f32,
}

#[derive(Debug, Deserialize)]
struct Reference {
    versions: serde_json::Value,
    images: Vec<RefImage>,
    faceres: Vec<RefDescriptor>,
    blazeface: Vec<RefBlazeFace>,
    facemesh: Vec<RefFaceMesh>,
}

/// A photo sent to Node.
struct Sample {
    name: String,
    image: RgbImage,
}

struct Shared {
    samples: Vec<Sample>,
    /// 224² ArcFace crops for faceres (first face of each of [`FACERES_IMAGES`]).
    faceres_crops: Vec<(String, Vec<f32>)>,
    /// BlazeFace's letterboxed 256² inputs, one per CPU photo.
    blazeface_inputs: Vec<(String, Vec<f32>)>,
    /// 192² face-mesh crops around the largest BlazeFace detection of each CPU photo.
    facemesh_inputs: Vec<(String, Vec<f32>)>,
    reference: Reference,
}

fn fnv1a(hash: &mut u64, bytes: &[u8]) {
    for &b in bytes {
        *hash ^= b as u64;
        *hash = hash.wrapping_mul(0x100_0000_01b3);
    }
}

/// Runs the Node script on the inputs unless a reference for byte-identical inputs exists.
fn run_reference(
    dir: &Path,
    request: &serde_json::Value,
    files: &[(String, Vec<u8>)],
) -> Reference {
    std::fs::create_dir_all(dir).unwrap();
    let request_bytes = serde_json::to_vec_pretty(request).unwrap();
    let script = std::fs::read(repo().join("tests/parity/reference.mjs")).unwrap();
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    fnv1a(&mut hash, &request_bytes);
    fnv1a(&mut hash, &script);
    for (name, bytes) in files {
        fnv1a(&mut hash, name.as_bytes());
        fnv1a(&mut hash, bytes);
    }
    let stamp = format!("{hash:016x}");
    let (out, stamp_file) = (dir.join("reference.json"), dir.join("reference.stamp"));
    let fresh = std::fs::read_to_string(&stamp_file).is_ok_and(|s| s == stamp) && out.exists();
    if !fresh {
        for (name, bytes) in files {
            std::fs::write(dir.join(name), bytes).unwrap();
        }
        std::fs::write(dir.join("request.json"), &request_bytes).unwrap();
        let node_modules = repo().join("tests/parity/node_modules");
        assert!(
            node_modules.exists(),
            "{} is missing: run `make setup`",
            node_modules.display()
        );
        let status = Command::new("node")
            .arg(repo().join("tests/parity/reference.mjs"))
            .arg(dir)
            .current_dir(repo().join("tests/parity"))
            .status()
            .expect("node must be installed (make setup)");
        assert!(status.success(), "the reference script failed: {status}");
        std::fs::write(&stamp_file, &stamp).unwrap();
    }
    serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap()
}

fn shared() -> &'static Shared {
    static SHARED: OnceLock<Shared> = OnceLock::new();
    SHARED.get_or_init(|| {
        let nets = FaceNets::load(&models_dir(), &cpu()).expect("converted models (make models)");
        let mut samples = Vec::new();
        let mut faceres_crops = Vec::new();
        let (mut blazeface_inputs, mut facemesh_inputs) = (Vec::new(), Vec::new());
        // The same BlazeFace the face-api side's `FaceNets` loaded.
        let blazeface = &nets.mediapipe().unwrap().0;
        let mut files = Vec::new();
        let mut images = Vec::new();
        for name in CPU_IMAGES {
            let image = ganfit::io::image::read(data_dir().join("samples").join(name)).unwrap();
            let detections = block_on(nets.detect_with(&image, Eyes::FaceApi)).unwrap();
            if let (Some(face), true) = (detections.faces.first(), FACERES_IMAGES.contains(&name)) {
                let points = block_on(nets.landmarks68(&image, face)).unwrap();
                let transform = align::arcface_transform_sized(&points, faceres::INPUT_SIZE).unwrap();
                faceres_crops.push((format!("{name}#0"), align::warp_image(&image, &transform, faceres::INPUT_SIZE)));
            }
            blazeface_inputs.push((name.to_string(), blazeface::prepare(&image, &blazeface::letterbox(image.width(), image.height())).unwrap()));
            let faces = block_on(blazeface.detect(&image, &cpu(), &BlazeFaceOptions::default())).unwrap();
            if let Some(face) = faces.faces.first() {
                let roi = facemesh::Roi::from_detection(face);
                facemesh_inputs.push((name.to_string(), align::warp_image(&image, &roi.transform(), facemesh::INPUT_SIZE)));
            }
            let rgb = format!("{name}.rgb");
            images.push(serde_json::json!({"name": name, "width": image.width(), "height": image.height(), "rgb": rgb}));
            files.push((rgb, image.as_raw().clone()));
            samples.push(Sample { name: name.to_string(), image });
        }
        let request = serde_json::json!({
            "face_api_models": repo().join("tests/parity/node_modules/@vladmandic/face-api/model"),
            "images": images,
            "faceres_model": repo().join("tests/parity/vendor/human-models/models/faceres.json"),
            "faceres_crops": faceres_crops.iter().map(|(name, _)| serde_json::json!({"name": name, "f32": format!("{name}.faceres.f32")})).collect::<Vec<_>>(),
        });
        for (name, crop) in &faceres_crops {
            files.push((format!("{name}.faceres.f32"), crop.iter().flat_map(|v| v.to_le_bytes()).collect()));
        }
        let mut request = request;
        for (key, model, inputs) in [
            ("blazeface", "blazeface.json", &blazeface_inputs),
            ("facemesh", "facemesh.json", &facemesh_inputs),
        ] {
            request[format!("{key}_model")] = serde_json::json!(repo().join("tests/parity/vendor/human-models/models").join(model));
            request[format!("{key}_inputs")] = inputs.iter().map(|(name, _)| serde_json::json!({"name": name, "f32": format!("{name}.{key}.f32")})).collect();
            for (name, input) in inputs {
                files.push((format!("{name}.{key}.f32"), input.iter().flat_map(|v| v.to_le_bytes()).collect()));
            }
        }
        let reference = run_reference(&repo().join("tests/parity/out"), &request, &files);
        eprintln!("reference versions: {}", reference.versions);
        Shared { samples, faceres_crops, blazeface_inputs, facemesh_inputs, reference }
    })
}

fn rect(r: &RefRect) -> Rect {
    Rect {
        x: r.x,
        y: r.y,
        width: r.width,
        height: r.height,
    }
}

fn iou(a: &Rect, b: &Rect) -> f64 {
    let w = (a.x + a.width).min(b.x + b.width) - a.x.max(b.x);
    let h = (a.y + a.height).min(b.y + b.height) - a.y.max(b.y);
    let inter = w.max(0.0) * h.max(0.0);
    inter / (a.area() + b.area() - inter)
}

#[derive(Debug, Default)]
struct Worst {
    faces: usize,
    box_px: f64,
    score: f64,
    landmark_px: f64,
    resnet_cosine: f64,
}

fn embedding(t: Tensor<2>) -> Vec<f32> {
    read_floats_blocking(t).unwrap().0
}

/// Compares the ports on `device` with the reference for the given photos.
fn compare(device: &Device, names: &[&str]) -> Worst {
    let shared = shared();
    let nets = FaceNets::load(&models_dir(), device).unwrap();
    let mut worst = Worst {
        resnet_cosine: 1.0,
        ..Default::default()
    };
    for sample in shared
        .samples
        .iter()
        .filter(|s| names.contains(&s.name.as_str()))
    {
        let image = &sample.image;
        let reference = shared
            .reference
            .images
            .iter()
            .find(|i| i.name == sample.name)
            .unwrap();
        let detections = block_on(nets.detect_with(image, Eyes::FaceApi)).unwrap();
        // Faces within 0.01 of the threshold may legitimately fall on either side.
        let clear = |s: f64| (s - 0.5).abs() > 0.01;
        let ours = detections
            .faces
            .iter()
            .filter(|f| clear(f.score as f64))
            .count();
        let theirs = reference.faces.iter().filter(|f| clear(f.score)).count();
        assert_eq!(ours, theirs, "{}: face count differs", sample.name);
        for face in &reference.faces {
            let expected = rect(&face.rect);
            let Some(found) = detections
                .faces
                .iter()
                .max_by(|a, b| iou(&a.rect, &expected).total_cmp(&iou(&b.rect, &expected)))
            else {
                panic!("{}: no detection", sample.name)
            };
            if !clear(face.score) && iou(&found.rect, &expected) < 0.5 {
                continue;
            }
            let r = found.rect;
            let box_error = [
                r.x - expected.x,
                r.y - expected.y,
                r.width - expected.width,
                r.height - expected.height,
            ]
            .iter()
            .fold(0f64, |m, d| m.max(d.abs()));
            worst.box_px = worst.box_px.max(box_error);
            worst.score = worst.score.max((found.score as f64 - face.score).abs());

            // Landmarks: ours against face-api's network outputs through the same crop.
            let crop = landmarks68::input_crop(found, image.width(), image.height()).unwrap();
            let c = &face.landmark_crop;
            assert_eq!(
                (crop.rect.x, crop.rect.y, crop.rect.width, crop.rect.height),
                (c.x as u32, c.y as u32, c.width as u32, c.height as u32),
                "{}: landmark crop",
                sample.name
            );
            let points = block_on(nets.landmarks68(image, found)).unwrap();
            let expected_points = landmarks68::points_in_image(&face.landmark_raw, &crop).unwrap();
            for (p, q) in points.iter().zip(&expected_points) {
                worst.landmark_px = worst
                    .landmark_px
                    .max(((p[0] - q[0]) as f64).hypot((p[1] - q[1]) as f64));
            }

            // ResNet: face-api's own chip (from its landmarks) must be ours, then the descriptor.
            let theirs: Points68 =
                std::array::from_fn(|i| [face.landmarks[i][0] + 0.5, face.landmarks[i][1] + 0.5]);
            let chip: SquareCrop =
                align::faceapi_chip(&theirs, image.width(), image.height(), resnet::INPUT_SIZE)
                    .unwrap();
            let h = &face.chip;
            assert_eq!(
                (chip.rect.x, chip.rect.y, chip.rect.width, chip.rect.height),
                (h.x as u32, h.y as u32, h.width as u32, h.height as u32),
                "{}: chip",
                sample.name
            );
            let n = resnet::INPUT_SIZE;
            let input =
                Tensor::<4>::from_data(TensorData::new(chip.sample(image), [1, n, n, 3]), device);
            let descriptor = embedding(nets.resnet().unwrap().forward(input).unwrap().embedding);
            worst.resnet_cosine = worst
                .resnet_cosine
                .min(cosine(&descriptor, &face.descriptor));
            worst.faces += 1;
        }
    }
    worst
}

fn check(worst: &Worst, device: &str) {
    eprintln!("parity {device}: {worst:?}");
    assert!(worst.faces > 0, "no faces compared");
    assert!(
        worst.box_px < 0.25,
        "{device}: box error {} px",
        worst.box_px
    );
    assert!(worst.score < 2e-3, "{device}: score error {}", worst.score);
    assert!(
        worst.landmark_px < 0.5,
        "{device}: landmark error {} px",
        worst.landmark_px
    );
    assert!(
        worst.resnet_cosine > 0.999,
        "{device}: ResNet descriptor cosine {}",
        worst.resnet_cosine
    );
}

#[test]
fn faceres_matches_the_original_on_cpu() {
    let shared = shared();
    let device = cpu();
    let net = FaceNets::load(&models_dir(), &device).unwrap();
    let net = net.faceres().unwrap();
    assert_eq!(shared.faceres_crops.len(), FACERES_IMAGES.len());
    let (mut max_abs, mut max_relative, mut min_cosine) = (0f64, 0f64, 1f64);
    for (name, crop) in &shared.faceres_crops {
        let expected = shared
            .reference
            .faceres
            .iter()
            .find(|e| &e.name == name)
            .unwrap();
        let n = faceres::INPUT_SIZE;
        let input = Tensor::<4>::from_data(TensorData::new(crop.clone(), [1, n, n, 3]), &device);
        let raw = embedding(net.raw(input).unwrap().0);
        assert_eq!(raw.len(), faceres::EMBEDDING_SIZE);
        let norm = |v: &[f32]| v.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
        let difference: Vec<f32> = raw.iter().zip(&expected.raw).map(|(a, b)| a - b).collect();
        let abs = difference.iter().fold(0f64, |m, d| m.max(d.abs() as f64));
        let relative = norm(&difference) / norm(&expected.raw);
        let cos = cosine(&raw, &expected.raw);
        eprintln!(
            "faceres {name}: max |ours − tfjs| {abs:.3e} (descriptor norm {:.2}), relative {relative:.3e}, cosine {cos:.8}",
            norm(&expected.raw)
        );
        max_abs = max_abs.max(abs);
        max_relative = max_relative.max(relative);
        min_cosine = min_cosine.min(cos);
    }
    eprintln!(
        "parity faceres cpu: {} crops, max abs diff {max_abs:.3e}, max relative error {max_relative:.3e}, min cosine {min_cosine:.8}",
        shared.faceres_crops.len()
    );
    assert!(min_cosine > 0.9999, "faceres cosine {min_cosine}");
    assert!(max_relative < 1e-3, "faceres relative error {max_relative}");
}

/// Largest |ours − theirs| over `ours`, relative to max(1, |theirs|).
fn max_error(ours: &[f32], theirs: &[f32]) -> f64 {
    assert_eq!(ours.len(), theirs.len());
    ours.iter()
        .zip(theirs)
        .map(|(a, b)| (a - b).abs() as f64 / (b.abs() as f64).max(1.0))
        .fold(0.0, f64::max)
}

/// BlazeFace and the face mesh on identical inputs: logits and regressions (input pixels),
/// mesh coordinates (crop pixels) within 1e-3 relative to max(1, |value|); face flags within 1e-4.
fn mediapipe_parity(device: &Device, limit: usize) {
    let shared = shared();
    let read_net =
        |network: Network| std::fs::read(models_dir().join(network.file_name())).unwrap();
    let detector = BlazeFace::from_bytes(read_net(Network::BlazeFace), device).unwrap();
    let mesh = FaceMesh::from_bytes(read_net(Network::FaceMesh), device).unwrap();
    let (mut worst_detector, mut worst_mesh, mut worst_flag) = (0f64, 0f64, 0f64);
    for (name, input) in shared.blazeface_inputs.iter().take(limit) {
        let expected = shared
            .reference
            .blazeface
            .iter()
            .find(|e| &e.name == name)
            .unwrap();
        let n = blazeface::INPUT_SIZE;
        let output = detector
            .forward(Tensor::from_data(
                TensorData::new(input.clone(), [1, n, n, 3]),
                device,
            ))
            .unwrap();
        let logits = read_floats_blocking(output.logits).unwrap().0;
        let regressions = read_floats_blocking(output.regressions).unwrap().0;
        let error = max_error(&logits, &expected.logits)
            .max(max_error(&regressions, &expected.regressions));
        eprintln!("BlazeFace {name}: max error {error:.3e}");
        worst_detector = worst_detector.max(error);
    }
    for (name, input) in shared.facemesh_inputs.iter().take(limit) {
        let expected = shared
            .reference
            .facemesh
            .iter()
            .find(|e| &e.name == name)
            .unwrap();
        let n = facemesh::INPUT_SIZE;
        let output = mesh
            .forward(Tensor::from_data(
                TensorData::new(input.clone(), [1, n, n, 3]),
                device,
            ))
            .unwrap();
        let points = read_floats_blocking(output.mesh).unwrap().0;
        let confidence = read_floats_blocking(output.confidence).unwrap().0[0];
        let error = max_error(&points, &expected.mesh);
        let flag = (confidence - expected.confidence).abs() as f64;
        eprintln!(
            "face mesh {name}: max error {error:.3e}, face flag {confidence:.5} (tfjs {:.5})",
            expected.confidence
        );
        worst_mesh = worst_mesh.max(error);
        worst_flag = worst_flag.max(flag);
    }
    eprintln!(
        "parity mediapipe: BlazeFace max error {worst_detector:.3e}, mesh {worst_mesh:.3e}, face flag {worst_flag:.3e}"
    );
    assert!(
        !shared.facemesh_inputs.is_empty(),
        "BlazeFace found no face in the samples"
    );
    assert!(worst_detector < 1e-3, "BlazeFace error {worst_detector}");
    assert!(worst_mesh < 1e-3, "face mesh error {worst_mesh}");
    assert!(worst_flag < 1e-4, "face flag error {worst_flag}");
}

#[test]
fn mediapipe_matches_the_original_on_cpu() {
    mediapipe_parity(&cpu(), usize::MAX);
}

#[test]
fn mediapipe_matches_the_original_on_wgpu() {
    let (device, _) = gpu().expect("the wgpu test tier needs an adapter (lavapipe in CI)");
    mediapipe_parity(&device, 1);
}

#[test]
fn ports_match_the_originals_on_cpu() {
    check(&compare(&cpu(), &CPU_IMAGES), "cpu");
}

#[test]
fn ports_match_the_originals_on_wgpu() {
    // A missing adapter must fail this tier, never skip it.
    let (device, info) = gpu().expect("the wgpu test tier needs an adapter (lavapipe in CI)");
    eprintln!("wgpu adapter: {info}");
    check(&compare(&device, &GPU_IMAGES), "wgpu");
}
