//! Geometry between photos and network inputs: similarity transforms, the canonical crops of
//! each network, and the differentiable warp that cuts the same crop out of a rendered image.
//!
//! Pixel convention everywhere in this crate: 0-based, the centre of pixel `(i, j)` (row,
//! column) is at `(j + 0.5, i + 0.5)`, so an image of width `W` spans `[0, W]`. (300-W `.pts`
//! files put the top-left centre at (1, 1): subtract 0.5. OpenCV/insightface and TensorFlow's
//! legacy resize put it at (0, 0): add 0.5.)
//!
//! Two kinds of crop:
//! - face-api's ([`SquareCrop`]): an integer box sliced from the photo, zero-padded to a square
//!   and resized with TensorFlow's legacy `resizeBilinear` (no half-pixel offset). The detector,
//!   the landmark network and the ResNet see exactly these inputs, as in face-api.
//! - a similarity warp ([`Affine`], [`warp`], [`warp_image`]): bilinear sampling at pixel
//!   centres through [`crate::render::texture`], zero outside the image. The ArcFace crop
//!   (faceres) is one; the face-api chip is also expressible as one ([`SquareCrop::transform`]), so
//!   the fitter can cut both crops out of a rendered image with gradients.

use burn::tensor::{Tensor, TensorData};
use image::RgbImage;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::render::{self, Boundary};

/// A box in image pixels: left/top edges and size.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Rect {
    pub x: f64,
    pub y: f64,
    pub width: f64,
    pub height: f64,
}

impl Rect {
    pub fn area(&self) -> f64 {
        self.width.max(0.0) * self.height.max(0.0)
    }

    /// face-api's `Box.clipAtImageBorders` (which floors): the integer slice it cuts, or `None`
    /// when nothing of the box lies in the image.
    pub fn clip_to_pixels(&self, image_width: u32, image_height: u32) -> Option<PixelRect> {
        let x = self.x.max(0.0);
        let y = self.y.max(0.0);
        let width = (self.x + self.width - x).min(image_width as f64 - x);
        let height = (self.y + self.height - y).min(image_height as f64 - y);
        let (x, y, width, height) = (x.floor(), y.floor(), width.floor(), height.floor());
        (width > 0.0 && height > 0.0 && x.is_finite() && y.is_finite()).then_some(PixelRect {
            x: x as u32,
            y: y as u32,
            width: width as u32,
            height: height as u32,
        })
    }
}

/// An integer slice of an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PixelRect {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
}

/// `p' = [a b; c d] p + t`: maps crop coordinates to image coordinates in this module.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Affine {
    pub a: f64,
    pub b: f64,
    pub c: f64,
    pub d: f64,
    pub tx: f64,
    pub ty: f64,
}

impl Affine {
    pub const IDENTITY: Affine = Affine {
        a: 1.0,
        b: 0.0,
        c: 0.0,
        d: 1.0,
        tx: 0.0,
        ty: 0.0,
    };

    pub fn apply(&self, [x, y]: [f64; 2]) -> [f64; 2] {
        [
            self.a * x + self.b * y + self.tx,
            self.c * x + self.d * y + self.ty,
        ]
    }

    pub fn inverse(&self) -> Option<Affine> {
        let det = self.a * self.d - self.b * self.c;
        if det.abs() < 1e-12 || !det.is_finite() {
            return None;
        }
        let (a, b, c, d) = (self.d / det, -self.b / det, -self.c / det, self.a / det);
        Some(Affine {
            a,
            b,
            c,
            d,
            tx: -(a * self.tx + b * self.ty),
            ty: -(c * self.tx + d * self.ty),
        })
    }

    /// The same crop (a crop-to-image map) sampled at `to_size`² instead of `from_size`²: crop
    /// pixel `p` of the new size is `p · from_size / to_size` of the old one.
    pub fn crop_resized(&self, from_size: usize, to_size: usize) -> Affine {
        let k = from_size as f64 / to_size as f64;
        Affine {
            a: self.a * k,
            b: self.b * k,
            c: self.c * k,
            d: self.d * k,
            ..*self
        }
    }

