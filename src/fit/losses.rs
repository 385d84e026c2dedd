//! GANFit's loss terms, batched over photos.

use burn::tensor::Tensor;

/// The terms a fit weighs and reports (each stage uses some of them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LossTerm {
    Landmarks,
    Pixel,
    Identity,
    RandomIdentity,
    Content,
    IdentityPrior,
    ExpressionPrior,
    TexturePrior,
    FocalPrior,
}

/// Mean squared landmark distance `[N, 68, 2]` vs `[N, 68, 2]` in pixels, divided by the square
/// of `scale` (the working resolution), with per-point weights `[68]`.
pub fn landmarks(
    predicted: Tensor<3>,
    target: Tensor<3>,
    weights: Tensor<1>,
    scale: f32,
) -> Tensor<1> {
    landmarks_per_photo(predicted, target, weights, scale).mean()
}

/// [`landmarks`] of each photo: `[N]`.
pub fn landmarks_per_photo(
    predicted: Tensor<3>,
    target: Tensor<3>,
    weights: Tensor<1>,
    scale: f32,
) -> Tensor<1> {
    let [n, k, _] = predicted.dims();
    let squared = (predicted - target)
        .powi_scalar(2)
        .sum_dim(2)
        .reshape([n, k]);
    let weighted = squared * weights.clone().reshape([1, k]);
    weighted.sum_dim(1).reshape([n]) / (weights.sum() * scale * scale)
}

/// The landmark guard of stage 2: `slope` times the mean over photos of how far each photo's
/// landmark loss `[N]` rises above its `level` `[N]` (stage 1's final value), zero below it.
/// Stage 2 may trade landmark accuracy for the image terms up to stage 1's level freely; past
/// it, the landmark term's slope rises `1 + slope` fold.
pub fn landmark_guard(per_photo: Tensor<1>, level: Tensor<1>, slope: f32) -> Tensor<1> {
    (per_photo - level).clamp_min(0.0).mean() * slope
}

/// Mean absolute colour difference over the masked pixels: Σ m·|a − b| / (3 Σ m).
pub fn masked_l1(rendered: Tensor<4>, photo: Tensor<4>, mask: Tensor<4>) -> Tensor<1> {
    let numerator = ((rendered - photo).abs() * mask.clone()).sum();
    numerator / (mask.sum() * 3.0 + 1.0)
}

/// Mean of 1 − cos(a, b) over the batch, for unit embeddings `[N, D]`.
pub fn identity(a: Tensor<2>, b: Tensor<2>) -> Tensor<1> {
    let cos = (a * b).sum_dim(1);
    (cos.neg() + 1.0).mean()
}

/// Mean over layers of the mean squared difference of intermediate activations (each layer
/// normalised by its size, as GANFit's content loss).
pub fn content(a: &[Tensor<4>], b: &[Tensor<4>]) -> Option<Tensor<1>> {
    let terms: Vec<Tensor<1>> = a
        .iter()
        .zip(b)
        .map(|(x, y)| (x.clone() - y.clone()).powi_scalar(2).mean())
        .collect();
    let n = terms.len();
    terms.into_iter().reduce(|s, t| s + t).map(|s| s / n as f32)
}

/// Mean of squares, the Gaussian prior of unit-variance coefficients.
pub fn squared(x: Tensor<2>) -> Tensor<1> {
    x.powi_scalar(2).mean()
}

/// Cosine similarity `[N]` of unit embeddings.
pub fn cosine(a: Tensor<2>, b: Tensor<2>) -> Tensor<1> {
    let [n, _] = a.dims();
    (a * b).sum_dim(1).reshape([n])
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::TensorData;

    #[test]
    fn landmark_guard_only_counts_what_rises_above_the_level() {
        let device = crate::device::cpu();
        let v =
            |x: Vec<f32>| Tensor::<1>::from_data(TensorData::new(x.clone(), [x.len()]), &device);
        // Photo 0 is below its level, photo 1 0.5 above: mean excess 0.25, times the slope.
        let guard = landmark_guard(v(vec![1.0, 2.5]), v(vec![2.0, 2.0]), 10.0);
        let value = crate::device::read_floats_blocking(guard).unwrap().0[0];
        assert!((value - 2.5).abs() < 1e-6, "{value}");
    }

    #[test]
    fn landmark_loss_is_the_mean_of_the_per_photo_losses() {
        let device = crate::device::cpu();
        let p = Tensor::<3>::from_data(
            TensorData::new(vec![1.0f32, 0.0, 0.0, 3.0], [2, 1, 2]),
            &device,
        );
        let zero = Tensor::<3>::zeros([2, 1, 2], &device);
        let w = Tensor::<1>::ones([1], &device);
        let per_photo = crate::device::read_floats_blocking(landmarks_per_photo(
            p.clone(),
            zero.clone(),
            w.clone(),
            1.0,
        ))
        .unwrap()
        .0;
        assert_eq!(per_photo, vec![1.0, 9.0]);
        let mean = crate::device::read_floats_blocking(landmarks(p, zero, w, 1.0))
            .unwrap()
            .0[0];
        assert_eq!(mean, 5.0);
    }
}
