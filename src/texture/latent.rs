//! Fitting a texture model's parameters to the texels a photo saw, as the evaluation does it and
//! as the fitter starts and keeps them.
//!
//! The GAN normalises its latent (`Generator::forward` divides by the root mean square), so only
//! a latent's direction matters. Starting at z = 0 lets Adam's first steps swing that direction
//! by up to a radian, and letting the norm drift changes what a step of a given size does. So a
//! GAN latent starts on the sphere of radius √latent (where N(0, I) samples lie), is put back on
//! it after every step, and its rate decays; the evaluation also takes the best of several starts.
//! PCA coefficients start at 0 (the mean texture, the optimum of its convex prior) and move freely.

use burn::tensor::{Device, Tensor, TensorData};

use super::model::TextureModel;
use crate::error::{Error, Result};
use crate::util::adam::{Adam, Slot};
use crate::util::rng::SplitMix64;

/// How parameters are fitted to texels ([`fit_texels`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LatentFitOptions {
    pub steps: usize,
    /// Adam's rate at the first step; it decays along a half cosine to `final_rate_fraction` of it.
    pub learning_rate: f32,
    pub final_rate_fraction: f32,
    /// GAN: this many random starts on the sphere are scored on the target's texels and the
    /// best one is optimised (PCA always starts at the mean).
    pub starts: usize,
    pub seed: u64,
}

/// Where a decaying rate ends, as a fraction of where it starts (evaluation and fitter).
pub const FINAL_RATE_FRACTION: f32 = 0.05;

impl Default for LatentFitOptions {
    fn default() -> Self {
        Self {
            steps: 150,
            learning_rate: 0.05,
            final_rate_fraction: FINAL_RATE_FRACTION,
            starts: 8,
            seed: 1,
        }
    }
}

/// The rate factor at `step` of `steps`: 1 at the start, `floor` at the end, a half cosine between.
pub fn decayed_rate(step: usize, steps: usize, floor: f32) -> f32 {
    let t = step as f32 / steps.saturating_sub(1).max(1) as f32;
    floor + (1.0 - floor) * 0.5 * (1.0 + (std::f32::consts::PI * t.min(1.0)).cos())
}

/// `rows` standard normal rows `[rows, width]`, each scaled onto the sphere of radius √width.
pub fn sphere_rows(rows: usize, width: usize, rng: &mut SplitMix64, device: &Device) -> Tensor<2> {
    let values: Vec<f32> = (0..rows * width).map(|_| rng.normal()).collect();
    onto_sphere(
        Tensor::from_data(TensorData::new(values, [rows, width]), device),
        width,
    )
}

/// Each row rescaled to the sphere of radius √width (rows of zeros stay zero).
pub fn onto_sphere(rows: Tensor<2>, width: usize) -> Tensor<2> {
    let norm = rows
        .clone()
        .powi_scalar(2)
        .sum_dim(1)
        .sqrt()
        .clamp_min(1e-12);
    rows / norm * (width as f32).sqrt()
}

impl TextureModel {
    /// Whether this model's parameters live on a sphere (the GAN's normalised latent).
    pub fn on_sphere(&self) -> bool {
        matches!(self, TextureModel::Gan(_))
    }

    /// Puts parameter rows `[S, P]` back where the model expects them after an optimiser step:
    /// on the sphere for the GAN, unchanged for PCA.
    pub fn project(&self, params: Tensor<2>) -> Tensor<2> {
        if self.on_sphere() {
            onto_sphere(params, self.parameters())
        } else {
            params
        }
    }

    /// The parameter row `[1, P]` a fit starts from, before it has seen any texels: PCA's mean
    /// (zeros); for the GAN, of 16 fixed samples on the sphere, the one whose texture is closest
    /// to their mean texture (a typical face rather than an arbitrary one).
    pub fn start(&self) -> Result<Tensor<2>> {
        let device = self.device();
        let p = self.parameters();
        if !self.on_sphere() {
            return Ok(Tensor::zeros([1, p], &device));
        }
        const CANDIDATES: usize = 16;
        let candidates = sphere_rows(CANDIDATES, p, &mut SplitMix64::new(7), &device);
        let maps = self.uv_map(candidates.clone())?.detach();
        let mean = maps.clone().mean_dim(0);
        let distance = (maps - mean).abs().flatten::<2>(1, 3).mean_dim(1);
        let best = distance.argmin(0).reshape([1]);
        Ok(candidates.select(0, best))
    }
}

