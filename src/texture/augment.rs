//! Differentiable augmentation for GAN training on a small corpus (DiffAugment, Zhao et al.
//! 2020: colour, translation, cutout; training leaves colour out unless asked, see
//! `TrainOptions::augment_colour`), applied alike to real and generated textures before the
//! discriminator sees them. With a few thousand textures the discriminator otherwise memorises
//! the corpus and its gradients stop telling the generator anything; since every operation is
//! differentiable, the generator is trained through the same augmentation, and since real and
//! fake are augmented alike the generator has no reason to reproduce it.

use burn::tensor::{Int, Tensor, TensorData};

use crate::util::rng::SplitMix64;

/// One draw of augmentation parameters for a batch (each image its own).
#[derive(Debug, Clone)]
pub struct Augment {
    /// Added to every channel (images in [-1, 1]): U(−0.5, 0.5).
    brightness: Vec<f32>,
    /// Spread about the per-texel grey: U(0, 2).
    saturation: Vec<f32>,
    /// Spread about the image mean: U(0.5, 1.5).
    contrast: Vec<f32>,
    /// Shift in texels (x, y), up to an eighth of each side; what moves in is zero.
    shifts: Vec<(isize, isize)>,
    /// Top-left corner of the zeroed half-size rectangle.
    cutouts: Vec<(usize, usize)>,
    height: usize,
    width: usize,
}

impl Augment {
    /// Parameters for `batch` images of `height`×`width`; without `colour`, [`Augment::colour`]
    /// leaves the images as they are.
    pub fn draw(
        batch: usize,
        height: usize,
        width: usize,
        colour: bool,
        rng: &mut SplitMix64,
    ) -> Self {
        let mut uniform = |low: f32, high: f32, neutral: f32| {
            let u = rng.uniform();
            if colour {
                low + (high - low) * u
            } else {
                neutral
            }
        };
        let brightness = (0..batch).map(|_| uniform(-0.5, 0.5, 0.0)).collect();
        let saturation = (0..batch).map(|_| uniform(0.0, 2.0, 1.0)).collect();
        let contrast = (0..batch).map(|_| uniform(0.5, 1.5, 1.0)).collect();
        let (sx, sy) = ((width / 8) as isize, (height / 8) as isize);
        let shifts = (0..batch)
            .map(|_| {
                (
                    rng.below(2 * sx as usize + 1) as isize - sx,
                    rng.below(2 * sy as usize + 1) as isize - sy,
                )
            })
            .collect();
        let cutouts = (0..batch)
            .map(|_| {
                (
                    rng.below(width - width / 2 + 1),
                    rng.below(height - height / 2 + 1),
                )
            })
            .collect();
        Self {
            brightness,
            saturation,
            contrast,
            shifts,
            cutouts,
            height,
            width,
        }
    }

    /// Brightness, saturation and contrast of images `[B, 3, H, W]` in [-1, 1], contrast about
    /// the mean over the texels `masks` `[B, 1, H, W]` weights (so that what a mask hides cannot
    /// leak into the texels it shows).
    pub fn colour(&self, images: Tensor<4>, masks: Tensor<4>) -> Tensor<4> {
        let device = images.device();
        let per_image = |values: &[f32]| {
            Tensor::<4>::from_data(
                TensorData::new(values.to_vec(), [values.len(), 1, 1, 1]),
                &device,
            )
        };
        let x = images + per_image(&self.brightness);
        let grey = x.clone().mean_dim(1);
        let x = (x - grey.clone()) * per_image(&self.saturation) + grey;
        let weight = masks.clone().sum_dim(2).sum_dim(3) * 3.0 + 1e-6;
        let mean = (x.clone() * masks).sum_dim(1).sum_dim(2).sum_dim(3) / weight;
        (x - mean.clone()) * per_image(&self.contrast) + mean
    }

