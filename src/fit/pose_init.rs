//! A closed-form first camera: scaled orthographic pose from 2D-3D landmark pairs (POS,
//! DeMenthon & Davis), then the perspective camera that matches it at the face's distance.
//! Starting the landmark stage from here keeps Adam away from the mirrored and upside-down
//! minima that a frontal start falls into on turned heads.

/// Camera-space pose: Euler angles (pitch x, yaw y, roll z; R = Rz·Ry·Rx as in
/// `render::camera::euler_rotation`) and translation, in the model's unit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pose {
    pub angles: [f32; 3],
    pub translation: [f32; 3],
}

/// Solves `n × n` normal equations by Gaussian elimination with partial pivoting.
fn solve<const N: usize>(mut a: [[f64; N]; N], mut b: [f64; N]) -> Option<[f64; N]> {
    for col in 0..N {
        let pivot = (col..N).max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))?;
        if a[pivot][col].abs() < 1e-12 {
            return None;
        }
        a.swap(col, pivot);
        b.swap(col, pivot);
        for row in col + 1..N {
            let f = a[row][col] / a[col][col];
            for k in col..N {
                a[row][k] -= f * a[col][k];
            }
            b[row] -= f * b[col];
        }
    }
    let mut x = [0.0; N];
    for row in (0..N).rev() {
        let s: f64 = (row + 1..N).map(|k| a[row][k] * x[k]).sum();
        x[row] = (b[row] - s) / a[row][row];
    }
    Some(x)
}

fn cross(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}

fn norm(a: [f64; 3]) -> f64 {
    (a[0] * a[0] + a[1] * a[1] + a[2] * a[2]).sqrt()
}

fn scale(a: [f64; 3], s: f64) -> [f64; 3] {
    [a[0] * s, a[1] * s, a[2] * s]
}

pub use crate::util::rotation::euler_matrix;

/// Rotation matrix rows → Euler angles of R = Rz(roll)·Ry(yaw)·Rx(pitch).
pub fn euler_from_matrix(r: [[f64; 3]; 3]) -> [f32; 3] {
    let yaw = (-r[2][0]).clamp(-1.0, 1.0).asin();
    let pitch = r[2][1].atan2(r[2][2]);
    let roll = r[1][0].atan2(r[0][0]);
    [pitch as f32, yaw as f32, roll as f32]
}

/// Pose of a model whose points `model` (x right, y up, z towards the viewer) project to
/// `image` pixel positions (x right, y down) in an image of `width × height` with focal length
/// `focal` in pixels. `None` if the points are degenerate.
pub fn pose_from_landmarks(
    model: &[[f32; 3]],
    image: &[[f32; 2]],
    width: f32,
    height: f32,
    focal: f32,
) -> Option<Pose> {
    if model.len() != image.len() || model.len() < 4 {
        return None;
    }
    let (cx, cy) = (width as f64 / 2.0, height as f64 / 2.0);
    // Scaled orthography: [u, v] = A · [X, 1] with v pointing up, by least squares.
    let mut normal = [[0.0f64; 4]; 4];
    let mut rhs_u = [0.0f64; 4];
    let mut rhs_v = [0.0f64; 4];
    for (p, q) in model.iter().zip(image) {
        let x = [p[0] as f64, p[1] as f64, p[2] as f64, 1.0];
        let (u, v) = (q[0] as f64 - cx, cy - q[1] as f64);
        for i in 0..4 {
            for j in 0..4 {
                normal[i][j] += x[i] * x[j];
            }
            rhs_u[i] += x[i] * u;
            rhs_v[i] += x[i] * v;
        }
    }
    let a_u = solve(normal, rhs_u)?;
    let a_v = solve(normal, rhs_v)?;
    let r1 = [a_u[0], a_u[1], a_u[2]];
    let r2 = [a_v[0], a_v[1], a_v[2]];
    let (n1, n2) = (norm(r1), norm(r2));
    if n1 < 1e-9 || n2 < 1e-9 {
        return None;
    }
    let s = 0.5 * (n1 + n2);
    // Orthonormalise the two rows symmetrically, then complete the frame.
    let (u1, u2) = (scale(r1, 1.0 / n1), scale(r2, 1.0 / n2));
    let bisector = [u1[0] + u2[0], u1[1] + u2[1], u1[2] + u2[2]];
    // u1 − u2 is perpendicular to u1 + u2 for unit vectors, and leans towards u1.
    let perpendicular = [u1[0] - u2[0], u1[1] - u2[1], u1[2] - u2[2]];
    let (b, p) = (
        scale(bisector, 1.0 / norm(bisector)),
        scale(perpendicular, 1.0 / norm(perpendicular)),
    );
    let h = std::f64::consts::FRAC_1_SQRT_2;
    let row1 = [h * (b[0] + p[0]), h * (b[1] + p[1]), h * (b[2] + p[2])];
    let row2 = [h * (b[0] - p[0]), h * (b[1] - p[1]), h * (b[2] - p[2])];
    let row3 = cross(row1, row2);
    let r = [row1, row2, row3];
    // The face sits at the distance where orthographic scale s matches the focal length.
    let distance = focal as f64 / s;
    let translation = [a_u[3] / s, a_v[3] / s, -distance];
    Some(Pose {
        angles: euler_from_matrix(r),
        translation: translation.map(|t| t as f32),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovers_a_known_pose_from_perspective_projections() {
        let mut rng = crate::util::rng::SplitMix64::new(3);
        let model: Vec<[f32; 3]> = (0..68)
            .map(|_| {
                [
                    rng.range(-70.0, 70.0),
                    rng.range(-90.0, 60.0),
                    rng.range(-20.0, 40.0),
                ]
            })
            .collect();
        let truth = Pose {
            angles: [0.15, -0.6, 0.08],
            translation: [12.0, -8.0, -650.0],
        };
        let (w, h, f) = (256.0f32, 256.0f32, 400.0f32);
        let r = euler_matrix(truth.angles).map(|row| row.map(f64::from));
        let image: Vec<[f32; 2]> = model
            .iter()
            .map(|p| {
                let c: Vec<f64> = (0..3)
                    .map(|i| {
                        (0..3).map(|k| r[i][k] * p[k] as f64).sum::<f64>()
                            + truth.translation[i] as f64
                    })
                    .collect();
                [
                    (w as f64 / 2.0 + f as f64 * c[0] / -c[2]) as f32,
                    (h as f64 / 2.0 - f as f64 * c[1] / -c[2]) as f32,
                ]
            })
            .collect();
        let pose = pose_from_landmarks(&model, &image, w, h, f).unwrap();
        for i in 0..3 {
            assert!(
                (pose.angles[i] - truth.angles[i]).abs() < 0.06,
                "angle {i}: {:?} vs {:?}",
                pose.angles,
                truth.angles
            );
        }
        assert!(
            (pose.translation[2] / truth.translation[2] - 1.0).abs() < 0.08,
            "{:?}",
            pose.translation
        );
    }

    #[test]
    fn refuses_degenerate_input() {
        assert!(pose_from_landmarks(&[[0.0; 3]; 10], &[[0.0; 2]; 10], 10.0, 10.0, 10.0).is_none());
        assert!(pose_from_landmarks(&[[0.0; 3]; 3], &[[0.0; 2]; 3], 10.0, 10.0, 10.0).is_none());
    }
}
