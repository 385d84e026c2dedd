//! The face model against ICT-FaceKit's own files: conversion, shapes at unit weights,
//! winding, landmarks, the jaw contour, gradients, exports and bad input.
//!
//! Reads `ict-facekit.tar.xz` from `$GANFIT_DATA` (default `../shared/data`); a missing
//! archive fails these tests. The comparison OBJs are unpacked by the system's `tar`/`xz` and
//! read by a parser of their own, so neither the converter's archive reader nor its OBJ reader
//! grades itself.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Instant;

use burn::tensor::{Device, Tensor, TensorData};
use common::{data_dir, validate_glb};
use ganfit::device::{cpu, gpu, read_floats_blocking};
use ganfit::face_model::format::{ModelFile, Precision};
use ganfit::face_model::{FaceArea, FaceModel, RegionSelection, ict, landmarks, pick_contour};
use ganfit::render::{self, Boundary, camera};
use ganfit::util::rng::SplitMix64;
use ganfit::{Error, io};

fn archive() -> PathBuf {
    let path = data_dir().join("ict-facekit.tar.xz");
    assert!(
        path.is_file(),
        "the face model tests need ICT-FaceKit at {} (set GANFIT_DATA to the folder holding ict-facekit.tar.xz)",
        path.display()
    );
    path
}

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("face_model")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The converted model (f16 bases), converted once per test run.
fn model_bytes() -> &'static [u8] {
    static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    BYTES.get_or_init(|| {
        let (bytes, report) = ict::convert(&ict::IctSource::Archive(archive()), Precision::F16).expect("conversion");
        let e = report.storage.max_error;
        eprintln!(
            "converted in {:.1} s: {:.1} MB, f16 max vertex error identity {:.2e} mm, expression {:.2e} mm, mean (f32) {:.2e} mm",
            report.seconds,
            report.bytes as f64 / 1e6,
            e.identity_mm,
            e.expression_mm,
            e.mean_mm
        );
        bytes
    })
}

fn model(device: &Device, selection: RegionSelection) -> FaceModel {
    FaceModel::from_bytes(model_bytes(), "face_model.gfm", device, selection).unwrap()
}

/// ICT's OBJ files for comparison, unpacked once with the system's tar.
fn source_obj(name: &str) -> String {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    let dir = DIR.get_or_init(|| {
        let dir = scratch("ict");
        let wanted = [
            "generic_neutral_mesh",
            "identity007",
            "identity099",
            "jawOpen",
            "eyeBlink_L",
        ]
        .map(|n| format!("FaceXModel/{n}.obj"));
        let status = Command::new("tar")
            .arg("-xJf")
            .arg(archive())
            .arg("-C")
            .arg(&dir)
            .args(&wanted)
            .status()
            .expect("running tar (with xz)");
        assert!(status.success(), "tar could not unpack the comparison OBJs");
        dir
    });
    std::fs::read_to_string(dir.join("FaceXModel").join(format!("{name}.obj"))).unwrap()
}

/// `v` lines of an OBJ, in mm: this test's own reading of ICT's files.
fn obj_positions_mm(text: &str) -> Vec<[f64; 3]> {
    text.lines()
        .filter_map(|l| l.strip_prefix("v "))
        .map(|rest| {
            let c: Vec<f64> = rest
                .split_whitespace()
                .map(|x| x.parse().unwrap())
                .collect();
            [c[0] * 10.0, c[1] * 10.0, c[2] * 10.0]
        })
        .collect()
}

fn weights(n: usize, set: &[(usize, f32)], device: &Device) -> Tensor<2> {
    let mut w = vec![0f32; n];
    for &(i, v) in set {
        w[i] = v;
    }
    Tensor::from_data(TensorData::new(w, [1, n]), device)
}

/// Largest distance (mm) between the model's vertices at the given weights and an OBJ's.
fn max_error_to_obj(
    m: &FaceModel,
    identity: &[(usize, f32)],
    expression: &[(usize, f32)],
    obj: &str,
) -> f64 {
    let device = cpu();
    let shape = m
        .vertices(
            weights(m.num_identity(), identity, &device),
            weights(m.num_expression(), expression, &device),
        )
        .unwrap();
    let values = read_floats_blocking(shape).unwrap().0;
    let reference = obj_positions_mm(&source_obj(obj));
    assert_eq!(reference.len(), 26719);
    m.ict_vertex_indices()
        .iter()
        .enumerate()
        .map(|(s, &v)| {
            (0..3)
                .map(|k| (values[3 * s + k] as f64 - reference[v as usize][k]).powi(2))
                .sum::<f64>()
                .sqrt()
        })
        .fold(0.0, f64::max)
}

#[test]
fn mean_mesh_equals_the_generic_neutral_mesh() {
    let m = model(&cpu(), RegionSelection::all());
    assert_eq!(
        m.num_shape_vertices(),
        24591,
        "every region but ICT's transparent overlays"
    );
    let err = max_error_to_obj(&m, &[], &[], "generic_neutral_mesh");
    eprintln!("mean vs generic_neutral_mesh.obj: max vertex error {err:.2e} mm");
    assert!(err < 1e-3, "{err} mm");
}

#[test]
fn identity_modes_at_weight_one_equal_their_obj() {
    let m = model(&cpu(), RegionSelection::all());
    let bound = ModelFile::parse(model_bytes(), "m")
        .unwrap()
        .header
        .storage
        .max_error
        .identity_mm
        + 1e-3;
    for k in [7, 99] {
        let err = max_error_to_obj(&m, &[(k, 1.0)], &[], &format!("identity{k:03}"));
        // How far the mode moves the face: the check must be able to tell a wrong mode.
        let moved = max_error_to_obj(&m, &[], &[], &format!("identity{k:03}"));
        eprintln!(
            "identity {k} at weight 1 vs identity{k:03}.obj: max vertex error {err:.2e} mm (the mode moves vertices up to {moved:.2} mm)"
        );
        assert!(
            err < bound,
            "identity {k}: {err} mm (storage bound {bound})"
        );
        assert!(
            moved > 20.0 * bound,
            "identity {k} moves the mesh by only {moved} mm"
        );
    }
}