    /// Translation and cutout of `[B, C, H, W]` (every channel alike).
    pub fn geometry(&self, x: Tensor<4>) -> Tensor<4> {
        let [b, c, h, w] = x.dims();
        assert_eq!(
            (h, w),
            (self.height, self.width),
            "augmentation drawn for another size"
        );
        let device = x.device();
        // Translation as one gather from the image with a zero texel appended: each output
        // texel reads its shifted source, or the zero where the source is outside.
        let flat = x.reshape([b, c, h * w]);
        let padded = Tensor::cat(
            vec![flat.clone(), flat.slice([0..b, 0..c, 0..1]).zeros_like()],
            2,
        );
        let mut indices = Vec::with_capacity(b * c * h * w);
        let mut keep = Vec::with_capacity(b * h * w);
        for (i, &(dx, dy)) in self.shifts.iter().enumerate() {
            let (cx, cy) = self.cutouts[i];
            let source: Vec<i64> = (0..h * w)
                .map(|p| {
                    let (x, y) = ((p % w) as isize - dx, (p / w) as isize - dy);
                    if (0..w as isize).contains(&x) && (0..h as isize).contains(&y) {
                        (y as usize * w + x as usize) as i64
                    } else {
                        (h * w) as i64
                    }
                })
                .collect();
            for _ in 0..c {
                indices.extend_from_slice(&source);
            }
            keep.extend((0..h * w).map(|p| {
                let (x, y) = (p % w, p / w);
                let inside = (cx..cx + w / 2).contains(&x) && (cy..cy + h / 2).contains(&y);
                if inside { 0.0f32 } else { 1.0 }
            }));
        }
        let indices = Tensor::<3, Int>::from_data(TensorData::new(indices, [b, c, h * w]), &device);
        let shifted = padded.gather(2, indices).reshape([b, c, h, w]);
        let keep = Tensor::<4>::from_data(TensorData::new(keep, [b, 1, h, w]), &device);
        shifted * keep
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(t: Tensor<4>) -> Vec<f32> {
        crate::device::read_floats_blocking(t).unwrap().0
    }

    #[test]
    fn geometry_shifts_in_zeros_and_cuts_out_a_half_size_rectangle() {
        let device = crate::device::cpu();
        let (h, w) = (8, 16);
        let values: Vec<f32> = (0..2 * h * w).map(|i| 1.0 + i as f32).collect();
        let x = Tensor::<4>::from_data(TensorData::new(values.clone(), [1, 2, h, w]), &device);
        let augment = Augment {
            brightness: vec![0.0],
            saturation: vec![1.0],
            contrast: vec![1.0],
            shifts: vec![(2, -1)],
            cutouts: vec![(10, 4)],
            height: h,
            width: w,
        };
        let out = read(augment.geometry(x));
        for c in 0..2 {
            for y in 0..h {
                for x in 0..w {
                    let (sx, sy) = (x as isize - 2, y as isize + 1);
                    let cut = (10..18).contains(&x) && (4..8).contains(&y);
                    let expected = if cut || !(0..w as isize).contains(&sx) || sy >= h as isize {
                        0.0
                    } else {
                        values[c * h * w + sy as usize * w + sx as usize]
                    };
                    assert_eq!(out[c * h * w + y * w + x], expected, "c{c} ({x}, {y})");
                }
            }
        }
    }

    #[test]
    fn colour_keeps_grey_images_grey_at_unit_settings_and_gradients_flow() {
        let device = crate::device::cpu().autodiff();
        let x = Tensor::<4>::ones([2, 3, 4, 8], &device).require_grad() * 0.25;
        let augment = Augment::draw(2, 4, 8, true, &mut SplitMix64::new(3));
        let masks = Tensor::<4>::ones([2, 1, 4, 8], &device);
        let out = augment.colour(x, masks.clone());
        // A flat grey image stays flat: only brightness moves it.
        let values = read(out.clone().detach());
        for (i, v) in values.iter().enumerate() {
            let b = i / (3 * 32);
            assert!((v - (0.25 + augment.brightness[b])).abs() < 1e-5, "{v}");
        }
        let leaf = Tensor::<4>::ones([2, 3, 4, 8], &device).require_grad();
        let grads = augment
            .geometry(augment.colour(leaf.clone(), masks))
            .sum()
            .backward();
        assert!(leaf.grad(&grads).is_some());
    }
}
