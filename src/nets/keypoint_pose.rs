//! 68 landmarks for a face the face mesh refuses: a canonical face posed by BlazeFace's six
//! keypoints.
//!
//! The face mesh is trained on faces that show both eyes; in profile it refuses most faces
//! (face flag below [`super::facemesh::MIN_CONFIDENCE`]) and is far off on the rest. face-api's
//! 68-point network used to stand in, but on close-up profiles it collapses onto the ear or
//! the hair (NME 27.9 % on the 27 faces the mesh refuses in AFLW2000-3D). BlazeFace's keypoints
//! are coarse (12–16 % of the face size off there) but never that far off, and a rigid face
//! fitted to them inherits their pose without their noise shape: 15.4 % on the same faces;
//! with the annotated eyes, nose and mouth in their place it would be 5.0 % (the canonical
//! shape's own share).
//!
//! The pose is found by search, not by a closed form: six noisy points, one of them a hidden
//! ear that BlazeFace guesses, give POS-style least squares mirrored or flipped minima. Each
//! rotation on a grid (yaw ±100°, pitch and roll ±40°) gets its best scale and shift in closed
//! form (scaled orthography); the best grid rotation is then refined by coordinate descent.

use super::Points68;
use crate::util::rotation::{euler_matrix, rotate};

/// The 68 Multi-PIE landmarks of ICT-FaceKit's mean face (MIT), mm, x to the subject's left,
/// y up, z out of the face: the converted model's `multipie68` vertices (`SURFACE_JAW` and
/// `CALIBRATED_INNER` in `face_model::landmarks`: the face mesh's jaw convention, surface
/// points, as AFLW2000-3D annotates them). `tests/face_model.rs` checks them against the
/// model file to 0.05 mm.
#[rustfmt::skip]
pub const CANONICAL_68: [[f32; 3]; 68] = [
    [-73.7, 29.9, 35.4],
    [-72.1, 7.4, 35.8],
    [-69.7, -8.2, 37.2],
    [-67.0, -22.7, 42.8],
    [-60.5, -39.7, 57.0],
    [-48.2, -59.0, 65.5],
    [-34.5, -67.3, 82.8],
    [-22.7, -71.0, 97.3],
    [0.0, -75.7, 104.3],
    [22.7, -71.0, 97.3],
    [34.5, -67.3, 82.8],
    [48.2, -59.0, 65.5],
    [59.4, -45.0, 53.2],
    [67.0, -22.7, 42.8],
    [69.7, -8.2, 37.2],
    [72.1, 7.4, 35.8],
    [73.7, 29.9, 35.4],
    [-58.2, 52.0, 79.1],
    [-46.7, 58.6, 93.3],
    [-34.7, 60.5, 100.8],
    [-29.0, 58.1, 103.6],
    [-18.0, 56.4, 106.5],
    [18.0, 56.4, 106.5],
    [29.6, 60.4, 103.1],
    [34.7, 60.5, 100.8],
    [46.7, 58.6, 93.3],
    [57.5, 50.1, 81.4],
    [0.0, 35.4, 108.4],
    [0.0, 23.7, 117.2],
    [0.0, 11.6, 126.6],
    [0.0, 0.9, 130.9],
    [-11.3, -9.4, 110.0],
    [-7.3, -9.8, 113.3],
    [0.0, -10.1, 117.3],
    [6.0, -11.4, 114.2],
    [10.9, -8.0, 110.8],
    [-44.0, 35.2, 87.1],
    [-36.9, 39.2, 94.3],
    [-27.8, 39.3, 95.1],
    [-19.3, 34.4, 92.3],
    [-27.3, 30.7, 93.8],
    [-36.9, 30.4, 92.9],
    [18.9, 34.5, 92.8],
    [24.7, 37.8, 93.5],
    [36.9, 39.2, 94.3],
    [44.0, 35.2, 87.1],
    [38.5, 30.7, 92.1],
    [27.3, 30.7, 93.8],
    [-25.3, -35.2, 101.9],
    [-16.5, -29.3, 112.1],
    [-7.3, -24.2, 117.3],
    [0.0, -24.8, 118.4],
    [3.7, -24.4, 118.1],
    [16.5, -29.3, 112.1],
    [25.2, -34.6, 102.4],
    [18.0, -40.6, 109.0],
    [8.5, -43.3, 114.5],
    [0.0, -43.8, 115.5],
    [-6.6, -43.5, 115.0],
    [-18.0, -40.6, 109.0],
    [-24.3, -34.7, 102.3],
    [-9.0, -32.3, 112.5],
    [0.0, -31.8, 115.7],
    [5.0, -32.4, 113.8],
    [22.4, -34.3, 99.2],
    [5.6, -33.8, 112.2],
    [0.0, -34.0, 112.5],
    [-9.0, -33.8, 111.2],
];