#[test]
fn expressions_at_weight_one_equal_their_obj() {
    let m = model(&cpu(), RegionSelection::all());
    assert_eq!((m.num_identity(), m.num_expression()), (100, 53));
    let bound = ModelFile::parse(model_bytes(), "m")
        .unwrap()
        .header
        .storage
        .max_error
        .expression_mm
        + 1e-3;
    for name in ["jawOpen", "eyeBlink_L"] {
        let j = m.expression_names().iter().position(|n| n == name).unwrap();
        let err = max_error_to_obj(&m, &[], &[(j, 1.0)], name);
        let moved = max_error_to_obj(&m, &[], &[], name);
        eprintln!(
            "expression {name} at weight 1 vs {name}.obj: max vertex error {err:.2e} mm (the blendshape moves vertices up to {moved:.2} mm)"
        );
        assert!(err < bound, "{name}: {err} mm (storage bound {bound})");
        assert!(
            moved > 20.0 * bound,
            "{name} moves the mesh by only {moved} mm"
        );
    }
}

fn sub(a: [f32; 3], b: [f32; 3]) -> [f32; 3] {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}

fn cross(a: [f32; 3], b: [f32; 3]) -> [f32; 3] {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}

fn dot(a: [f32; 3], b: [f32; 3]) -> f32 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

#[test]
fn triangles_wind_consistently_and_face_outwards() {
    let m = model(&cpu(), RegionSelection::all());
    let p = m.mean_positions();
    let tris = m.shape_triangles();
    // Consistent winding: an edge shared by two triangles is walked once each way.
    let mut directed: HashMap<(u32, u32), usize> = HashMap::new();
    for t in tris {
        for k in 0..3 {
            *directed.entry((t[k], t[(k + 1) % 3])).or_default() += 1;
        }
    }
    let clashes = directed.values().filter(|&&n| n > 1).count();
    assert_eq!(
        clashes, 0,
        "{clashes} edges are walked twice in the same direction"
    );
    // Outwards: the face, head and neck enclose a positive volume (each triangle with the
    // head's centre spans a tetrahedron, signed by its winding); the narrow face area and the
    // scleras turn away from the head's and the eyeballs' centres.
    let ict = m.ict_vertex_indices();
    let centre = |range: std::ops::Range<u32>| {
        let pts: Vec<[f32; 3]> = ict
            .iter()
            .zip(p)
            .filter(|(v, _)| range.contains(v))
            .map(|(_, q)| *q)
            .collect();
        let n = pts.len() as f32;
        pts.iter().fold([0.0; 3], |acc, q| {
            [acc[0] + q[0] / n, acc[1] + q[1] / n, acc[2] + q[2] / n]
        })
    };
    let within = |range: std::ops::Range<u32>| {
        tris.iter()
            .filter(move |t| t.iter().all(|&v| range.contains(&ict[v as usize])))
    };
    let outward_share = |range: std::ops::Range<u32>, c: [f32; 3]| {
        let (mut out, mut all) = (0.0, 0.0);
        for t in within(range) {
            let [a, b, d] = t.map(|v| p[v as usize]);
            let n = cross(sub(b, a), sub(d, a));
            let area = dot(n, n).sqrt();
            let centroid = [
                (a[0] + b[0] + d[0]) / 3.0,
                (a[1] + b[1] + d[1]) / 3.0,
                (a[2] + b[2] + d[2]) / 3.0,
            ];
            all += area;
            if dot(n, sub(centroid, c)) > 0.0 {
                out += area;
            }
        }
        out / all
    };
    let head_centre = centre(0..11248);
    let (mut signed, mut unsigned) = (0.0f64, 0.0f64);
    for t in within(0..11248) {
        let [a, b, d] = t.map(|v| sub(p[v as usize], head_centre));
        let volume = dot(a, cross(b, d)) as f64 / 6.0;
        signed += volume;
        unsigned += volume.abs();
    }
    let narrow = outward_share(0..6706, head_centre);
    let sclera_left = outward_share(21451..22221, centre(21451..22221));
    let sclera_right = outward_share(23021..23791, centre(23021..23791));
    eprintln!(
        "face + head + neck: signed volume {:.0} cm³ of {:.0} cm³ unsigned; outward-facing area: narrow face {narrow:.3}, scleras {sclera_left:.3} / {sclera_right:.3}",
        signed / 1e3,
        unsigned / 1e3
    );
    assert!(signed > 0.5 * unsigned && narrow > 0.95 && sclera_left > 0.99 && sclera_right > 0.99);
    // And the renderer's normals agree: the nose tip's normal points out of the face (+z).
    let normals = ganfit::face_model::area_weighted_normals(p, tris);
    assert!(normals[m.landmark_indices()[landmarks::NOSE_TIP] as usize][2] > 0.8);
}

