//! Texture models judged on held-out unwraps (`ganfit texture eval`): what a prior is for.
//!
//! - **Reconstruction**: each held-out texture is fitted through the model on the texels its
//!   photo saw (mask > 0.3; latent fitting as in [`crate::texture::latent`]); L1 per fitted texel.
//! - **Completion**: before that fit, a few square blocks of seen texels in the face tile are
//!   hidden; L1 on them measures how well the model fills what the photo does not show.
//! - **SWD** between model samples and the held-out textures (face tile), over several seeds.
//! - A paired bootstrap interval for the difference of two models over the same textures.
//!
//! The baselines are the PCA model and the corpus's mean texture ([`mean_texture_model`]).

use burn::tensor::{Device, Tensor, TensorData};

use super::swd::{FloatImage, multiscale_swd};
use crate::error::{Error, Result};
use crate::texture::corpus::Corpus;
use crate::texture::latent::{LatentFitOptions, fit_texels};
use crate::texture::model::{PcaTexture, TextureModel};
use crate::util::rng::SplitMix64;

/// A texel counts as seen above this mask confidence (as the unwrapper's coverage does).
pub const SEEN: f32 = 0.3;

#[derive(Debug, Clone, Copy)]
pub struct TextureEvalOptions {
    /// Square blocks hidden per texture for completion, each `block_fraction` of the height.
    pub blocks: usize,
    pub block_fraction: f32,
    /// Textures fitted together (one batch of latent fitting).
    pub batch: usize,
    pub fit: LatentFitOptions,
    pub seed: u64,
}

impl Default for TextureEvalOptions {
    fn default() -> Self {
        Self {
            blocks: 4,
            block_fraction: 0.125,
            batch: 8,
            fit: LatentFitOptions::default(),
            seed: 5,
        }
    }
}

/// Per-texture errors of one model, in the order of the textures given.
#[derive(Debug, Clone, Default)]
pub struct TextureScores {
    /// L1 per fitted (seen, not hidden) texel.
    pub reconstruction: Vec<f32>,
    /// L1 per hidden texel (NaN where a texture had none to hide).
    pub completion: Vec<f32>,
}

/// The texels to fit and the texels hidden from the fit, as 0/1 weights over an `h`×`w` map:
/// `blocks` squares of side `side`, centred on random seen texels of the face tile (the left
/// `h`×`h` square), are hidden where they cover seen texels.
pub fn completion_split(
    mask: &[f32],
    h: usize,
    w: usize,
    blocks: usize,
    side: usize,
    rng: &mut SplitMix64,
) -> (Vec<f32>, Vec<f32>) {
    let seen: Vec<bool> = mask.iter().map(|&m| m > SEEN).collect();
    let face_seen: Vec<usize> = (0..h * w).filter(|&i| seen[i] && i % w < h).collect();
    let mut hidden = vec![false; h * w];
    if !face_seen.is_empty() {
        for _ in 0..blocks {
            let centre = face_seen[rng.below(face_seen.len())];
            let (cx, cy) = ((centre % w) as isize, (centre / w) as isize);
            let half = (side / 2) as isize;
            for y in (cy - half).max(0)..(cy - half + side as isize).min(h as isize) {
                for x in (cx - half).max(0)..(cx - half + side as isize).min(h as isize) {
                    hidden[y as usize * w + x as usize] = true;
                }
            }
        }
    }
    let fit = (0..h * w)
        .map(|i| f32::from(u8::from(seen[i] && !hidden[i])))
        .collect();
    let hide = (0..h * w)
        .map(|i| f32::from(u8::from(seen[i] && hidden[i])))
        .collect();
    (fit, hide)
}