/// Fits parameter rows to textures through `render` (parameters `[B, P]` → maps `[B, H, W, 3]`,
/// the model's maps at the targets' size), minimising each row's mean L1 over the texels where
/// `weight` `[B, H, W, 1]` is non-zero (weighted by it) against `target` `[B, H, W, 3]`.
/// Returns the fitted rows `[B, P]`.
pub async fn fit_texels(
    model: &TextureModel,
    render: impl Fn(Tensor<2>) -> Result<Tensor<4>>,
    target: Tensor<4>,
    weight: Tensor<4>,
    options: &LatentFitOptions,
) -> Result<Tensor<2>> {
    let [b, h, w, c] = target.dims();
    if c != 3 || weight.dims() != [b, h, w, 1] {
        return Err(Error::Invalid(format!(
            "fit_texels: target {:?} and weight {:?} must be [B, H, W, 3] and [B, H, W, 1]",
            target.dims(),
            weight.dims()
        )));
    }
    let device = target.device();
    let p = model.parameters();
    let per_row_l1 = |maps: Tensor<4>, target: Tensor<4>, weight: Tensor<4>| -> Tensor<1> {
        let rows = maps.dims()[0];
        let error = ((maps - target).abs() * weight.clone()).reshape([rows, h * w * 3]);
        let total = weight.reshape([rows, h * w]).sum_dim(1) * 3.0 + 1e-6;
        (error.sum_dim(1) / total).reshape([rows])
    };
    let start = if model.on_sphere() && options.starts > 1 {
        // Score every candidate against its row's texels; keep each row's best.
        let k = options.starts;
        let mut rng = SplitMix64::new(options.seed);
        let candidates = sphere_rows(b * k, p, &mut rng, &device);
        let maps = render(candidates.clone())?.detach();
        let repeat = |t: Tensor<4>| {
            let dims = t.dims();
            t.unsqueeze_dim::<5>(0)
                .repeat_dim(0, k)
                .reshape([k * b, dims[1], dims[2], dims[3]])
        };
        let scores = per_row_l1(maps, repeat(target.clone()), repeat(weight.clone()));
        let (scores, _) = crate::device::read_floats(scores).await?;
        let rows: Vec<i64> = (0..b)
            .map(|row| {
                let best = (0..k)
                    .min_by(|&i, &j| scores[i * b + row].total_cmp(&scores[j * b + row]))
                    .unwrap_or(0);
                (best * b + row) as i64
            })
            .collect();
        let rows = Tensor::<1, burn::tensor::Int>::from_data(TensorData::new(rows, [b]), &device);
        candidates.select(0, rows)
    } else if model.on_sphere() {
        sphere_rows(b, p, &mut SplitMix64::new(options.seed), &device)
    } else {
        Tensor::zeros([b, p], &device)
    };
    let was_autodiff = target.is_autodiff();
    let (target, weight) = (target.autodiff(), weight.autodiff());
    let mut slot = Slot::new(start.autodiff(), options.learning_rate);
    let mut adam = Adam::default();
    for step in 0..options.steps {
        let leaf = slot.leaf();
        let loss = per_row_l1(render(leaf.clone())?, target.clone(), weight.clone()).sum();
        let grads = loss.backward();
        slot.lr =
            options.learning_rate * decayed_rate(step, options.steps, options.final_rate_fraction);
        adam.begin_step();
        if let Some(g) = leaf.grad(&grads) {
            adam.update(&mut slot, g, |v| model.project(v));
        }
    }
    Ok(if was_autodiff {
        slot.value
    } else {
        slot.value.inner()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::texture::model::PcaTexture;

    #[test]
    fn the_rate_decays_from_one_to_its_floor() {
        assert!((decayed_rate(0, 100, 0.05) - 1.0).abs() < 1e-6);
        assert!((decayed_rate(99, 100, 0.05) - 0.05).abs() < 1e-6);
        let mid = decayed_rate(50, 101, 0.0);
        assert!((mid - 0.5).abs() < 1e-3, "{mid}");
        assert_eq!(decayed_rate(0, 1, 0.1), 1.0);
    }

    #[test]
    fn sphere_rows_lie_on_the_sphere() {
        let device = crate::device::cpu();
        let rows = sphere_rows(5, 32, &mut SplitMix64::new(3), &device);
        let norms = crate::device::read_floats_blocking(rows.powi_scalar(2).sum_dim(1))
            .unwrap()
            .0;
        for n in norms {
            assert!((n - 32.0).abs() < 1e-3, "{n}");
        }
    }

    #[test]
    fn pca_fit_recovers_visible_texels_and_ignores_hidden_ones() {
        // A 2-component PCA over 4×8 maps; the target is a model texture, with its right half
        // hidden and replaced by nonsense the fit must not see.
        let device = crate::device::cpu();
        let n = 4 * 8 * 3;
        let mut rng = SplitMix64::new(11);
        let basis: Vec<f32> = (0..2 * n).map(|_| 0.1 * rng.normal()).collect();
        let pca = TextureModel::Pca(PcaTexture::new(
            Tensor::ones([1, n], &device) * 0.5,
            Tensor::from_data(TensorData::new(basis, [2, n]), &device),
            4,
            2,
        ));
        let truth = Tensor::<2>::from_data(TensorData::new(vec![1.0f32, -0.7], [1, 2]), &device);
        let clean = pca.uv_map(truth).unwrap();
        let weight_values: Vec<f32> = (0..32).map(|i| if i % 8 < 4 { 1.0 } else { 0.0 }).collect();
        let weight = Tensor::<4>::from_data(TensorData::new(weight_values, [1, 4, 8, 1]), &device);
        let target = clean.clone() * weight.clone() + (weight.clone().neg() + 1.0) * 0.9;
        let options = LatentFitOptions {
            steps: 300,
            learning_rate: 0.05,
            ..Default::default()
        };
        let fitted = crate::device::block_on(fit_texels(
            &pca,
            |p| pca.uv_map(p),
            target,
            weight,
            &options,
        ))
        .unwrap();
        let (values, _) = crate::device::read_floats_blocking(fitted).unwrap();
        assert!(
            (values[0] - 1.0).abs() < 0.05 && (values[1] + 0.7).abs() < 0.05,
            "{values:?}"
        );
    }
}