#[test]
fn landmarks_sit_on_the_expected_features_of_the_mean_face() {
    let m = model(&cpu(), RegionSelection::default());
    let device = cpu();
    let mean = Tensor::<3>::from_data(
        TensorData::new(
            m.mean_positions().as_flattened().to_vec(),
            [1, m.num_shape_vertices(), 3],
        ),
        &device,
    );
    let lm = read_floats_blocking(m.landmarks(mean).unwrap()).unwrap().0;
    let at = |i: usize| [lm[3 * i], lm[3 * i + 1], lm[3 * i + 2]];
    let (nose, right_eye_outer, right_eye_inner, left_eye_inner, left_eye_outer) =
        (at(30), at(36), at(39), at(42), at(45));
    // x runs to the subject's left: the subject's right eye is at negative x, left of the
    // nose in a frontal photo.
    assert!(
        right_eye_outer[0] < right_eye_inner[0]
            && right_eye_inner[0] < nose[0]
            && nose[0] < left_eye_inner[0]
            && left_eye_inner[0] < left_eye_outer[0]
    );
    assert!(
        (right_eye_outer[0] + left_eye_outer[0]).abs() < 1.0 && nose[0].abs() < 1.0,
        "symmetric about x = 0"
    );
    let inter_ocular = left_eye_outer[0] - right_eye_outer[0];
    assert!(
        (80.0..100.0).contains(&inter_ocular),
        "outer eye corners {inter_ocular} mm apart"
    );
    // Nose tip frontmost; eyes above the nose, nose above the mouth, the chin lowest.
    assert!((0..68).all(|i| at(i)[2] <= nose[2]));
    let (mouth_right, mouth_left, upper_lip, chin) = (at(48), at(54), at(51), at(8));
    assert!(right_eye_outer[1] > nose[1] && nose[1] > upper_lip[1] && upper_lip[1] > chin[1]);
    assert!((0..68).all(|i| at(i)[1] >= chin[1]));
    assert!(mouth_right[0] < 0.0 && mouth_left[0] > 0.0);
    // The jaw runs from the subject's right ear (0) through the chin (8) to the left (16).
    assert!((0..16).all(|i| at(i)[0] < at(i + 1)[0]));
    // Brows above the eyes.
    assert!(at(19)[1] > at(37)[1] && at(24)[1] > at(44)[1]);
}

/// The eyes' canonical face (`nets::keypoint_pose`, posed by BlazeFace's keypoints where the
/// face mesh refuses a face) is this model's mean face: its 68 points are the landmark
/// vertices, its tragions the named vertices. Regenerate the table from the model when this
/// fails after a converter change.
#[test]
fn the_keypoint_pose_canonical_face_is_the_mean_face() {
    use ganfit::nets::keypoint_pose::{CANONICAL_68, CANONICAL_TRAGIONS, TRAGION_VERTICES};
    let m = model(&cpu(), RegionSelection::default());
    let mean = m.mean_positions();
    let close = |a: [f32; 3], b: [f32; 3]| (0..3).all(|k| (a[k] - b[k]).abs() < 0.05 + 1e-4);
    for (i, (&v, &p)) in m.landmark_indices().iter().zip(&CANONICAL_68).enumerate() {
        assert!(
            close(mean[v as usize], p),
            "landmark {i}: vertex {v} at {:?}, table {p:?}",
            mean[v as usize]
        );
    }
    for (&v, &p) in TRAGION_VERTICES.iter().zip(&CANONICAL_TRAGIONS) {
        assert!(
            close(mean[v as usize], p),
            "tragion vertex {v} at {:?}, table {p:?}",
            mean[v as usize]
        );
    }
}

/// The rotation about y by `yaw` (radians; the nose turns towards +x, the subject's left).
fn yaw_rotation(yaw: f32) -> [[f32; 3]; 3] {
    let (s, c) = yaw.sin_cos();
    [[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]]
}

fn apply(r: &[[f32; 3]; 3], p: [f32; 3]) -> [f32; 3] {
    [0, 1, 2].map(|i| dot(r[i], p))
}

#[test]
fn jaw_contour_follows_the_silhouette_as_the_head_turns() {
    let m = model(&cpu(), RegionSelection::default());
    let contour = m.jaw_contour().lists();
    assert_eq!(contour.len(), 17);
    assert_eq!(contour[8].len(), 1, "the chin keeps its vertex");
    // Each line starts at ICT's jaw vertex, on the frontal outline (the model's own jaw
    // landmarks are surface points calibrated against the face mesh).
    let frontal: Vec<u32> = contour.iter().map(|line| line[0]).collect();
    let normals =
        ganfit::face_model::area_weighted_normals(m.mean_positions(), m.shape_triangles());
    let distance = 600.0;
    for yaw_degrees in [0.0f32, -30.0, 30.0] {
        let rotation = yaw_rotation(yaw_degrees.to_radians());
        let points: Vec<[f32; 3]> = m
            .mean_positions()
            .iter()
            .map(|&p| apply(&rotation, p))
            .map(|p| [p[0], p[1], p[2] - distance])
            .collect();
        let picks = pick_contour(contour, &points, &rotation);
        let steps: Vec<String> = (0..17)
            .map(|k| {
                format!(
                    "{}/{}",
                    contour[k].iter().position(|&v| v == picks[k]).unwrap(),
                    contour[k].len()
                )
            })
            .collect();
        eprintln!(
            "yaw {yaw_degrees}°: pick position/candidates per jaw point 0-16: {}",
            steps.join(" ")
        );
        for k in (0..17).filter(|&k| k != 8) {
            let pick = picks[k] as usize;
            let gap = sub(points[pick], points[frontal[k] as usize]);
            let image_gap = (gap[0] * gap[0] + gap[1] * gap[1]).sqrt();
            let facing = landmarks::side(k) * yaw_degrees < 0.0;
            if yaw_degrees == 0.0 {
                // Frontal: the outline is where ICT's jaw landmarks are.
                assert!(
                    image_gap < 5.0,
                    "frontal jaw point {k}: pick {pick} is {image_gap:.1} mm from landmark vertex {}",
                    frontal[k]
                );
            } else if facing {
                assert_eq!(
                    pick as u32, frontal[k],
                    "yaw {yaw_degrees}: facing-side jaw point {k} left its landmark vertex"
                );
            } else if !(5..12).contains(&k) {
                // Upper jaw points on the side turned away: on the silhouette, where the
                // surface runs along the ray to the eye (normal nearly perpendicular to it).
                let n = apply(&rotation, normals[pick]);
                let to_eye = points[pick].map(|c| -c);
                let cosine = dot(n, to_eye) / dot(to_eye, to_eye).sqrt();
                assert_ne!(
                    pick as u32, frontal[k],
                    "yaw {yaw_degrees}: jaw point {k} stayed on its frontal vertex"
                );
                assert!(
                    cosine.abs() < 0.35,
                    "yaw {yaw_degrees}: jaw point {k} picked vertex {pick} with n·v = {cosine:.2}, not a silhouette"
                );
            }
        }
        // The device rule picks the same points.
        let device = cpu();
        let n = points.len();
        let pt = Tensor::<3>::from_data(
            TensorData::new(points.as_flattened().to_vec(), [1, n, 3]),
            &device,
        );
        let rt = Tensor::<3>::from_data(
            TensorData::new(rotation.as_flattened().to_vec(), [1, 3, 3]),
            &device,
        );
        let on_device = read_floats_blocking(m.contour_landmarks(pt, rt).unwrap())
            .unwrap()
            .0;
        for k in 0..68 {
            let v = if k < 17 {
                picks[k]
            } else {
                m.landmark_indices()[k]
            } as usize;
            assert_eq!(&on_device[3 * k..3 * k + 3], &points[v], "landmark {k}");
        }
    }
}

