//! The linear texture model of classic 3DMMs, for ablation against the GAN: masked PCA over the
//! corpus (native only).
//!
//! Unseen texels are missing data, not colours: the principal components come from an EM
//! iteration (Roweis 1998) that starts from the corpus's own fill (mirror, then push-pull) and
//! replaces every unseen texel by its reconstruction from the current components before
//! recomputing them. Each step is a randomized SVD (Halko et al. 2011) done with burn matmuls.

use burn::tensor::{Device, Distribution, Tensor, TensorData};

use super::corpus::Corpus;
use super::model::PcaTexture;
use crate::error::Result;

/// Settings of the PCA fit.
#[derive(Debug, Clone, Copy)]
pub struct PcaOptions {
    pub components: usize,
    /// At most this many textures (a random subset of the split): memory is N × R² × 3 floats.
    pub max_textures: usize,
    /// EM passes after the first fit.
    pub em_iterations: usize,
    /// Power iterations of each randomized SVD.
    pub power_iterations: usize,
    pub seed: u64,
}

impl Default for PcaOptions {
    fn default() -> Self {
        Self {
            components: 80,
            max_textures: 800,
            em_iterations: 2,
            power_iterations: 2,
            seed: 5,
        }
    }
}

/// Orthonormal columns spanning `y` `[N, L]` (modified Gram-Schmidt on the host; L is small).
fn orthonormal_columns(y: Tensor<2>) -> Result<Tensor<2>> {
    let [n, l] = y.dims();
    let device = y.device();
    let (values, _) = crate::device::read_floats_blocking(y.transpose())?;
    let mut cols: Vec<Vec<f64>> = values
        .chunks(n)
        .map(|c| c.iter().map(|&v| v as f64).collect())
        .collect();
    for j in 0..l {
        for i in 0..j {
            let dot: f64 = (0..n).map(|k| cols[i][k] * cols[j][k]).sum();
            for k in 0..n {
                cols[j][k] -= dot * cols[i][k];
            }
        }
        let norm = cols[j].iter().map(|v| v * v).sum::<f64>().sqrt().max(1e-12);
        cols[j].iter_mut().for_each(|v| *v /= norm);
    }
    let flat: Vec<f32> = cols.into_iter().flatten().map(|v| v as f32).collect();
    Ok(Tensor::<2>::from_data(TensorData::new(flat, [l, n]), &device).transpose())
}

/// Eigen-decomposition of a small symmetric matrix (cyclic Jacobi), eigenvalues descending.
fn symmetric_eigen(mut a: Vec<Vec<f64>>) -> (Vec<f64>, Vec<Vec<f64>>) {
    let n = a.len();
    let mut v: Vec<Vec<f64>> = (0..n)
        .map(|i| (0..n).map(|j| if i == j { 1.0 } else { 0.0 }).collect())
        .collect();
    for _sweep in 0..100 {
        let off: f64 = (0..n)
            .flat_map(|i| (0..n).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| a[i][j] * a[i][j])
            .sum();
        if off < 1e-22 {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                if a[p][q].abs() < 1e-300 {
                    continue;
                }
                let theta = (a[q][q] - a[p][p]) / (2.0 * a[p][q]);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..n {
                    let (akp, akq) = (a[k][p], a[k][q]);
                    a[k][p] = c * akp - s * akq;
                    a[k][q] = s * akp + c * akq;
                }
                for k in 0..n {
                    let (apk, aqk) = (a[p][k], a[q][k]);
                    a[p][k] = c * apk - s * aqk;
                    a[q][k] = s * apk + c * aqk;
                }
                for k in 0..n {
                    let (vkp, vkq) = (v[k][p], v[k][q]);
                    v[k][p] = c * vkp - s * vkq;
                    v[k][q] = s * vkp + c * vkq;
                }
            }
        }
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&i, &j| a[j][j].total_cmp(&a[i][i]));
    let values = order.iter().map(|&i| a[i][i]).collect();
    let vectors = order
        .iter()
        .map(|&i| (0..n).map(|k| v[k][i]).collect())
        .collect();
    (values, vectors)
}