/// ICT vertices at the ear tragions (subject's right, left): where BlazeFace's ear keypoints
/// sit, in front of the ear canal, between the eyes' and the nose tip's height.
pub const TRAGION_VERTICES: [u32; 2] = [7939, 7212];
/// Their positions on the mean face (mm), as [`CANONICAL_68`].
pub const CANONICAL_TRAGIONS: [[f32; 3]; 2] = [[-75.2, 13.1, -4.9], [75.2, 13.1, -4.9]];

/// The canonical face's points for BlazeFace's keypoints, in their order
/// ([`super::blazeface::KEYPOINTS`]): eye centres (the mean of each eye's six landmarks), nose
/// tip (landmark 30), mouth centre (inner lips' midpoints 62 and 66), ear tragions.
pub fn canonical_keypoints() -> [[f32; 3]; 6] {
    let mean = |indices: &[usize]| {
        let n = indices.len() as f32;
        let mut m = [0.0f32; 3];
        for &i in indices {
            for (k, v) in m.iter_mut().enumerate() {
                *v += CANONICAL_68[i][k] / n;
            }
        }
        m
    };
    [
        mean(&[36, 37, 38, 39, 40, 41]),
        mean(&[42, 43, 44, 45, 46, 47]),
        CANONICAL_68[30],
        mean(&[62, 66]),
        CANONICAL_TRAGIONS[0],
        CANONICAL_TRAGIONS[1],
    ]
}

/// The canonical face fitted to six keypoints.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KeypointPose {
    /// [`CANONICAL_68`] projected with the fitted pose, image pixels.
    pub landmarks: Points68,
    /// Pitch, yaw, roll in radians (R = Rz·Ry·Rx, the renderer's convention; the model's y up
    /// is the image's up).
    pub angles: [f32; 3],
    /// Pixels per mm.
    pub scale: f32,
    /// Root-mean-square distance between the keypoints and the fitted face's, pixels.
    pub rms_error: f32,
}

/// Grid of the pose search, degrees: yaw ±100 (past profile: BlazeFace's keypoints on a face
/// turned a little beyond 90° still read as a profile), pitch and roll ±40.
const GRID_YAW: (i32, i32, i32) = (-100, 100, 4);
const GRID_PITCH_ROLL: (i32, i32, i32) = (-40, 40, 8);
/// Coordinate-descent steps after the grid, degrees.
const REFINE_STEPS: [f32; 5] = [2.0, 1.0, 0.5, 0.25, 0.1];

/// Image-plane projection (x right, y down) of `p` rotated by `r`, before scale and shift.
fn project(r: &[[f32; 3]; 3], p: [f32; 3]) -> [f32; 2] {
    let [x, y, _] = rotate(r, p);
    [x, -y]
}

/// The best scale and shift for rotation `r` (least squares): `(squared error, scale, shift)`.
fn fit_scale_shift(
    r: &[[f32; 3]; 3],
    model: &[[f32; 3]; 6],
    image: &[[f32; 2]; 6],
) -> (f32, f32, [f32; 2]) {
    let projected = model.map(|p| project(r, p));
    let n = projected.len() as f32;
    let centre = |pts: &[[f32; 2]; 6]| {
        let s = pts
            .iter()
            .fold([0.0f32; 2], |a, p| [a[0] + p[0], a[1] + p[1]]);
        [s[0] / n, s[1] / n]
    };
    let (pc, ic) = (centre(&projected), centre(image));
    let (mut num, mut den) = (0.0f32, 0.0f32);
    for (p, q) in projected.iter().zip(image) {
        let (dp, dq) = ([p[0] - pc[0], p[1] - pc[1]], [q[0] - ic[0], q[1] - ic[1]]);
        num += dp[0] * dq[0] + dp[1] * dq[1];
        den += dp[0] * dp[0] + dp[1] * dp[1];
    }
    // A mirror image would need a negative scale: no rotation that needs one is a fit.
    let scale = if den > 0.0 { (num / den).max(0.0) } else { 0.0 };
    let shift = [ic[0] - scale * pc[0], ic[1] - scale * pc[1]];
    let error = projected
        .iter()
        .zip(image)
        .map(|(p, q)| {
            let d = [
                scale * p[0] + shift[0] - q[0],
                scale * p[1] + shift[1] - q[1],
            ];
            d[0] * d[0] + d[1] * d[1]
        })
        .sum();
    (error, scale, shift)
}