/// Two mean faces (neutral) and cameras half a metre away that see them turned by `yaws`
/// (degrees).
fn two_mean_faces(m: &FaceModel, yaws: [f32; 2]) -> (Tensor<3>, ganfit::fit::scene::Camera) {
    let device = m.device().clone();
    let t = |v: Vec<f32>, c: usize| Tensor::<2>::from_data(TensorData::new(v, [2, c]), &device);
    let shape = m
        .vertices(
            t(vec![0.0; 2 * m.num_identity()], m.num_identity()),
            t(vec![0.0; 2 * m.num_expression()], m.num_expression()),
        )
        .unwrap();
    let [a, b] = yaws.map(f32::to_radians);
    let camera = ganfit::fit::scene::Camera {
        angles: t(vec![0.0, a, 0.0, 0.0, b, 0.0], 3),
        translation: t(vec![0.0, 0.0, -500.0, 0.0, 0.0, -500.0], 3),
        focal: t(vec![500.0, 500.0], 1),
    };
    (shape, camera)
}

/// Each photo's jaw follows its own convention: the contour for a 2D detector's landmarks, the
/// fixed surface points for the face mesh's; the inner 51 are the same either way.
#[test]
fn jaw_conventions_apply_per_photo() {
    use ganfit::face_model::JawConvention::{Contour, Surface};
    use ganfit::fit::scene::{self, JawConventions};
    let device = cpu();
    let m = model(&device, RegionSelection::default());
    // Both photos turned 35°.
    let (shape, camera) = two_mean_faces(&m, [35.0, 35.0]);
    let project = |jaw: Vec<ganfit::face_model::JawConvention>| {
        let jaw = JawConventions::new(jaw, &device);
        let points = scene::project_landmarks(&m, shape.clone(), &camera, &jaw, 224).unwrap();
        read_floats_blocking(points).unwrap().0
    };
    let (contour, surface, mixed) = (
        project(vec![Contour, Contour]),
        project(vec![Surface, Surface]),
        project(vec![Contour, Surface]),
    );
    let photo = 68 * 2;
    assert_eq!(&mixed[..photo], &contour[..photo]);
    assert_eq!(&mixed[photo..], &surface[photo..]);
    assert_eq!(&contour[17 * 2..photo], &surface[17 * 2..photo]);
    // At 35° the jaw on the side turned away slides to the silhouette: the two differ there.
    let gap = (0..17)
        .map(|k| (contour[2 * k] - surface[2 * k]).hypot(contour[2 * k + 1] - surface[2 * k + 1]))
        .fold(0f32, f32::max);
    assert!(
        gap > 2.0,
        "contour and surface jaw only {gap:.2} px apart at 35°"
    );
}

