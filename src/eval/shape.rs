//! 3D shape error: per-vertex distance after a similarity alignment (Umeyama 1991), in mm.

/// The similarity (s, R, t) minimising Σ|s·R·a_i + t − b_i|² over corresponding points.
pub fn umeyama(a: &[[f64; 3]], b: &[[f64; 3]]) -> Option<(f64, [[f64; 3]; 3], [f64; 3])> {
    let n = a.len();
    if n < 3 || n != b.len() {
        return None;
    }
    let mean = |p: &[[f64; 3]]| {
        let mut m = [0.0; 3];
        for q in p {
            for k in 0..3 {
                m[k] += q[k] / n as f64;
            }
        }
        m
    };
    let (ma, mb) = (mean(a), mean(b));
    let mut cov = [[0.0; 3]; 3];
    let mut var_a = 0.0;
    for (p, q) in a.iter().zip(b) {
        let (x, y) = (
            [p[0] - ma[0], p[1] - ma[1], p[2] - ma[2]],
            [q[0] - mb[0], q[1] - mb[1], q[2] - mb[2]],
        );
        for i in 0..3 {
            for j in 0..3 {
                cov[i][j] += y[i] * x[j] / n as f64;
            }
            var_a += x[i] * x[i] / n as f64;
        }
    }
    if var_a < 1e-12 {
        return None;
    }
    let (u, sigma, v) = svd3(cov);
    let det = determinant(u) * determinant(v);
    let d = [1.0, 1.0, if det < 0.0 { -1.0 } else { 1.0 }];
    let mut r = [[0.0; 3]; 3];
    for i in 0..3 {
        for j in 0..3 {
            r[i][j] = (0..3).map(|k| u[i][k] * d[k] * v[j][k]).sum();
        }
    }
    let s = (sigma[0] * d[0] + sigma[1] * d[1] + sigma[2] * d[2]) / var_a;
    let ra = apply(&r, ma);
    let t = [mb[0] - s * ra[0], mb[1] - s * ra[1], mb[2] - s * ra[2]];
    Some((s, r, t))
}

fn apply(r: &[[f64; 3]; 3], p: [f64; 3]) -> [f64; 3] {
    [0, 1, 2].map(|i| r[i][0] * p[0] + r[i][1] * p[1] + r[i][2] * p[2])
}

fn determinant(m: [[f64; 3]; 3]) -> f64 {
    m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1])
        - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
        + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0])
}

/// SVD of a 3×3 matrix via the eigen-decomposition of MᵀM (Jacobi): M = U diag(σ) Vᵀ.
fn svd3(m: [[f64; 3]; 3]) -> ([[f64; 3]; 3], [f64; 3], [[f64; 3]; 3]) {
    let mut ata = [[0.0; 3]; 3];
    for i in 0..3 {
        for j in 0..3 {
            ata[i][j] = (0..3).map(|k| m[k][i] * m[k][j]).sum();
        }
    }
    let (values, vectors) = jacobi3(ata);
    let sigma = values.map(|v| v.max(0.0).sqrt());
    let mut v = [[0.0; 3]; 3];
    for (c, vec) in vectors.iter().enumerate() {
        for r in 0..3 {
            v[r][c] = vec[r];
        }
    }
    let mut u = [[0.0; 3]; 3];
    for c in 0..3 {
        let col = apply(&m, [v[0][c], v[1][c], v[2][c]]);
        let norm = (col[0] * col[0] + col[1] * col[1] + col[2] * col[2]).sqrt();
        if norm > 1e-12 {
            for r in 0..3 {
                u[r][c] = col[r] / norm;
            }
        }
    }
    // A rank-deficient M leaves a zero column: complete U to a right-handed frame.
    if sigma[2] <= 1e-12 {
        let a = [u[0][0], u[1][0], u[2][0]];
        let b = [u[0][1], u[1][1], u[2][1]];
        let c = [
            a[1] * b[2] - a[2] * b[1],
            a[2] * b[0] - a[0] * b[2],
            a[0] * b[1] - a[1] * b[0],
        ];
        for r in 0..3 {
            u[r][2] = c[r];
        }
    }
    (u, sigma, v)
}

