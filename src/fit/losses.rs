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
    let [n, k, _] = predicted.dims();
    let squared = (predicted - target)
        .powi_scalar(2)
        .sum_dim(2)
        .reshape([n, k]);
    let weighted = squared * weights.clone().reshape([1, k]);
    weighted.sum() / (weights.sum() * (n as f32) * scale * scale)
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