/// What a fit reports: the vertices where annotators put the 68 at each photo's yaw (between
/// two calibration yaws, between two tables' vertices), except a contour-convention photo's
/// jaw, which stays on the contour.
#[test]
fn reported_landmarks_take_each_photos_annotated_tables_and_keep_a_contour_jaw() {
    use ganfit::face_model::JawConvention::{Contour, Surface};
    use ganfit::fit::scene::{self, JawConventions};
    let device = cpu();
    let m = model(&device, RegionSelection::default());
    let yaws = [10f32, 70.0];
    let (shape, camera) = two_mean_faces(&m, yaws);
    let shape_3d = shape.clone();
    let jaw = JawConventions::new(vec![Contour, Surface], &device);
    let floats = |x| read_floats_blocking(x).unwrap().0;
    let reported = floats(
        scene::project_reported_landmarks(&m, shape.clone(), &camera, &jaw, &yaws, 224).unwrap(),
    );
    let fitted = floats(scene::project_landmarks(&m, shape.clone(), &camera, &jaw, 224).unwrap());
    let vertices = floats(scene::project_vertices(shape, &camera, 224));
    let vs = m.num_shape_vertices();
    let at = |photo: usize, v: u32| {
        let i = 2 * (photo * vs + v as usize);
        [vertices[i], vertices[i + 1]]
    };
    let point =
        |x: &[f32], photo: usize, k: usize| [x[2 * (68 * photo + k)], x[2 * (68 * photo + k) + 1]];
    for (photo, &yaw) in yaws.iter().enumerate() {
        let blend = m.annotated_blend(yaw);
        for k in 0..68 {
            let expected = if photo == 0 && k < 17 {
                point(&fitted, 0, k)
            } else {
                // Blended in 3D, compared in 2D: exact while one table's weight is 1.
                let [(a, wa), (b, wb)] = blend.map(|(table, w)| (at(photo, table[k]), w));
                [wa * a[0] + wb * b[0], wa * a[1] + wb * b[1]]
            };
            let got = point(&reported, photo, k);
            assert!(
                (got[0] - expected[0]).abs() < 1e-3 && (got[1] - expected[1]).abs() < 1e-3,
                "photo {photo}, landmark {k}: {got:?} vs {expected:?}"
            );
        }
    }
    // A turned face's annotations differ from a frontal one's; the sign of the yaw does not
    // matter; a face between two calibration yaws reports from both.
    let first = |yaw: f32| m.annotated_blend(yaw)[0];
    assert_ne!(first(10.0).0, first(70.0).0);
    assert_eq!(m.annotated_blend(-70.0), m.annotated_blend(70.0));
    let [(a, wa), (b, wb)] = m.annotated_blend(30.0);
    assert!(a != b && wa > 0.0 && wb > 0.0 && (wa + wb - 1.0).abs() < 1e-6);
    // There each point lies on the segment between the two tables' vertices, in 3D.
    let blended = floats(
        m.annotated_landmarks(shape_3d.clone(), &[30.0, 30.0])
            .unwrap(),
    );
    let mean = floats(shape_3d);
    for k in 0..68 {
        for c in 0..3 {
            let expected = wa * mean[3 * a[k] as usize + c] + wb * mean[3 * b[k] as usize + c];
            let got = blended[3 * k + c];
            assert!(
                (got - expected).abs() < 1e-3,
                "landmark {k}: {got} vs {expected}"
            );
        }
    }
}

/// The gradient of Σ w · (vertices − c)² with respect to both weight vectors, against central
/// differences of the same forward pass, batched, on a device.
fn check_gradients(device: Device, name: &str) {
    let m = model(&device, RegionSelection::default());
    let (ni, ne, vs) = (m.num_identity(), m.num_expression(), m.num_shape_vertices());
    let mut rng = SplitMix64::new(3);
    let identity: Vec<f32> = (0..2 * ni).map(|_| rng.range(-1.0, 1.0)).collect();
    let expression: Vec<f32> = (0..2 * ne).map(|_| rng.range(0.0, 0.5)).collect();
    let w: Vec<f32> = (0..2 * vs * 3).map(|_| rng.range(0.0, 1.0)).collect();
    // Targets within a millimetre of the shape, so that the loss stays small enough for f32
    // central differences.
    let at_weights = m
        .vertices(
            Tensor::from_data(TensorData::new(identity.clone(), [2, ni]), &device),
            Tensor::from_data(TensorData::new(expression.clone(), [2, ne]), &device),
        )
        .unwrap();
    let noise: Vec<f32> = (0..2 * vs * 3).map(|_| rng.range(-1.0, 1.0)).collect();
    let target =
        (at_weights + Tensor::<3>::from_data(TensorData::new(noise, [2, vs, 3]), &device)).detach();
    let weight = Tensor::<3>::from_data(TensorData::new(w.clone(), [2, vs, 3]), &device);
    let loss = |id: &[f32], ex: &[f32]| {
        let shape = m
            .vertices(
                Tensor::from_data(TensorData::new(id.to_vec(), [2, ni]), &device),
                Tensor::from_data(TensorData::new(ex.to_vec(), [2, ne]), &device),
            )
            .unwrap();
        ((shape - target.clone()).powi_scalar(2) * weight.clone()).sum()
    };
    let id_t =
        Tensor::<2>::from_data(TensorData::new(identity.clone(), [2, ni]), &device).require_grad();
    let ex_t = Tensor::<2>::from_data(TensorData::new(expression.clone(), [2, ne]), &device)
        .require_grad();
    let shape = m.vertices(id_t.clone(), ex_t.clone()).unwrap();
    let grads = ((shape - target.clone()).powi_scalar(2) * weight.clone())
        .sum()
        .backward();
    let g_id = read_floats_blocking(id_t.grad(&grads).unwrap()).unwrap().0;
    let g_ex = read_floats_blocking(ex_t.grad(&grads).unwrap()).unwrap().0;
    let value = |id: &[f32], ex: &[f32]| read_floats_blocking(loss(id, ex)).unwrap().0[0] as f64;
    // The loss is quadratic in the weights: central differences are exact but for rounding,
    // which a larger step keeps small against the change.
    let h = 0.5;
    let mut checks = Vec::new();
    for (which, index) in [
        ("identity", 0usize),
        ("identity", ni + 42),
        ("identity", 99),
        ("expression", 26),
        ("expression", ne + 10),
    ] {
        let (mut plus_id, mut minus_id, mut plus_ex, mut minus_ex) = (
            identity.clone(),
            identity.clone(),
            expression.clone(),
            expression.clone(),
        );
        let analytic = if which == "identity" {
            plus_id[index] += h;
            minus_id[index] -= h;
            g_id[index]
        } else {
            plus_ex[index] += h;
            minus_ex[index] -= h;
            g_ex[index]
        } as f64;
        let numeric = (value(&plus_id, &plus_ex) - value(&minus_id, &minus_ex)) / (2.0 * h as f64);
        checks.push((which, index, analytic, numeric));
    }
    let scale = checks.iter().map(|c| c.3.abs()).fold(1.0, f64::max);
    let worst = checks
        .iter()
        .map(|c| (c.2 - c.3).abs() / scale)
        .fold(0.0, f64::max);
    eprintln!("{name}: largest gradient error {worst:.1e} of the largest gradient ({scale:.0})");
    for (which, index, analytic, numeric) in checks {
        assert!(
            (analytic - numeric).abs() < 1e-3 * scale,
            "{name}: d loss / d {which}[{index}]: analytic {analytic}, numeric {numeric} (scale {scale})"
        );
    }
}