/// How many times larger than the corpus's textures the model's maps are (1, 2, 4, ...): models
/// are compared at the corpus's resolution, so a finer model is box-filtered down to it; a
/// coarser one is refused rather than judged on upsampled maps.
pub fn downsampling(model: &TextureModel, h: usize, w: usize) -> Result<usize> {
    let (mh, mw) = model.size();
    let factor = mh / h.max(1);
    if factor == 0 || mh != factor * h || mw != factor * w || !factor.is_power_of_two() {
        return Err(Error::Invalid(format!(
            "the {} model makes {mw}x{mh} textures; the corpus's {w}x{h} must be that size or \
             smaller by a power of two (`ganfit texture eval --resolution R` or `ganfit texture \
             pack --full --resolution R`)",
            model.name()
        )));
    }
    Ok(factor)
}

/// The model's UV maps `[S, H, W, 3]`, box-filtered by `factor`.
pub fn uv_map_at(model: &TextureModel, params: Tensor<2>, factor: usize) -> Result<Tensor<4>> {
    let map = model.uv_map(params)?;
    if factor == 1 {
        return Ok(map);
    }
    let pooled = burn::tensor::module::avg_pool2d(
        map.permute([0, 3, 1, 2]),
        burn::tensor::ops::AvgPoolOptions::new([factor, factor]),
    );
    Ok(pooled.permute([0, 2, 3, 1]))
}

/// A model that always gives `mean` (`[H·W·3]`, RGB in [0, 1], HWC): the mean-texture baseline,
/// as a PCA model with a single zero component.
pub fn mean_texture_model(
    mean: Vec<f32>,
    resolution: usize,
    aspect: usize,
    device: &Device,
) -> TextureModel {
    let n = mean.len();
    TextureModel::Pca(PcaTexture::new(
        Tensor::from_data(TensorData::new(mean, [1, n]), device),
        Tensor::zeros([1, n], device),
        resolution,
        aspect,
    ))
}

/// Reconstruction and completion errors of `model` on the textures `indices` of `test`.
pub async fn score(
    model: &TextureModel,
    test: &Corpus,
    indices: &[usize],
    options: &TextureEvalOptions,
    device: &Device,
) -> Result<TextureScores> {
    let (h, w) = (test.resolution(), test.width());
    let factor = downsampling(model, h, w)?;
    let side = ((h as f32 * options.block_fraction).round() as usize).max(1);
    let mut scores = TextureScores::default();
    for (batch_index, batch) in indices.chunks(options.batch.max(1)).enumerate() {
        let b = batch.len();
        let mut fit_weight = Vec::with_capacity(b * h * w);
        let mut hidden = Vec::with_capacity(b * h * w);
        let mut target = Vec::with_capacity(b * h * w * 3);
        for &i in batch {
            // Each texture hides the same blocks whichever model is scored: seeded by its index.
            let mut rng = SplitMix64::new(options.seed ^ (i as u64).wrapping_mul(0x9e37_79b9));
            let (fit, hide) = completion_split(&test.mask(i), h, w, options.blocks, side, &mut rng);
            fit_weight.extend(fit);
            hidden.extend(hide);
            target.extend(test.texture(i));
        }
        let target_tensor =
            Tensor::<4>::from_data(TensorData::new(target.clone(), [b, h, w, 3]), device);
        let weight =
            Tensor::<4>::from_data(TensorData::new(fit_weight.clone(), [b, h, w, 1]), device);
        let fit_options = LatentFitOptions {
            seed: options.fit.seed ^ batch_index as u64,
            ..options.fit
        };
        let params = fit_texels(
            model,
            |p| uv_map_at(model, p, factor),
            target_tensor,
            weight,
            &fit_options,
        )
        .await?;
        let (maps, _) = crate::device::read_floats(uv_map_at(model, params, factor)?).await?;
        for row in 0..b {
            let l1 = |weights: &[f32]| {
                let (mut sum, mut count) = (0.0f64, 0.0f64);
                for t in 0..h * w {
                    let m = weights[row * h * w + t] as f64;
                    if m > 0.0 {
                        let o = (row * h * w + t) * 3;
                        for c in 0..3 {
                            sum += m * (maps[o + c] - target[o + c]).abs() as f64;
                        }
                        count += 3.0 * m;
                    }
                }
                if count > 0.0 {
                    (sum / count) as f32
                } else {
                    f32::NAN
                }
            };
            scores.reconstruction.push(l1(&fit_weight));
            scores.completion.push(l1(&hidden));
        }
    }
    Ok(scores)
}