    /// The scale of a similarity (geometric mean of the axes for a general affine).
    pub fn scale(&self) -> f64 {
        (self.a * self.d - self.b * self.c).abs().sqrt()
    }

    /// The least-squares similarity (rotation, uniform scale, translation) taking `from[i]` to
    /// `to[i]` (Umeyama 1991, without reflection), as skimage's `SimilarityTransform.estimate`.
    pub fn estimate_similarity(from: &[[f64; 2]], to: &[[f64; 2]]) -> Option<Affine> {
        let n = from.len();
        if n < 2 || n != to.len() {
            return None;
        }
        let mean = |p: &[[f64; 2]]| {
            let s = p.iter().fold([0.0, 0.0], |a, q| [a[0] + q[0], a[1] + q[1]]);
            [s[0] / n as f64, s[1] / n as f64]
        };
        let (mf, mt) = (mean(from), mean(to));
        // With complex numbers z = x + iy: to - mt ≈ w (from - mf), w = Σ conj(f) t / Σ |f|².
        let (mut re, mut im, mut norm) = (0.0, 0.0, 0.0);
        for (f, t) in from.iter().zip(to) {
            let (fx, fy, ux, uy) = (f[0] - mf[0], f[1] - mf[1], t[0] - mt[0], t[1] - mt[1]);
            re += fx * ux + fy * uy;
            im += fx * uy - fy * ux;
            norm += fx * fx + fy * fy;
        }
        if norm < 1e-12 {
            return None;
        }
        let (a, c) = (re / norm, im / norm);
        Some(Affine {
            a,
            b: -c,
            c,
            d: a,
            tx: mt[0] - (a * mf[0] - c * mf[1]),
            ty: mt[1] - (c * mf[0] + a * mf[1]),
        })
    }
}

/// A face-api input: `rect` sliced from the photo, zero-padded to a `side × side` square
/// (`pad_x`/`pad_y` columns/rows before the slice) and resized to `size × size`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SquareCrop {
    pub rect: PixelRect,
    pub side: u32,
    pub pad_x: u32,
    pub pad_y: u32,
    pub size: usize,
}

/// Above this reduction the legacy resize (4 taps per output pixel) would alias badly: such
/// inputs (huge photos, huge faces) are area-averaged instead. Below it, inputs are exactly
/// face-api's.
const MAX_POINT_SAMPLED_REDUCTION: f64 = 4.0;

impl SquareCrop {
    /// face-api's `padToSquare(x, centre)`: the short side gets `round(diff / 2)` zeros after
    /// the image and the rest before it when centring; all of `diff` after it otherwise.
    pub fn new(rect: PixelRect, size: usize, centre: bool) -> Self {
        let (w, h) = (rect.width, rect.height);
        let diff = w.abs_diff(h);
        let after = if centre {
            (diff as f64 * 0.5 + 0.5).floor() as u32
        } else {
            diff
        };
        let before = if centre { diff - after } else { 0 };
        let (pad_x, pad_y) = if h > w { (before, 0) } else { (0, before) };
        Self {
            rect,
            side: w.max(h),
            pad_x,
            pad_y,
            size,
        }
    }

    /// WeightSource pixels per input pixel.
    pub fn ratio(&self) -> f64 {
        self.side as f64 / self.size as f64
    }

    /// Crop coordinates to image coordinates. Input pixel `k` samples padded pixel `k * ratio`
    /// (legacy resize, centres at integers), i.e. image coordinate
    /// `(k * ratio - pad + rect.x) + 0.5` in this crate's convention.
    pub fn transform(&self) -> Affine {
        let s = self.ratio();
        let t = |pad: u32, origin: u32| 0.5 - 0.5 * s - pad as f64 + origin as f64;
        Affine {
            a: s,
            b: 0.0,
            c: 0.0,
            d: s,
            tx: t(self.pad_x, self.rect.x),
            ty: t(self.pad_y, self.rect.y),
        }
    }