#[test]
fn vertices_gradients_match_finite_differences_on_cpu_and_gpu() {
    check_gradients(cpu().autodiff(), "cpu");
    let (gpu, info) = gpu().expect("the wgpu test tier needs an adapter (lavapipe in CI)");
    eprintln!("wgpu adapter: {info}");
    check_gradients(gpu.autodiff(), "wgpu");
}

/// The first `f` corner of `vertex` (0-based) in ICT's OBJ: its texture coordinate.
fn obj_uv_of_vertex(obj: &str, vertex: u32) -> [f32; 2] {
    let vts: Vec<[f32; 2]> = obj
        .lines()
        .filter_map(|l| l.strip_prefix("vt "))
        .map(|r| {
            let c: Vec<f32> = r.split_whitespace().map(|x| x.parse().unwrap()).collect();
            [c[0], c[1]]
        })
        .collect();
    for line in obj.lines().filter_map(|l| l.strip_prefix("f ")) {
        for corner in line.split_whitespace() {
            let (v, t) = corner.split_once('/').unwrap();
            if v.parse::<u32>().unwrap() == vertex + 1 {
                return vts[t.parse::<usize>().unwrap() - 1];
            }
        }
    }
    panic!("vertex {vertex} is in no face");
}

#[test]
fn blendshape_glb_passes_the_validator_with_53_named_morph_targets() {
    let m = model(&cpu(), RegionSelection::default());
    let mut identity = vec![0f32; m.num_identity()];
    identity[0] = 1.5;
    let rig = ganfit::device::block_on(m.blendshapes(&identity)).unwrap();
    assert_eq!(rig.names.len(), 53);
    assert!(rig.names.iter().any(|n| n == "eyeBlinkLeft"));
    assert!(rig.names.iter().any(|n| n == "browInnerUpRight"));
    let mesh = m.mesh_data(rig.neutral.clone()).unwrap();
    let mut weights = vec![0f32; 53];
    let jaw_open = rig.names.iter().position(|n| n == "jawOpen").unwrap();
    weights[jaw_open] = 0.3;
    let texture = image::RgbImage::from_fn(512, 256, |x, y| image::Rgb([x as u8, y as u8, 90]));
    let rig_glb = |quantized| {
        let morphs = io::glb::MorphTargets {
            names: rig.names.clone(),
            deltas: rig.deltas.clone(),
            weights: weights.clone(),
            quantized,
        };
        io::glb::write_with_morphs(&mesh, Some(&texture), "rig", Some(&morphs)).unwrap()
    };
    let plain = io::glb::write(&mesh, Some(&texture), "rig").unwrap();
    let (floats, glb) = (rig_glb(false), rig_glb(true));
    eprintln!(
        "blendshape GLB {} bytes with 16-bit displacements, {} with f32; the same head without \
         morph targets {} bytes",
        glb.len(),
        floats.len(),
        plain.len()
    );
    for (name, bytes) in [("rig-f32.glb", &floats), ("rig.glb", &glb)] {
        let path = scratch("glb-rig").join(name);
        std::fs::write(&path, bytes).unwrap();
        validate_glb(&path);
    }

    assert!(
        glb.len() < floats.len() * 3 / 4,
        "quantising saves a quarter at least"
    );
    // The f32 file through the gltf crate's reader (it refuses KHR_mesh_quantization; the
    // quantised one is read by three.js in the app test, and by the unit test of io::glb).
    let (doc, buffers, _) = gltf::import_slice(&floats).unwrap();
    let gmesh = doc.meshes().next().unwrap();
    assert_eq!(gmesh.weights().unwrap(), &weights[..]);
    let extras = gmesh.extras().as_ref().unwrap().get();
    assert!(extras.contains("\"jawOpen\""), "{extras}");
    let prim = gmesh.primitives().next().unwrap();
    let reader = prim.reader(|b| Some(&buffers[b.index()]));
    let targets: Vec<Vec<[f32; 3]>> = reader
        .read_morph_targets()
        .map(|(positions, _, _)| positions.unwrap().collect())
        .collect();
    assert_eq!(targets.len(), 53);
    // jawOpen at weight 1 moves the chin (landmark 8) down by a jaw's opening, in metres.
    let chin = m.landmark_indices()[8];
    let r = m.render_to_shape().iter().position(|&s| s == chin).unwrap();
    let drop = targets[jaw_open][r];
    eprintln!("jawOpen moves the chin by {drop:?} m");
    assert!(
        drop[1] < -0.005 && drop[1] > -0.05,
        "jawOpen moves the chin by {drop:?} m"
    );
    // A blink moves no chin vertex, and a part of the head only.
    let blink = rig.names.iter().position(|n| n == "eyeBlinkLeft").unwrap();
    assert_eq!(targets[blink][r], [0.0; 3]);
    let moved = |t: &Vec<[f32; 3]>| t.iter().filter(|d| d.iter().any(|&c| c != 0.0)).count();
    let total: usize = targets.iter().map(moved).sum();
    eprintln!(
        "{} of {} render vertices blink; {total} sparse entries over the 53 targets",
        moved(&targets[blink]),
        mesh.uvs.len()
    );
    assert!(
        moved(&targets[blink]) > 0 && moved(&targets[blink]) < mesh.uvs.len() / 2,
        "{} vertices blink",
        moved(&targets[blink])
    );
}