/// The face tile (the left `h`×`h` square, which SWD compares: its pyramid is square) of an
/// `h`×`w` HWC RGB map.
fn face_tile(map: &[f32], h: usize, w: usize) -> FloatImage {
    let mut data = Vec::with_capacity(h * h * 3);
    for y in 0..h {
        data.extend_from_slice(&map[y * w * 3..(y * w + h) * 3]);
    }
    FloatImage { size: h, data }
}

/// Face tiles of maps `[N, H, W, 3]` in [0, 1].
pub async fn face_tiles(tensor: Tensor<4>) -> Result<Vec<FloatImage>> {
    let [n, h, w, _] = tensor.dims();
    let (values, _) = crate::device::read_floats(tensor).await?;
    Ok(values
        .chunks_exact(h * w * 3)
        .take(n)
        .map(|map| face_tile(map, h, w))
        .collect())
}

/// The face tiles of corpus textures `indices`.
pub fn corpus_face_tiles(corpus: &Corpus, indices: &[usize]) -> Vec<FloatImage> {
    let (h, w) = (corpus.resolution(), corpus.width());
    indices
        .iter()
        .map(|&i| face_tile(&corpus.texture(i), h, w))
        .collect()
}

/// SWD (×10³) per pyramid level (finest first) and their mean, each as mean and standard
/// deviation over seeds.
#[derive(Debug, Clone)]
pub struct SwdSummary {
    pub levels: Vec<(usize, f32, f32)>,
    pub mean: (f32, f32),
}

/// SWD between `real` and `samples` model samples (parameters ~ N(0, I)) for each of `seeds`
/// seeds; samples are generated 32 at a time and kept as face tiles on the host.
pub async fn swd_over_seeds(
    model: &TextureModel,
    real: &[FloatImage],
    factor: usize,
    samples: usize,
    seeds: usize,
    device: &Device,
) -> Result<SwdSummary> {
    let mut runs: Vec<(Vec<(usize, f32)>, f32)> = Vec::new();
    for seed in 0..seeds {
        let mut rng = SplitMix64::new(1000 + seed as u64);
        let mut fake = Vec::with_capacity(samples);
        while fake.len() < samples {
            let n = (samples - fake.len()).min(32);
            let values: Vec<f32> = (0..n * model.parameters()).map(|_| rng.normal()).collect();
            let params =
                Tensor::from_data(TensorData::new(values, [n, model.parameters()]), device);
            fake.extend(face_tiles(uv_map_at(model, params, factor)?).await?);
        }
        runs.push(multiscale_swd(real, &fake, 16, 3 + seed as u64));
    }
    let spread = |values: Vec<f32>| {
        let n = values.len().max(1) as f32;
        let mean = values.iter().sum::<f32>() / n;
        let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / (n - 1.0).max(1.0);
        (mean, var.sqrt())
    };
    let levels = (0..runs.first().map_or(0, |r| r.0.len()))
        .map(|l| {
            let (m, s) = spread(runs.iter().map(|r| r.0[l].1).collect());
            (runs[0].0[l].0, m, s)
        })
        .collect();
    Ok(SwdSummary {
        levels,
        mean: spread(runs.iter().map(|r| r.1).collect()),
    })
}

/// The mean of `a − b` over the pairs where both are finite, with a paired bootstrap 95 %
/// interval (percentiles of `resamples` resampled means).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Difference {
    pub mean: f64,
    pub low: f64,
    pub high: f64,
    pub pairs: usize,
}

