//! 68-point landmark error as in AFLW2000-3D benchmarks (3DDFA, 3DDFA_V2): per image the mean
//! point-to-point distance divided by the ground truth's bounding-box size `sqrt(w * h)`,
//! averaged overall and within |yaw| bins [0, 30], (30, 60], > 60 degrees. The benchmarks'
//! headline "mean" is the average of the three bin means (balanced over pose).

use serde::{Deserialize, Serialize};

pub use crate::util::nme::{YAW_BINS, box_size, nme, part_nme, yaw_bin};

/// Accumulates per-image results.
#[derive(Debug, Clone, Default)]
pub struct NmeAccumulator {
    errors: Vec<(f64, f64)>,
    failures: [usize; 3],
    skipped: usize,
}

/// Summary of an evaluation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NmeReport {
    /// Mean NME over evaluated images.
    pub mean: f64,
    /// Mean of the three bin means (the benchmarks' headline number).
    pub balanced: f64,
    /// Per bin: (label, mean NME, images evaluated, detection failures).
    pub bins: Vec<(String, f64, usize, usize)>,
    pub evaluated: usize,
    /// Images without a detection (excluded from the NME).
    pub failures: usize,
    /// Images that could not be read or had unusable ground truth.
    pub skipped: usize,
}

impl NmeAccumulator {
    /// Records a prediction; a degenerate ground truth counts as skipped.
    pub fn add(&mut self, predicted: &[[f32; 2]], truth: &[[f32; 2]], yaw_degrees: f64) {
        match nme(predicted, truth) {
            Some(e) => self.errors.push((e, yaw_degrees)),
            None => self.skipped += 1,
        }
    }

    /// Records an image where no face was detected.
    pub fn add_failure(&mut self, yaw_degrees: f64) {
        self.failures[yaw_bin(yaw_degrees)] += 1;
    }

    /// Records an image that could not be evaluated at all (unreadable, bad annotation).
    pub fn add_skipped(&mut self) {
        self.skipped += 1;
    }

    pub fn report(&self) -> NmeReport {
        let mean_of = |v: &[f64]| {
            if v.is_empty() {
                f64::NAN
            } else {
                v.iter().sum::<f64>() / v.len() as f64
            }
        };
        let all: Vec<f64> = self.errors.iter().map(|e| e.0).collect();
        let bins: Vec<(String, f64, usize, usize)> = YAW_BINS
            .iter()
            .enumerate()
            .map(|(i, (label, _))| {
                let v: Vec<f64> = self
                    .errors
                    .iter()
                    .filter(|e| yaw_bin(e.1) == i)
                    .map(|e| e.0)
                    .collect();
                (label.to_string(), mean_of(&v), v.len(), self.failures[i])
            })
            .collect();
        let bin_means: Vec<f64> = bins.iter().map(|b| b.1).filter(|m| m.is_finite()).collect();
        NmeReport {
            mean: mean_of(&all),
            balanced: mean_of(&bin_means),
            bins,
            evaluated: all.len(),
            failures: self.failures.iter().sum(),
            skipped: self.skipped,
        }
    }
}

/// One annotated photo for [`derive_mesh_68`]: the face mesh's 468 points (image pixels, z
/// at the same scale) and the 68 annotated points.
pub struct MeshSample {
    pub mesh: Vec<[f32; 3]>,
    pub truth: Vec<[f32; 2]>,
}

/// A derived 468 → 68 correspondence: each iBUG point the midpoint of two mesh vertices (the
/// same twice for a single vertex), with its mean error over the samples it was chosen on,
/// relative to each face's box size as in [`nme`].
pub struct Mesh68 {
    pub vertices: [[u16; 2]; 68],
    pub errors: [f64; 68],
}

/// Mesh vertices whose midpoint may stand for one annotated point: each vertex, and each
/// vertex with its `NEIGHBOURS` nearest (in the mean mesh, scale-normalised).
const NEIGHBOURS: usize = 12;