    /// A network output given as a fraction of the input side (face-api's landmark outputs)
    /// in image coordinates of this crate's convention.
    pub fn relative_to_image(&self, [u, v]: [f64; 2]) -> [f64; 2] {
        let s = self.side as f64;
        [
            u * s - self.pad_x as f64 + self.rect.x as f64 + 0.5,
            v * s - self.pad_y as f64 + self.rect.y as f64 + 0.5,
        ]
    }

    /// The network input, NHWC `size × size × 3` in [0, 1].
    pub fn sample(&self, image: &RgbImage) -> Vec<f32> {
        let n = self.size;
        let mut out = vec![0f32; n * n * 3];
        let ratio = self.ratio();
        // The padded square as a function of its integer coordinates.
        let pixel = |px: i64, py: i64| -> [f64; 3] {
            let (ix, iy) = (px - self.pad_x as i64, py - self.pad_y as i64);
            if ix < 0 || iy < 0 || ix >= self.rect.width as i64 || iy >= self.rect.height as i64 {
                return [0.0; 3];
            }
            let p = image
                .get_pixel(self.rect.x + ix as u32, self.rect.y + iy as u32)
                .0;
            [p[0] as f64, p[1] as f64, p[2] as f64]
        };
        let last = self.side as i64 - 1;
        for r in 0..n {
            for c in 0..n {
                let value = if ratio > MAX_POINT_SAMPLED_REDUCTION {
                    // Box average over the footprint centred where the legacy resize samples.
                    let (cy, cx) = (r as f64 * ratio, c as f64 * ratio);
                    let span = |centre: f64| {
                        let lo = ((centre - 0.5 * ratio).ceil().max(0.0) as i64).min(last);
                        let hi = ((centre + 0.5 * ratio).ceil() as i64).clamp(lo + 1, last + 1);
                        lo..hi
                    };
                    let (mut sum, mut count) = ([0.0f64; 3], 0.0f64);
                    for py in span(cy) {
                        for px in span(cx) {
                            let p = pixel(px, py);
                            sum = [sum[0] + p[0], sum[1] + p[1], sum[2] + p[2]];
                            count += 1.0;
                        }
                    }
                    sum.map(|s| s / count.max(1.0))
                } else {
                    // tfjs-backend-cpu resizeBilinear, alignCorners = halfPixelCenters = false.
                    let (fy, fx) = (ratio * r as f64, ratio * c as f64);
                    let (y0, x0) = (fy.floor().max(0.0), fx.floor().max(0.0));
                    let (ry, rx) = (fy - y0, fx - x0);
                    let (y1, x1) = ((fy.ceil() as i64).min(last), (fx.ceil() as i64).min(last));
                    let (y0, x0) = (y0 as i64, x0 as i64);
                    let (tl, tr, bl, br) =
                        (pixel(x0, y0), pixel(x1, y0), pixel(x0, y1), pixel(x1, y1));
                    std::array::from_fn(|ch| {
                        let top = tl[ch] + (tr[ch] - tl[ch]) * rx;
                        let bottom = bl[ch] + (br[ch] - bl[ch]) * rx;
                        top + (bottom - top) * ry
                    })
                };
                let o = (r * n + c) * 3;
                for ch in 0..3 {
                    out[o + ch] = (value[ch] as f32) / 255.0;
                }
            }
        }
        out
    }
}

/// The side of the ArcFace template's crop; crops of other sizes scale it.
pub const ARCFACE_SIZE: usize = 112;

/// ArcFace's 112×112 five-point template (insightface `arcface_dst`: left eye, right eye, nose
/// tip, left and right mouth corner, image left first), in OpenCV's pixel convention.
pub const ARCFACE_TEMPLATE_112: [[f64; 2]; 5] = [
    [38.2946, 51.6963],
    [73.5318, 51.5014],
    [56.0252, 71.7366],
    [41.5493, 92.3655],
    [70.7299, 92.2041],
];