#[test]
fn exported_glb_passes_the_khronos_validator_and_reads_back() {
    let m = model(&cpu(), RegionSelection::default());
    let mesh = m.mesh_data(m.mean_positions().to_vec()).unwrap();
    let texture =
        image::RgbImage::from_fn(512, 256, |x, y| image::Rgb([(x / 2) as u8, y as u8, 128]));
    let glb = io::glb::write(&mesh, Some(&texture), "mean_face").unwrap();
    let dir = scratch("glb");
    let path = dir.join("mean_face.glb");
    std::fs::write(&path, &glb).unwrap();

    validate_glb(&path);

    let (doc, buffers, images) = gltf::import_slice(&glb).unwrap();
    let prim = doc.meshes().next().unwrap().primitives().next().unwrap();
    let reader = prim.reader(|b| Some(&buffers[b.index()]));
    let positions: Vec<[f32; 3]> = reader.read_positions().unwrap().collect();
    let uvs: Vec<[f32; 2]> = reader.read_tex_coords(0).unwrap().into_f32().collect();
    let indices: Vec<u32> = reader.read_indices().unwrap().into_u32().collect();
    assert_eq!(positions.len(), m.num_render_vertices());
    assert_eq!(indices.len(), 3 * m.triangles().len());
    assert!(uvs.iter().flatten().all(|&x| (0.0..=1.0).contains(&x)));
    assert_eq!(
        (images.len(), images[0].width, images[0].height),
        (1, 512, 256)
    );
    // Against ICT's own texture coordinates: the face sits in the left half of the 2:1 atlas
    // (s = u / 2), and glTF's t runs down the image (t = 1 − v).
    let neutral = source_obj("generic_neutral_mesh");
    for &landmark in m.landmark_indices() {
        let [u, v] = obj_uv_of_vertex(&neutral, m.ict_vertex_indices()[landmark as usize]);
        let r = m
            .render_to_shape()
            .iter()
            .position(|&s| s == landmark)
            .unwrap();
        let [s, t] = uvs[r];
        assert!(
            (s - u / 2.0).abs() < 1e-6 && (t - (1.0 - v)).abs() < 1e-6,
            "landmark vertex {landmark}: glTF uv ({s}, {t}), ICT uv ({u}, {v})"
        );
        assert!(
            (positions[r][0] - m.mean_positions()[landmark as usize][0] / 1000.0).abs() < 1e-7,
            "metres"
        );
    }
    // The OBJ export says the same in OBJ's convention.
    let files = io::obj::write(&mesh, "mean_face", Some("mean_face.png")).unwrap();
    let back = io::obj::parse(
        files.obj.as_bytes(),
        "mean_face.obj",
        io::obj::Read::Everything,
    )
    .unwrap();
    assert_eq!(
        (back.positions.len(), back.polygons.len()),
        (m.num_shape_vertices(), m.triangles().len())
    );
    let nose = m.landmark_indices()[landmarks::NOSE_TIP];
    let corner = back
        .polygons
        .iter()
        .flat_map(|p| &p.corners)
        .find(|c| c.position == nose)
        .unwrap();
    let [u, v] = obj_uv_of_vertex(&neutral, m.ict_vertex_indices()[nose as usize]);
    let uv = back.uvs[corner.uv.unwrap() as usize];
    assert!(
        (uv[0] - u as f64 / 2.0).abs() < 1e-6 && (uv[1] - v as f64).abs() < 1e-6,
        "OBJ vt {uv:?} vs ICT ({u}, {v})"
    );
}

#[test]
fn mean_face_renders_with_its_mask_and_texture() {
    // Frontal at 600 mm, 160 px: the face mask covers the nose and the cheeks, not the
    // background or the ears, and the texture's face slot lands on the face.
    let device = cpu();
    let m = model(&device, RegionSelection::default());
    let size = 160;
    let vs = m.num_shape_vertices();
    let shape = Tensor::<3>::from_data(
        TensorData::new(m.mean_positions().as_flattened().to_vec(), [1, vs, 3]),
        &device,
    );
    let rotation = camera::euler_rotation(Tensor::zeros([1, 3], &device));
    let translation =
        Tensor::<2>::from_data(TensorData::new(vec![0.0f32, 0.0, -600.0], [1, 3]), &device);
    let focal = Tensor::<2>::from_data(TensorData::new(vec![2.2 * size as f32], [1, 1]), &device);
    let camera_points =
        camera::transform(m.render_positions(shape).unwrap(), rotation, translation);
    let clip = camera::project(
        camera_points,
        focal,
        size,
        size,
        camera::DepthRange {
            near: 100.0,
            far: 2000.0,
        },
    );
    let rast = render::rasterize(clip, m.topology(), size, size).unwrap();
    let mask = read_floats_blocking(
        render::interpolate(m.face_mask(FaceArea::Narrow), rast.clone(), m.topology()).unwrap(),
    )
    .unwrap()
    .0;
    let uv = render::interpolate(m.uvs(), rast.clone(), m.topology()).unwrap();
    // Left half red (the face slot), right half blue (back of the head).
    let (tw, th) = (64, 32);
    let map: Vec<f32> = (0..th * tw)
        .flat_map(|i| {
            if i % tw < tw / 2 {
                [1.0, 0.0, 0.0]
            } else {
                [0.0, 0.0, 1.0]
            }
        })
        .collect();
    let colour = render::texture(
        Tensor::from_data(TensorData::new(map, [1, th, tw, 3]), &device),
        uv,
        Boundary::Clamp,
    )
    .unwrap();
    let colour = read_floats_blocking(colour).unwrap().0;
    let ids = read_floats_blocking(render::triangle_ids(&rast).float())
        .unwrap()
        .0;
    let img = image::RgbImage::from_fn(size as u32, size as u32, |x, y| {
        let i = y as usize * size + x as usize;
        let c = if ids[i] > 0.0 {
            [colour[3 * i], mask[i], colour[3 * i + 2]]
        } else {
            [1.0, 1.0, 1.0]
        };
        image::Rgb(c.map(|v| (v.clamp(0.0, 1.0) * 255.0) as u8))
    });
    let out = scratch("render").join("mean_face.png");
    img.save(&out).unwrap();
    eprintln!(
        "render for eyeballing (red: face uv slot, green: face mask): {}",
        out.display()
    );
    let at = |x: usize, y: usize| y * size + x;
    let centre = at(size / 2, size / 2);
    assert!(
        ids[centre] > 0.0 && mask[centre] > 0.99 && colour[3 * centre] > 0.9,
        "the nose is face"
    );
    assert_eq!(ids[at(2, 2)], 0.0, "corner is background");
    let covered = ids.iter().filter(|&&i| i > 0.0).count();
    let masked = mask.iter().filter(|&&v| v > 0.5).count();
    assert!(
        masked > covered / 3 && masked < covered,
        "mask {masked} of {covered} covered pixels"
    );
}