/// The canonical face posed to BlazeFace's six keypoints (image pixels, in
/// [`super::blazeface::KEYPOINTS`]' order). `None` when a keypoint is not finite or they
/// all coincide (no scale to fit).
pub fn landmarks_from_keypoints(keypoints: &[[f32; 2]; 6]) -> Option<KeypointPose> {
    if keypoints.iter().flatten().any(|v| !v.is_finite()) {
        return None;
    }
    let model = canonical_keypoints();
    let error_at = |deg: [f32; 3]| {
        let r = euler_matrix(deg.map(f32::to_radians));
        fit_scale_shift(&r, &model, keypoints).0
    };
    let range = |(lo, hi, step): (i32, i32, i32)| (lo..=hi).step_by(step as usize);
    let mut best = ([0.0f32; 3], f32::INFINITY);
    for yaw in range(GRID_YAW) {
        for pitch in range(GRID_PITCH_ROLL) {
            for roll in range(GRID_PITCH_ROLL) {
                let deg = [pitch as f32, yaw as f32, roll as f32];
                let e = error_at(deg);
                if e < best.1 {
                    best = (deg, e);
                }
            }
        }
    }
    for step in REFINE_STEPS {
        loop {
            let start = best.1;
            for axis in 0..3 {
                for sign in [-1.0, 1.0] {
                    let mut deg = best.0;
                    deg[axis] += sign * step;
                    let e = error_at(deg);
                    if e < best.1 {
                        best = (deg, e);
                    }
                }
            }
            if best.1 >= start {
                break;
            }
        }
    }
    let angles = best.0.map(f32::to_radians);
    let r = euler_matrix(angles);
    let (error, scale, shift) = fit_scale_shift(&r, &model, keypoints);
    if !(scale > 0.0) || !error.is_finite() {
        return None;
    }
    let landmarks = CANONICAL_68.map(|p| {
        let q = project(&r, p);
        [scale * q[0] + shift[0], scale * q[1] + shift[1]]
    });
    Some(KeypointPose {
        landmarks,
        angles,
        scale,
        rms_error: (error / 6.0).sqrt(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The keypoints of the canonical face in a known pose, and its 68 points.
    fn posed(deg: [f32; 3], scale: f32, shift: [f32; 2]) -> ([[f32; 2]; 6], Points68) {
        let r = euler_matrix(deg.map(f32::to_radians));
        let place = |p: [f32; 3]| {
            let q = project(&r, p);
            [scale * q[0] + shift[0], scale * q[1] + shift[1]]
        };
        (canonical_keypoints().map(place), CANONICAL_68.map(place))
    }

    #[test]
    fn recovers_poses_from_frontal_to_profile() {
        for deg in [
            [0.0, 0.0, 0.0],
            [10.0, -35.0, 6.0],
            [-12.0, 62.0, -9.0],
            [5.0, -85.0, 15.0],
        ] {
            let (keypoints, truth) = posed(deg, 1.7, [220.0, 180.0]);
            let fit = landmarks_from_keypoints(&keypoints).unwrap();
            let worst = fit
                .landmarks
                .iter()
                .zip(&truth)
                .map(|(a, b)| (a[0] - b[0]).hypot(a[1] - b[1]))
                .fold(0.0f32, f32::max);
            // 0.1° of refinement on a 150-mm face at 1.7 px/mm: well under a pixel.
            assert!(worst < 1.5, "{deg:?}: worst landmark {worst} px off");
            assert!(
                (fit.scale / 1.7 - 1.0).abs() < 0.01,
                "{deg:?}: {}",
                fit.scale
            );
            assert!(
                (fit.angles[1].to_degrees() - deg[1]).abs() < 1.0,
                "{deg:?}: {:?}",
                fit.angles
            );
            assert!(fit.rms_error < 0.5, "{deg:?}: {}", fit.rms_error);
        }
    }

    #[test]
    fn a_mirrored_face_turns_the_other_way() {
        // The same profile seen in a mirror: yaw changes sign, the fit does not flip the face
        // upside down or mirror it.
        let (keypoints, _) = posed([0.0, 70.0, 0.0], 2.0, [300.0, 300.0]);
        let mirrored = keypoints.map(|p| [600.0 - p[0], p[1]]);
        // Mirroring swaps the subject's sides: swap the eyes and the ears back into order.
        let ordered = [
            mirrored[1],
            mirrored[0],
            mirrored[2],
            mirrored[3],
            mirrored[5],
            mirrored[4],
        ];
        let fit = landmarks_from_keypoints(&ordered).unwrap();
        assert!(
            (fit.angles[1].to_degrees() + 70.0).abs() < 3.0,
            "{:?}",
            fit.angles
        );
        assert!(fit.angles[0].to_degrees().abs() < 5.0 && fit.angles[2].to_degrees().abs() < 5.0);
    }

    #[test]
    fn refuses_keypoints_without_a_face() {
        assert!(landmarks_from_keypoints(&[[10.0, 10.0]; 6]).is_none());
        let mut keypoints = posed([0.0; 3], 1.0, [50.0, 50.0]).0;
        keypoints[2][0] = f32::NAN;
        assert!(landmarks_from_keypoints(&keypoints).is_none());
    }
}