fn mean_point(points: &[[f32; 2]]) -> [f64; 2] {
    let n = points.len().max(1) as f64;
    let s = points
        .iter()
        .fold([0.0, 0.0], |a, p| [a[0] + p[0] as f64, a[1] + p[1] as f64]);
    [s[0] / n, s[1] / n]
}

/// Eye centres, nose tip and mouth corners from the 68 iBUG points.
pub fn five_points(landmarks: &[[f32; 2]; 68]) -> [[f64; 2]; 5] {
    let p = |i: usize| [landmarks[i][0] as f64, landmarks[i][1] as f64];
    [
        mean_point(&landmarks[36..42]),
        mean_point(&landmarks[42..48]),
        p(30),
        p(48),
        p(54),
    ]
}

/// The ArcFace crop at the template's own size: crop ([`ARCFACE_SIZE`]², this crate's
/// convention) to image. As in insightface's `norm_crop`, the similarity is fitted from the
/// landmarks to the template.
pub fn arcface_transform(landmarks: &[[f32; 2]; 68]) -> Result<Affine> {
    arcface_transform_sized(landmarks, ARCFACE_SIZE)
}

/// The ArcFace crop at `size`² (faceres: 224): the 112² template scaled by `size / 112` (pixel
/// centres included), as `fit::scene::arcface_crops` scales it. The least-squares similarity to
/// a scaled template is the 112² one followed by the scaling, so this equals
/// `arcface_transform(landmarks)?.crop_resized(112, size)`. (`arcface_crops` fits the other
/// way, template to image, so on real landmarks its crops differ from these by a few per cent
/// in scale.)
pub fn arcface_transform_sized(landmarks: &[[f32; 2]; 68], size: usize) -> Result<Affine> {
    let scale = size as f64 / ARCFACE_SIZE as f64;
    let template = ARCFACE_TEMPLATE_112.map(|[x, y]| [(x + 0.5) * scale, (y + 0.5) * scale]);
    Affine::estimate_similarity(&five_points(landmarks), &template)
        .and_then(|to_crop| to_crop.inverse())
        .ok_or_else(|| {
            Error::Invalid("degenerate landmarks: no similarity to the ArcFace template".into())
        })
}

/// face-api's descriptor chip (`FaceLandmarks.align` with `useDlibAlignment`): a square of side
/// `floor(eye-to-mouth distance / 0.45)` placed at 0.5 / 0.43 of it around the centre of the eye
/// and mouth centroids, clipped to the image, padded back to a square and resized to 150.
/// face-api also caps the side by the landmark crop's size plus the offset, which never binds
/// for a face inside its own detection box, so the cap is left out.
pub fn faceapi_chip(
    landmarks: &[[f32; 2]; 68],
    image_width: u32,
    image_height: u32,
    size: usize,
) -> Option<SquareCrop> {
    // face-api's landmark positions put pixel centres at integers.
    let shifted: Vec<[f32; 2]> = landmarks.iter().map(|p| [p[0] - 0.5, p[1] - 0.5]).collect();
    let centres = [
        mean_point(&shifted[36..42]),
        mean_point(&shifted[42..48]),
        mean_point(&shifted[48..68]),
    ];
    let distance =
        |a: [f64; 2], b: [f64; 2]| ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)).sqrt();
    let eye_to_mouth = (distance(centres[2], centres[0]) + distance(centres[2], centres[1])) / 2.0;
    let side = (eye_to_mouth / 0.45).floor();
    let reference = [
        (centres[0][0] + centres[1][0] + centres[2][0]) / 3.0,
        (centres[0][1] + centres[1][1] + centres[2][1]) / 3.0,
    ];
    let x = (reference[0] - 0.5 * side).max(0.0).floor();
    let y = (reference[1] - 0.43 * side).max(0.0).floor();
    let rect = Rect {
        x,
        y,
        width: side,
        height: side,
    }
    .clip_to_pixels(image_width, image_height)?;
    Some(SquareCrop::new(rect, size, true))
}