/// The correspondence from the face mesh's 468 vertices to the 68 iBUG points that fits
/// `samples` best: for each point, the candidate (a vertex, or the midpoint of a vertex and a
/// near neighbour) with the least mean NME-normalised distance to the annotation. A table of
/// 68 choices among ~3,000 candidates, fitted on hundreds of photos: it learns the annotation
/// convention (where the 2D jaw line and brows sit on the mesh), not the photos.
pub fn derive_mesh_68(samples: &[MeshSample]) -> Option<Mesh68> {
    let vertices = samples.first()?.mesh.len();
    if vertices == 0
        || samples
            .iter()
            .any(|s| s.mesh.len() != vertices || s.truth.len() != 68)
    {
        return None;
    }
    // Each face's box size (the NME normaliser), and the mean scale-normalised mesh.
    let sizes: Vec<f64> = samples.iter().map(|s| box_size(&s.truth)).collect();
    if sizes.iter().any(|s| !(*s > 0.0 && s.is_finite())) {
        return None;
    }
    let mut mean = vec![[0f64; 3]; vertices];
    for s in samples {
        let n = vertices as f64;
        let centre: [f64; 3] =
            std::array::from_fn(|k| s.mesh.iter().map(|p| p[k] as f64).sum::<f64>() / n);
        let scale = (s
            .mesh
            .iter()
            .map(|p| {
                (0..3)
                    .map(|k| (p[k] as f64 - centre[k]).powi(2))
                    .sum::<f64>()
            })
            .sum::<f64>()
            / n)
            .sqrt()
            .max(1e-9);
        for (m, p) in mean.iter_mut().zip(&s.mesh) {
            for k in 0..3 {
                m[k] += (p[k] as f64 - centre[k]) / scale;
            }
        }
    }
    let mut candidates: Vec<[u16; 2]> = Vec::new();
    for v in 0..vertices {
        let mut near: Vec<(f64, usize)> = (0..vertices)
            .filter(|&u| u != v)
            .map(|u| {
                let d: f64 = (0..3).map(|k| (mean[u][k] - mean[v][k]).powi(2)).sum();
                (d, u)
            })
            .collect();
        near.sort_by(|a, b| a.0.total_cmp(&b.0));
        candidates.push([v as u16; 2]);
        candidates.extend(
            near.iter()
                .take(NEIGHBOURS)
                .filter(|&&(_, u)| u > v)
                .map(|&(_, u)| [v as u16, u as u16]),
        );
    }
    let mut chosen = [[0u16; 2]; 68];
    let mut errors = [0f64; 68];
    for k in 0..68 {
        let cost = |c: &[u16; 2]| {
            samples
                .iter()
                .zip(&sizes)
                .map(|(s, size)| {
                    let (a, b) = (s.mesh[c[0] as usize], s.mesh[c[1] as usize]);
                    let (x, y) = ((a[0] + b[0]) as f64 / 2.0, (a[1] + b[1]) as f64 / 2.0);
                    let t = s.truth[k];
                    ((x - t[0] as f64).powi(2) + (y - t[1] as f64).powi(2)).sqrt() / size
                })
                .sum::<f64>()
                / samples.len() as f64
        };
        let (best, error) = candidates
            .iter()
            .map(|c| (*c, cost(c)))
            .min_by(|a, b| a.1.total_cmp(&b.1))?;
        chosen[k] = best;
        errors[k] = error;
    }
    Some(Mesh68 {
        vertices: chosen,
        errors,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bins_and_balanced_mean() {
        let truth = [[0.0, 0.0], [10.0, 10.0]];
        let off = |d: f32| truth.map(|[x, y]| [x + d, y]);
        let mut acc = NmeAccumulator::default();
        acc.add(&off(1.0), &truth, -10.0); // 0.1
        acc.add(&off(3.0), &truth, 20.0); // 0.3
        acc.add(&off(4.0), &truth, 45.0); // 0.4
        acc.add(&off(8.0), &truth, -95.0); // 0.8, beyond 90 still in the last bin
        acc.add_failure(70.0);
        let r = acc.report();
        assert_eq!(r.evaluated, 4);
        assert_eq!(r.failures, 1);
        assert!((r.mean - 0.4).abs() < 1e-9);
        assert!((r.bins[0].1 - 0.2).abs() < 1e-9 && r.bins[0].2 == 2);
        assert!((r.bins[1].1 - 0.4).abs() < 1e-9);
        assert!((r.bins[2].1 - 0.8).abs() < 1e-9 && r.bins[2].3 == 1);
        assert!((r.balanced - (0.2 + 0.4 + 0.8) / 3.0).abs() < 1e-9);
    }
}