pub fn paired_bootstrap(a: &[f32], b: &[f32], resamples: usize, seed: u64) -> Option<Difference> {
    let d: Vec<f64> = a
        .iter()
        .zip(b)
        .filter(|(x, y)| x.is_finite() && y.is_finite())
        .map(|(x, y)| (*x - *y) as f64)
        .collect();
    if d.is_empty() {
        return None;
    }
    let n = d.len();
    let mean = d.iter().sum::<f64>() / n as f64;
    let mut rng = SplitMix64::new(seed);
    let mut means: Vec<f64> = (0..resamples.max(1))
        .map(|_| (0..n).map(|_| d[rng.below(n)]).sum::<f64>() / n as f64)
        .collect();
    means.sort_by(f64::total_cmp);
    let at = |q: f64| means[((q * (means.len() - 1) as f64).round() as usize).min(means.len() - 1)];
    Some(Difference {
        mean,
        low: at(0.025),
        high: at(0.975),
        pairs: n,
    })
}

/// The mean of the finite values (NaN when there are none).
pub fn finite_mean(values: &[f32]) -> f32 {
    let finite: Vec<f32> = values.iter().copied().filter(|v| v.is_finite()).collect();
    if finite.is_empty() {
        f32::NAN
    } else {
        finite.iter().sum::<f32>() / finite.len() as f32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completion_hides_only_seen_face_tile_texels_and_fits_the_rest() {
        let (h, w) = (16, 32);
        // Seen: the top half of the whole atlas.
        let mask: Vec<f32> = (0..h * w)
            .map(|i| if i / w < 8 { 1.0 } else { 0.0 })
            .collect();
        let (fit, hide) = completion_split(&mask, h, w, 3, 4, &mut SplitMix64::new(1));
        let hidden: usize = hide.iter().filter(|&&v| v > 0.0).count();
        assert!(hidden > 0);
        for i in 0..h * w {
            assert!(fit[i] + hide[i] <= 1.0);
            if hide[i] > 0.0 {
                assert!(mask[i] > SEEN && i % w < h, "texel {i} hidden");
            }
            if mask[i] > SEEN {
                assert_eq!(fit[i] + hide[i], 1.0);
            }
        }
        // Nothing seen, nothing hidden or fitted.
        let (fit, hide) = completion_split(&vec![0.0; h * w], h, w, 3, 4, &mut SplitMix64::new(1));
        assert!(fit.iter().chain(&hide).all(|&v| v == 0.0));
    }

    #[test]
    fn paired_bootstrap_brackets_a_clear_difference_and_straddles_none() {
        let mut rng = SplitMix64::new(4);
        let b: Vec<f32> = (0..200).map(|_| 0.1 + 0.02 * rng.normal()).collect();
        let better: Vec<f32> = b.iter().map(|v| v - 0.01 + 0.002 * rng.normal()).collect();
        let d = paired_bootstrap(&better, &b, 1000, 1).unwrap();
        assert!(d.high < 0.0 && d.low < d.mean && d.mean < d.high, "{d:?}");
        assert!((d.mean + 0.01).abs() < 0.002, "{d:?}");
        let same: Vec<f32> = b.iter().map(|v| v + 0.002 * rng.normal()).collect();
        let d = paired_bootstrap(&same, &b, 1000, 1).unwrap();
        assert!(d.low < 0.0 && d.high > 0.0, "{d:?}");
        // Pairs with a NaN side are left out.
        let mut holes = better.clone();
        holes[0] = f32::NAN;
        assert_eq!(paired_bootstrap(&holes, &b, 10, 1).unwrap().pairs, 199);
        assert!(paired_bootstrap(&[f32::NAN], &[1.0], 10, 1).is_none());
    }

    #[test]
    fn the_mean_texture_model_reproduces_its_mean() {
        let device = crate::device::cpu();
        let mean: Vec<f32> = (0..4 * 8 * 3).map(|i| (i % 7) as f32 / 7.0).collect();
        let model = mean_texture_model(mean.clone(), 4, 2, &device);
        let (map, _) = crate::device::read_floats_blocking(
            model.uv_map(Tensor::ones([2, 1], &device)).unwrap(),
        )
        .unwrap();
        assert_eq!(&map[..mean.len()], &mean[..]);
        assert_eq!(&map[mean.len()..], &mean[..]);
    }
}