/// Cuts `out_size²` crops out of NHWC images `[Bi, H, W, C]` (Bi = 1 or the number of
/// transforms): output pixel centre `(j + 0.5, i + 0.5)` samples the image bilinearly at
/// `transform(j + 0.5, i + 0.5)`, zero outside the image. Differentiable with respect to the
/// image (through [`render::texture`]), so a rendered face and the photo can be aligned by the
/// same transform.
pub fn warp(image: Tensor<4>, transforms: &[Affine], out_size: usize) -> Result<Tensor<4>> {
    let [batch, height, width, _] = image.dims();
    if transforms.is_empty() || out_size == 0 || (batch != 1 && batch != transforms.len()) {
        return Err(Error::Invalid(format!(
            "warp: {} transforms for {batch} images to size {out_size} (need 1 image or one per transform)",
            transforms.len()
        )));
    }
    let device = image.device();
    let (uv, mask) = sampling_grid(transforms, out_size, width, height);
    let b = transforms.len();
    let uv = Tensor::<4>::from_data(TensorData::new(uv, [b, out_size, out_size, 2]), &device);
    let mask = Tensor::<4>::from_data(TensorData::new(mask, [b, out_size, out_size, 1]), &device);
    let sampled = render::texture(image, uv, Boundary::Clamp)?;
    Ok(sampled * mask)
}

/// Texture coordinates and inside-the-image mask of each output pixel.
fn sampling_grid(
    transforms: &[Affine],
    out_size: usize,
    width: usize,
    height: usize,
) -> (Vec<f32>, Vec<f32>) {
    let mut uv = Vec::with_capacity(transforms.len() * out_size * out_size * 2);
    let mut mask = Vec::with_capacity(transforms.len() * out_size * out_size);
    for t in transforms {
        for i in 0..out_size {
            for j in 0..out_size {
                let [x, y] = t.apply([j as f64 + 0.5, i as f64 + 0.5]);
                uv.push((x / width as f64) as f32);
                uv.push((y / height as f64) as f32);
                let inside =
                    (0.0..=width as f64).contains(&x) && (0.0..=height as f64).contains(&y);
                mask.push(inside as u8 as f32);
            }
        }
    }
    (uv, mask)
}

/// Which pixels of an `out_size²` crop (crop pixel → photo pixel by `transform`) fall inside a
/// photo of `photo_size` (width, height): 1 there, 0 outside, where [`warp_image`] gives black.
pub fn inside_mask(transform: &Affine, out_size: usize, photo_size: [usize; 2]) -> Vec<f32> {
    sampling_grid(&[*transform], out_size, photo_size[0], photo_size[1]).1
}

/// [`warp`] of a photo on the host: NHWC `out_size² × 3` in [0, 1]. Only the region the crop
/// covers is converted, so huge photos cost no more than small ones.
pub fn warp_image(image: &RgbImage, transform: &Affine, out_size: usize) -> Vec<f32> {
    let (w, h) = (image.width() as usize, image.height() as usize);
    let corners = [
        [0.0, 0.0],
        [out_size as f64, 0.0],
        [0.0, out_size as f64],
        [out_size as f64, out_size as f64],
    ]
    .map(|p| transform.apply(p));
    let lo = |k: usize, n: usize| {
        (corners
            .iter()
            .map(|p| p[k])
            .fold(f64::INFINITY, f64::min)
            .floor()
            - 2.0)
            .clamp(0.0, n as f64 - 1.0) as usize
    };
    let hi = |k: usize, n: usize| {
        (corners
            .iter()
            .map(|p| p[k])
            .fold(f64::NEG_INFINITY, f64::max)
            .ceil()
            + 2.0)
            .clamp(1.0, n as f64) as usize
    };
    let (x0, y0) = (lo(0, w), lo(1, h));
    let (x1, y1) = (hi(0, w).max(x0 + 1), hi(1, h).max(y0 + 1));
    let (rw, rh) = (x1 - x0, y1 - y0);
    let mut map = Vec::with_capacity(rw * rh * 3);
    for y in y0..y1 {
        for x in x0..x1 {
            map.extend(
                image
                    .get_pixel(x as u32, y as u32)
                    .0
                    .iter()
                    .map(|&v| v as f32 / 255.0),
            );
        }
    }
    // The same transform relative to the region; outside-the-image tests use the whole photo.
    let region = Affine {
        tx: transform.tx - x0 as f64,
        ty: transform.ty - y0 as f64,
        ..*transform
    };
    let (uv, _) = sampling_grid(&[region], out_size, rw, rh);
    let mask = inside_mask(transform, out_size, [w, h]);
    let dims = render::texture::Dims {
        batch: 1,
        height: out_size,
        width: out_size,
        channels: 3,
        map_height: rh,
        map_width: rw,
        map_batched: false,
        wrap: false,
    };
    let mut out = render::texture::forward_cpu(&map, &uv, dims);
    for (p, m) in out.chunks_mut(3).zip(mask) {
        p.iter_mut().for_each(|v| *v *= m);
    }
    out
}