fn jacobi3(mut a: [[f64; 3]; 3]) -> ([f64; 3], [[f64; 3]; 3]) {
    let mut v = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];
    for _ in 0..50 {
        let off = a[0][1].powi(2) + a[0][2].powi(2) + a[1][2].powi(2);
        if off < 1e-30 {
            break;
        }
        for (p, q) in [(0, 1), (0, 2), (1, 2)] {
            if a[p][q].abs() < 1e-300 {
                continue;
            }
            let theta = (a[q][q] - a[p][p]) / (2.0 * a[p][q]);
            let t = if theta == 0.0 {
                1.0
            } else {
                theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt())
            };
            let c = 1.0 / (t * t + 1.0).sqrt();
            let s = t * c;
            for k in 0..3 {
                let (akp, akq) = (a[k][p], a[k][q]);
                a[k][p] = c * akp - s * akq;
                a[k][q] = s * akp + c * akq;
            }
            for k in 0..3 {
                let (apk, aqk) = (a[p][k], a[q][k]);
                a[p][k] = c * apk - s * aqk;
                a[q][k] = s * apk + c * aqk;
            }
            for row in v.iter_mut() {
                let (vp, vq) = (row[p], row[q]);
                row[p] = c * vp - s * vq;
                row[q] = s * vp + c * vq;
            }
        }
    }
    let mut order = [0, 1, 2];
    order.sort_by(|&i, &j| a[j][j].total_cmp(&a[i][i]));
    let values = order.map(|i| a[i][i]);
    let vectors = order.map(|i| [v[0][i], v[1][i], v[2][i]]);
    (values, vectors)
}

/// Mean per-vertex distance (mm) between `predicted` and `truth` over the vertices where
/// `mask` is true, after aligning `predicted` to `truth` by a similarity fitted on those vertices.
pub fn aligned_error(predicted: &[[f32; 3]], truth: &[[f32; 3]], mask: &[bool]) -> Option<f64> {
    let pick = |p: &[[f32; 3]]| -> Vec<[f64; 3]> {
        p.iter()
            .zip(mask)
            .filter(|(_, m)| **m)
            .map(|(v, _)| v.map(|c| c as f64))
            .collect()
    };
    let (a, b) = (pick(predicted), pick(truth));
    let (s, r, t) = umeyama(&a, &b)?;
    let total: f64 = a
        .iter()
        .zip(&b)
        .map(|(p, q)| {
            let x = apply(&r, *p);
            ((s * x[0] + t[0] - q[0]).powi(2)
                + (s * x[1] + t[1] - q[1]).powi(2)
                + (s * x[2] + t[2] - q[2]).powi(2))
            .sqrt()
        })
        .sum();
    Some(total / a.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovers_a_similarity_and_measures_zero_error() {
        let mut rng = crate::util::rng::SplitMix64::new(4);
        let truth: Vec<[f32; 3]> = (0..200)
            .map(|_| {
                [
                    rng.range(-50.0, 50.0),
                    rng.range(-60.0, 60.0),
                    rng.range(-20.0, 40.0),
                ]
            })
            .collect();
        let (c, s) = (0.8f32.cos(), 0.8f32.sin());
        let moved: Vec<[f32; 3]> = truth
            .iter()
            .map(|p| {
                [
                    1.3 * (c * p[0] - s * p[2]) + 5.0,
                    1.3 * p[1] - 2.0,
                    1.3 * (s * p[0] + c * p[2]) + 9.0,
                ]
            })
            .collect();
        let mask = vec![true; truth.len()];
        assert!(aligned_error(&moved, &truth, &mask).unwrap() < 1e-3);
        let noisy: Vec<[f32; 3]> = truth.iter().map(|p| [p[0] + 1.0, p[1], p[2]]).collect();
        let mut mask_half = mask.clone();
        mask_half.iter_mut().step_by(2).for_each(|m| *m = false);
        assert!(
            aligned_error(&noisy, &truth, &mask_half).unwrap() < 1e-3,
            "a constant offset is a translation"
        );
        let bent: Vec<[f32; 3]> = truth
            .iter()
            .map(|p| [p[0], p[1], p[2] + 0.01 * p[0] * p[0]])
            .collect();
        assert!(aligned_error(&bent, &truth, &mask).unwrap() > 1.0);
    }
}