/// Top-`k` principal directions `[k, D]` and standard deviations of centred rows `x` `[N, D]`.
fn randomized_pca(
    x: &Tensor<2>,
    k: usize,
    power: usize,
    device: &Device,
) -> Result<(Tensor<2>, Vec<f32>)> {
    let [n, d] = x.dims();
    let l = (k + 10).min(n);
    let omega = Tensor::<2>::random([d, l], Distribution::Normal(0.0, 1.0), device);
    let mut q = orthonormal_columns(x.clone().matmul(omega))?;
    for _ in 0..power {
        let z = x.clone().transpose().matmul(q); // [D, L]
        q = orthonormal_columns(x.clone().matmul(z))?;
    }
    let b = q.transpose().matmul(x.clone()); // [L, D]
    let (bb, _) = crate::device::read_floats_blocking(b.clone().matmul(b.clone().transpose()))?;
    let matrix: Vec<Vec<f64>> = bb
        .chunks(l)
        .map(|r| r.iter().map(|&v| v as f64).collect())
        .collect();
    let (eigenvalues, eigenvectors) = symmetric_eigen(matrix);
    let k = k.min(l);
    let u: Vec<f32> = eigenvectors[..k]
        .iter()
        .flatten()
        .map(|&v| v as f32)
        .collect();
    let u = Tensor::<2>::from_data(TensorData::new(u, [k, l]), device);
    let sigma: Vec<f32> = eigenvalues[..k]
        .iter()
        .map(|&e| e.max(0.0).sqrt() as f32)
        .collect();
    let inv_sigma = Tensor::<2>::from_data(
        TensorData::new(
            sigma
                .iter()
                .map(|s| 1.0 / s.max(1e-6))
                .collect::<Vec<f32>>(),
            [k, 1],
        ),
        device,
    );
    // Right singular vectors: V^T = Σ^-1 U^T B.
    let components = u.matmul(b) * inv_sigma;
    let std: Vec<f32> = sigma
        .iter()
        .map(|s| s / ((n.max(2) - 1) as f32).sqrt())
        .collect();
    Ok((components, std))
}

/// Fits the masked PCA texture model on `corpus`.
pub fn fit(
    corpus: &Corpus,
    options: PcaOptions,
    device: &Device,
    mut log: impl FnMut(&str),
) -> Result<PcaTexture> {
    let r = corpus.resolution();
    let d = r * corpus.width() * 3;
    let mut rng = crate::util::rng::SplitMix64::new(options.seed);
    let mut indices: Vec<usize> = (0..corpus.len()).collect();
    for i in (1..indices.len()).rev() {
        indices.swap(i, rng.below(i + 1));
    }
    indices.truncate(options.max_textures);
    let n = indices.len();
    let mut data = Vec::with_capacity(n * d);
    let mut seen = Vec::with_capacity(n * d);
    for &i in &indices {
        data.extend(corpus.texture(i));
        seen.extend(corpus.mask(i).into_iter().flat_map(|m| [m, m, m]));
    }
    let x = Tensor::<2>::from_data(TensorData::new(data, [n, d]), device);
    let mask = Tensor::<2>::from_data(TensorData::new(seen, [n, d]), device)
        .greater_elem(0.0)
        .float();
    let mut filled = x.clone();
    let mut result = None;
    for pass in 0..=options.em_iterations {
        let mean = filled.clone().mean_dim(0);
        let centred = filled.clone() - mean.clone();
        let (components, std) = randomized_pca(
            &centred,
            options.components,
            options.power_iterations,
            device,
        )?;
        // Reconstruction of every texture from the components; unseen texels take it.
        let coefficients = centred.matmul(components.clone().transpose());
        let reconstruction = coefficients.matmul(components.clone()) + mean.clone();
        let seen_error = ((reconstruction.clone() - x.clone()).abs() * mask.clone()).sum()
            / (mask.clone().sum() + 1.0);
        let (err, _) = crate::device::read_floats_blocking(seen_error)?;
        log(&format!(
            "pca pass {pass}: {n} textures, {} components, L1 on seen texels {:.4}, top σ {:.3}",
            std.len(),
            err[0],
            std[0]
        ));
        filled = x.clone() * mask.clone() + reconstruction * (mask.clone().neg() + 1.0);
        let scale = Tensor::<2>::from_data(TensorData::new(std.clone(), [std.len(), 1]), device);
        result = Some(PcaTexture::new(
            mean,
            components * scale,
            r,
            corpus.aspect(),
        ));
    }
    Ok(result.expect("at least one pass"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jacobi_matches_a_known_spectrum() {
        let (values, vectors) = symmetric_eigen(vec![
            vec![2.0, 1.0, 0.0],
            vec![1.0, 2.0, 0.0],
            vec![0.0, 0.0, 5.0],
        ]);
        assert!(
            (values[0] - 5.0).abs() < 1e-9
                && (values[1] - 3.0).abs() < 1e-9
                && (values[2] - 1.0).abs() < 1e-9
        );
        let v = &vectors[1];
        assert!((v[0].abs() - v[1].abs()).abs() < 1e-9 && v[2].abs() < 1e-9);
    }
}