/// An RGB8 photo as an NHWC tensor `[1, H, W, 3]` in [0, 1].
pub fn image_tensor(image: &RgbImage, device: &burn::tensor::Device) -> Tensor<4> {
    let values: Vec<f32> = image.as_raw().iter().map(|&v| v as f32 / 255.0).collect();
    Tensor::from_data(
        TensorData::new(
            values,
            [1, image.height() as usize, image.width() as usize, 3],
        ),
        device,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn similarity_is_recovered_exactly_and_inverts() {
        let truth = Affine {
            a: 1.3 * 0.3f64.cos(),
            b: -1.3 * 0.3f64.sin(),
            c: 1.3 * 0.3f64.sin(),
            d: 1.3 * 0.3f64.cos(),
            tx: 12.0,
            ty: -4.0,
        };
        let from = [[1.0, 2.0], [10.0, 3.0], [4.0, 9.0], [7.0, 7.0]];
        let to = from.map(|p| truth.apply(p));
        let fit = Affine::estimate_similarity(&from, &to).unwrap();
        for (f, t) in from.iter().zip(&to) {
            let p = fit.apply(*f);
            assert!((p[0] - t[0]).abs() < 1e-9 && (p[1] - t[1]).abs() < 1e-9);
        }
        let back = fit.inverse().unwrap().apply(to[2]);
        assert!((back[0] - from[2][0]).abs() < 1e-9 && (back[1] - from[2][1]).abs() < 1e-9);
        assert!((fit.scale() - 1.3).abs() < 1e-9);
        assert!(
            Affine::estimate_similarity(&[[1.0, 1.0], [1.0, 1.0]], &[[0.0, 0.0], [1.0, 0.0]])
                .is_none()
        );
    }

    #[test]
    fn pad_to_square_matches_face_api() {
        // face-api: append round(diff / 2) after, the rest before; odd diff 5 -> 3 after, 2 before.
        let crop = SquareCrop::new(
            PixelRect {
                x: 10,
                y: 20,
                width: 30,
                height: 35,
            },
            112,
            true,
        );
        assert_eq!((crop.side, crop.pad_x, crop.pad_y), (35, 2, 0));
        let crop = SquareCrop::new(
            PixelRect {
                x: 0,
                y: 0,
                width: 40,
                height: 30,
            },
            512,
            false,
        );
        assert_eq!((crop.side, crop.pad_x, crop.pad_y), (40, 0, 0));
    }

    #[test]
    fn clip_follows_face_api() {
        let r = Rect {
            x: -3.7,
            y: 5.2,
            width: 50.9,
            height: 200.0,
        };
        assert_eq!(
            r.clip_to_pixels(40, 100),
            Some(PixelRect {
                x: 0,
                y: 5,
                width: 40,
                height: 94
            })
        );
        assert_eq!(
            Rect {
                x: 50.0,
                y: 0.0,
                width: 10.0,
                height: 10.0
            }
            .clip_to_pixels(40, 40),
            None
        );
    }

    fn gradient_image(w: u32, h: u32) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| {
            image::Rgb([
                (x * 7 % 256) as u8,
                (y * 5 % 256) as u8,
                ((x + y) * 3 % 256) as u8,
            ])
        })
    }

    #[test]
    fn square_crop_without_resize_is_the_padded_slice() {
        let image = gradient_image(50, 40);
        let crop = SquareCrop::new(
            PixelRect {
                x: 5,
                y: 3,
                width: 20,
                height: 16,
            },
            20,
            true,
        );
        let input = crop.sample(&image);
        // 4 rows of padding: 2 after, 2 before.
        assert_eq!(crop.pad_y, 2);
        assert!(input[..20 * 3 * 2].iter().all(|&v| v == 0.0));
        let row = 2 + 5;
        let got = &input[(row * 20 + 7) * 3..(row * 20 + 7) * 3 + 3];
        let want = image.get_pixel(5 + 7, 3 + 5).0.map(|v| v as f32 / 255.0);
        assert_eq!(got, &want);
    }

    #[test]
    fn square_crop_transform_agrees_with_its_samples() {
        // A linear ramp survives bilinear resampling exactly, so each sample's value tells where
        // it was taken: check it against the crop transform at the sample's pixel centre.
        let image = RgbImage::from_fn(300, 200, |x, _| image::Rgb([(x * 255 / 299) as u8, 0, 0]));
        let crop = SquareCrop::new(
            PixelRect {
                x: 40,
                y: 30,
                width: 150,
                height: 150,
            },
            112,
            true,
        );
        let input = crop.sample(&image);
        let t = crop.transform();
        for c in [3usize, 50, 100] {
            let [x, _] = t.apply([c as f64 + 0.5, 10.5]);
            let expected = ((x - 0.5) * 255.0 / 299.0) / 255.0;
            let got = input[(10 * 112 + c) * 3] as f64;
            assert!(
                (got - expected).abs() < 0.01,
                "column {c}: {got} vs {expected}"
            );
        }
    }

    #[test]
    fn huge_reductions_are_area_averaged() {
        // A fine checkerboard averages to grey instead of aliasing to black or white.
        let image = RgbImage::from_fn(4000, 4000, |x, y| {
            if (x + y) % 2 == 0 {
                image::Rgb([255; 3])
            } else {
                image::Rgb([0; 3])
            }
        });
        let crop = SquareCrop::new(
            PixelRect {
                x: 0,
                y: 0,
                width: 4000,
                height: 4000,
            },
            64,
            false,
        );
        let input = crop.sample(&image);
        let interior: Vec<f32> = (1..63)
            .flat_map(|r| (1..63).map(move |c| (r * 64 + c) * 3))
            .map(|i| input[i])
            .collect();
        assert!(
            interior.iter().all(|&v| (v - 0.5).abs() < 0.05),
            "min {:?}",
            interior.iter().cloned().fold(1.0, f32::min)
        );
    }

    #[test]
    fn arcface_transform_maps_template_to_landmarks() {
        let mut l = [[0f32; 2]; 68];
        // Eyes as 6 equal points, so their centres are exact.
        let pts =
            ARCFACE_TEMPLATE_112.map(|[x, y]| [(2.0 * x + 100.0) as f32, (2.0 * y + 40.0) as f32]);
        l[36..42].iter_mut().for_each(|p| *p = pts[0]);
        l[42..48].iter_mut().for_each(|p| *p = pts[1]);
        l[30] = pts[2];
        l[48] = pts[3];
        l[54] = pts[4];
        let t = arcface_transform(&l).unwrap();
        let p = t.apply([
            ARCFACE_TEMPLATE_112[2][0] + 0.5,
            ARCFACE_TEMPLATE_112[2][1] + 0.5,
        ]);
        assert!(
            (p[0] - pts[2][0] as f64).abs() < 1e-3 && (p[1] - pts[2][1] as f64).abs() < 1e-3,
            "{p:?}"
        );
        assert!((t.scale() - 2.0).abs() < 1e-6);

        // faceres' 224² crop: the template ×2 lands on the same points, at scale 1, and the
        // 112² crop resized agrees.
        let t224 = arcface_transform_sized(&l, 224).unwrap();
        let resized = t.crop_resized(112, 224);
        for (i, [x, y]) in ARCFACE_TEMPLATE_112.iter().enumerate() {
            let p = t224.apply([(x + 0.5) * 2.0, (y + 0.5) * 2.0]);
            let q = resized.apply([(x + 0.5) * 2.0, (y + 0.5) * 2.0]);
            for k in 0..2 {
                assert!((p[k] - pts[i][k] as f64).abs() < 1e-3, "{i}: {p:?}");
                assert!((p[k] - q[k]).abs() < 1e-9, "{i}: {p:?} vs {q:?}");
            }
        }
        assert!((t224.scale() - 1.0).abs() < 1e-6);
    }

    #[test]
    fn warp_image_matches_direct_bilinear_sampling() {
        let image = gradient_image(64, 48);
        let t = Affine {
            a: 0.8,
            b: -0.3,
            c: 0.3,
            d: 0.8,
            tx: 20.0,
            ty: 5.0,
        };
        let out = warp_image(&image, &t, 16);
        for (i, j) in [(0usize, 0usize), (5, 9), (15, 15)] {
            let [x, y] = t.apply([j as f64 + 0.5, i as f64 + 0.5]);
            let (fx, fy) = (x - 0.5, y - 0.5);
            let (x0, y0) = (fx.floor(), fy.floor());
            let at = |xx: f64, yy: f64| {
                image
                    .get_pixel(xx.clamp(0.0, 63.0) as u32, yy.clamp(0.0, 47.0) as u32)
                    .0[1] as f64
                    / 255.0
            };
            let (ax, ay) = (fx - x0, fy - y0);
            let v = (at(x0, y0) * (1.0 - ax) + at(x0 + 1.0, y0) * ax) * (1.0 - ay)
                + (at(x0, y0 + 1.0) * (1.0 - ax) + at(x0 + 1.0, y0 + 1.0) * ax) * ay;
            let inside = (0.0..=64.0).contains(&x) && (0.0..=48.0).contains(&y);
            let want = if inside { v } else { 0.0 };
            assert!(
                (out[(i * 16 + j) * 3 + 1] as f64 - want).abs() < 1e-4,
                "({i}, {j}): {} vs {want}",
                out[(i * 16 + j) * 3 + 1]
            );
        }
    }

    #[test]
    fn the_inside_mask_marks_the_crop_pixels_the_photo_covers() {
        // A photo of bright pixels only (no black of its own); the crop reaches past its left,
        // top and bottom borders.
        let image = RgbImage::from_pixel(40, 30, image::Rgb([200, 150, 100]));
        let t = Affine {
            a: 2.0,
            b: 0.0,
            c: 0.0,
            d: 2.0,
            tx: -10.0,
            ty: -6.0,
        };
        let (size, pixels) = (24, warp_image(&image, &t, 24));
        let mask = inside_mask(&t, size, [40, 30]);
        assert_eq!(mask.len(), size * size);
        for (k, &m) in mask.iter().enumerate() {
            let [x, y] = t.apply([(k % size) as f64 + 0.5, (k / size) as f64 + 0.5]);
            let inside = (0.0..=40.0).contains(&x) && (0.0..=30.0).contains(&y);
            assert_eq!(m, inside as u8 as f32, "pixel {k}");
            // Black exactly where the mask says outside.
            assert_eq!(
                pixels[k * 3] == 0.0,
                m == 0.0,
                "pixel {k}: {}",
                pixels[k * 3]
            );
        }
        // Columns 0–4 are left of the photo, rows 0–2 above it and rows 18–23 below it.
        let outside = mask.iter().filter(|&&m| m == 0.0).count();
        assert_eq!(outside, size * size - 19 * 15);
    }
}