fn conversion_error(path: &Path) -> String {
    match ict::convert(&ict::IctSource::from_path(path), Precision::F16) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("{} converted", path.display()),
    }
}

/// A `.tar.xz` holding the given files.
fn tar_xz(path: &Path, files: &[(&str, &[u8])]) {
    let mut builder = tar::Builder::new(Vec::new());
    for (name, bytes) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder.append_data(&mut header, name, *bytes).unwrap();
    }
    let tar = builder.into_inner().unwrap();
    let mut xz = Vec::new();
    lzma_rs::xz_compress(&mut &tar[..], &mut xz).unwrap();
    std::fs::write(path, xz).unwrap();
}

#[test]
fn bad_sources_and_model_files_are_refused_naming_the_file() {
    let dir = scratch("bad");
    let original = std::fs::read(archive()).unwrap();
    let truncated = dir.join("truncated.tar.xz");
    std::fs::write(&truncated, &original[..original.len() / 3]).unwrap();
    let err = conversion_error(&truncated);
    assert!(
        err.contains("truncated.tar.xz") && err.contains("cannot decompress"),
        "{err}"
    );

    let garbage = dir.join("garbage.tar.xz");
    std::fs::write(&garbage, vec![0x5a; 4096]).unwrap();
    let err = conversion_error(&garbage);
    assert!(
        err.contains("garbage.tar.xz") && err.contains("not an .xz file"),
        "{err}"
    );

    let other = dir.join("other.tar.xz");
    tar_xz(&other, &[("photos/readme.txt", b"some other archive")]);
    let err = conversion_error(&other);
    assert!(
        err.contains("other.tar.xz")
            && err.contains("not the ICT-FaceKit archive")
            && err.contains("missing"),
        "{err}"
    );

    let edited = dir.join("edited.tar.xz");
    let neutral = source_obj("generic_neutral_mesh");
    tar_xz(
        &edited,
        &[(
            "FaceXModel/generic_neutral_mesh.obj",
            neutral.replace("v 0 -2.48251", "v 0 -2.48252").as_bytes(),
        )],
    );
    let err = conversion_error(&edited);
    assert!(
        err.contains("edited.tar.xz: FaceXModel/generic_neutral_mesh.obj")
            && err.contains("SHA-256"),
        "{err}"
    );

    // Model files: another version, truncated.
    let mut other_version = model_bytes().to_vec();
    other_version[8] = 99;
    let err = FaceModel::from_bytes(
        &other_version,
        "models/face_model.gfm",
        &cpu(),
        RegionSelection::default(),
    )
    .unwrap_err();
    assert!(
        matches!(&err, Error::ModelFile { path, reason } if path == "models/face_model.gfm" && reason.contains("version 99")),
        "{err}"
    );
    let bytes = model_bytes();
    let err = FaceModel::from_bytes(
        &bytes[..bytes.len() - 1000],
        "models/face_model.gfm",
        &cpu(),
        RegionSelection::default(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("truncated or corrupt"), "{err}");
}

#[test]
fn converted_file_records_its_sources_and_stays_compact() {
    let bytes = model_bytes();
    let start = Instant::now();
    let file = ModelFile::parse(bytes, "face_model.gfm").unwrap();
    let h = &file.header;
    assert_eq!(h.unit, "mm");
    assert_eq!(h.source.commit, ict::UPSTREAM_COMMIT);
    assert_eq!(h.source.files.len(), 157);
    assert!(
        h.source
            .files
            .iter()
            .all(|(path, sha)| ict::MANIFEST.contains(&format!("{sha}  {path}")))
    );
    assert!(
        h.source
            .copyright
            .contains("USC Institute for Creative Technologies")
    );
    let e = h.storage.max_error;
    assert!(
        e.identity_mm < 0.01 && e.expression_mm < 0.05 && e.mean_mm < 1e-4,
        "{e:?}"
    );
    let mb = model_bytes().len() as f64 / 1e6;
    assert!((20.0..26.0).contains(&mb), "{mb} MB");
    let m = FaceModel::from_file(&file, &cpu(), RegionSelection::default()).unwrap();
    assert_eq!((m.num_shape_vertices(), m.uv_atlas().aspect()), (11248, 2));
    eprintln!(
        "model file {mb:.1} MB; parse + load (default selection) {:.2} s",
        start.elapsed().as_secs_f64()
    );
}
