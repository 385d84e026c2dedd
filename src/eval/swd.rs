//! Multi-scale sliced Wasserstein distance between two sets of images (Karras et al. 2018, §5):
//! 7×7 neighbourhoods sampled from each level of a Laplacian pyramid, normalised per channel,
//! compared by the average 1-D Wasserstein distance over random projections.

use crate::util::rng::SplitMix64;

/// An RGB image in [0, 1], row-major HWC.
#[derive(Debug, Clone)]
pub struct FloatImage {
    pub size: usize,
    pub data: Vec<f32>,
}

impl FloatImage {
    fn at(&self, x: usize, y: usize, c: usize) -> f32 {
        self.data[(y * self.size + x) * 3 + c]
    }

    fn downsample(&self) -> FloatImage {
        let s = self.size / 2;
        let mut data = vec![0.0; s * s * 3];
        for y in 0..s {
            for x in 0..s {
                for c in 0..3 {
                    data[(y * s + x) * 3 + c] = 0.25
                        * (self.at(2 * x, 2 * y, c)
                            + self.at(2 * x + 1, 2 * y, c)
                            + self.at(2 * x, 2 * y + 1, c)
                            + self.at(2 * x + 1, 2 * y + 1, c));
                }
            }
        }
        FloatImage { size: s, data }
    }

    fn upsample(&self) -> FloatImage {
        let s = self.size * 2;
        let mut data = vec![0.0; s * s * 3];
        for y in 0..s {
            for x in 0..s {
                for c in 0..3 {
                    data[(y * s + x) * 3 + c] = self.at(x / 2, y / 2, c);
                }
            }
        }
        FloatImage { size: s, data }
    }
}

/// Laplacian pyramid, finest level first, down to `min_size`.
fn laplacian(image: &FloatImage, min_size: usize) -> Vec<FloatImage> {
    let mut levels = Vec::new();
    let mut current = image.clone();
    while current.size > min_size {
        let down = current.downsample();
        let up = down.upsample();
        let detail = current
            .data
            .iter()
            .zip(&up.data)
            .map(|(a, b)| a - b)
            .collect();
        levels.push(FloatImage {
            size: current.size,
            data: detail,
        });
        current = down;
    }
    levels.push(current);
    levels
}

const PATCH: usize = 7;
const DIM: usize = PATCH * PATCH * 3;

fn descriptors(
    images: &[FloatImage],
    level: usize,
    per_image: usize,
    min_size: usize,
    rng: &mut SplitMix64,
) -> Vec<[f32; DIM]> {
    let mut out = Vec::with_capacity(images.len() * per_image);
    for image in images {
        let pyramid = laplacian(image, min_size);
        let l = &pyramid[level.min(pyramid.len() - 1)];
        if l.size < PATCH {
            continue;
        }
        for _ in 0..per_image {
            let (x0, y0) = (rng.below(l.size - PATCH + 1), rng.below(l.size - PATCH + 1));
            let mut d = [0f32; DIM];
            let mut k = 0;
            for y in 0..PATCH {
                for x in 0..PATCH {
                    for c in 0..3 {
                        d[k] = l.at(x0 + x, y0 + y, c);
                        k += 1;
                    }
                }
            }
            out.push(d);
        }
    }
    out
}

fn normalise(set: &mut [[f32; DIM]]) {
    // Per-channel mean and standard deviation over the set, as in PGGAN's implementation.
    for c in 0..3 {
        let values = || {
            set.iter()
                .flat_map(|d| (c..DIM).step_by(3).map(move |k| d[k]))
        };
        let n = (set.len() * PATCH * PATCH).max(1) as f64;
        let mean = values().map(|v| v as f64).sum::<f64>() / n;
        let var = values().map(|v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
        let std = var.sqrt().max(1e-8);
        for d in set.iter_mut() {
            for k in (c..DIM).step_by(3) {
                d[k] = ((d[k] as f64 - mean) / std) as f32;
            }
        }
    }
}

fn sliced_wasserstein(
    a: &[[f32; DIM]],
    b: &[[f32; DIM]],
    projections: usize,
    rng: &mut SplitMix64,
) -> f32 {
    let n = a.len().min(b.len());
    let mut total = 0.0f64;
    for _ in 0..projections {
        let mut dir = [0f32; DIM];
        let mut norm = 0f32;
        for v in dir.iter_mut() {
            *v = rng.normal();
            norm += *v * *v;
        }
        let norm = norm.sqrt();
        let project = |set: &[[f32; DIM]]| {
            let mut p: Vec<f32> = set[..n]
                .iter()
                .map(|d| d.iter().zip(&dir).map(|(x, w)| x * w).sum::<f32>() / norm)
                .collect();
            p.sort_by(f32::total_cmp);
            p
        };
        let (pa, pb) = (project(a), project(b));
        total += pa
            .iter()
            .zip(&pb)
            .map(|(x, y)| (x - y).abs() as f64)
            .sum::<f64>()
            / n.max(1) as f64;
    }
    (total / projections as f64) as f32
}

/// SWD (×10³, as PGGAN reports it) per pyramid level, finest first, and their mean.
pub fn multiscale_swd(
    real: &[FloatImage],
    fake: &[FloatImage],
    min_size: usize,
    seed: u64,
) -> (Vec<(usize, f32)>, f32) {
    let mut rng = SplitMix64::new(seed);
    let size = real.first().map_or(0, |i| i.size);
    let levels = laplacian(&real[0], min_size).len();
    let mut out = Vec::new();
    for level in 0..levels {
        let mut a = descriptors(real, level, 64, min_size, &mut rng);
        let mut b = descriptors(fake, level, 64, min_size, &mut rng);
        normalise(&mut a);
        normalise(&mut b);
        let d = sliced_wasserstein(&a, &b, 256, &mut rng) * 1e3;
        out.push((size >> level, d));
    }
    let mean = out.iter().map(|(_, d)| d).sum::<f32>() / out.len().max(1) as f32;
    (out, mean)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noise(seed: u64, amplitude: f32) -> Vec<FloatImage> {
        let mut rng = SplitMix64::new(seed);
        (0..40)
            .map(|_| FloatImage {
                size: 32,
                data: (0..32 * 32 * 3)
                    .map(|_| 0.5 + amplitude * rng.normal())
                    .collect(),
            })
            .collect()
    }

    #[test]
    fn same_distribution_is_closer_than_a_different_one() {
        let a = noise(1, 0.1);
        let b = noise(2, 0.1);
        let smooth: Vec<FloatImage> = noise(3, 0.1)
            .iter()
            .map(|i| i.downsample().upsample())
            .collect();
        let (_, same) = multiscale_swd(&a, &b, 8, 7);
        let (_, different) = multiscale_swd(&a, &smooth, 8, 7);
        assert!(same < different, "same {same} vs different {different}");
    }
}
