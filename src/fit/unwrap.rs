//! Photo → UV texture: every texel of the model's UV layout is traced to its 3D point on the
//! fitted face, projected into the photo, tested for visibility (in the image, not occluded,
//! facing the camera), sampled, and divided by the fitted shading to approximate albedo.
//! Used by the corpus builder (`ganfit texture unwrap`) and by the fitter's photo-texture blend.
//!
//! Everything here is plain Rust on the host (it runs once per photo, after the optimisation),
//! built on the renderer's CPU reference so that UV-space and image-space rasterization follow
//! the same rules as the GPU kernels.

use burn::tensor::Tensor;
use image::RgbImage;

use crate::error::{Error, Result};
use crate::face_model::{FaceArea, FaceModel};
use crate::fit::params::PhotoParams;
use crate::fit::photo::PhotoTarget;
use crate::fit::pose_init::euler_matrix;
use crate::fit::scene::DEPTH;
use crate::render::rasterize;
use crate::util::rotation::rotate;

/// Minimum cosine between the surface normal and the direction to the camera for a texel to
/// count as seen: grazing views smear the photo across the texture.
pub const MIN_FACING: f32 = 0.25;
/// Depth tolerance of the visibility test, mm.
pub const DEPTH_TOLERANCE_MM: f32 = 3.0;

/// For each texel of a `width × height` UV map: the render triangle covering its centre and the
/// barycentrics there (from the renderer's own rasterizer run over the UV layout).
#[derive(Debug, Clone)]
pub struct UvSampler {
    pub width: usize,
    pub height: usize,
    /// Per texel: `(triangle, u, v)`, triangle = u32::MAX where no triangle covers the texel.
    pub texels: Vec<(u32, f32, f32)>,
    /// Per texel: 1 in the face area (the region the fit's pixel loss constrains).
    pub face: Vec<bool>,
}

impl UvSampler {
    pub fn new(face: &FaceModel, width: usize, height: usize) -> Self {
        let uvs = face.uv_list();
        let clip: Vec<f32> = uvs
            .iter()
            .flat_map(|uv| [2.0 * uv[0] - 1.0, 1.0 - 2.0 * uv[1], 0.0, 1.0])
            .collect();
        let triangles = face.triangles();
        let d = rasterize::Dims {
            batch: 1,
            vertices: uvs.len(),
            triangles: triangles.len(),
            height,
            width,
        };
        let rast = rasterize::forward_cpu(&clip, triangles, d);
        let texels = rast
            .chunks_exact(4)
            .map(|p| {
                if p[3] >= 1.0 {
                    (p[3] as u32 - 1, p[0], p[1])
                } else {
                    (u32::MAX, 0.0, 0.0)
                }
            })
            .collect();
        let face_mask = face
            .uv_face_mask(FaceArea::Full, width, height)
            .into_iter()
            .map(|m| m > 0.5)
            .collect();
        Self {
            width,
            height,
            texels,
            face: face_mask,
        }
    }

    /// Interpolates a per-shape-vertex quantity at texel `i`.
    pub fn point(&self, face: &FaceModel, values: &[[f32; 3]], i: usize) -> Option<[f32; 3]> {
        let (t, u, v) = self.texels[i];
        if t == u32::MAX {
            return None;
        }
        let tri = face.triangles()[t as usize];
        let to_shape = face.render_to_shape();
        let w = [u, v, 1.0 - u - v];
        let mut out = [0f32; 3];
        for c in 0..3 {
            let p = values[to_shape[tri[c] as usize] as usize];
            for k in 0..3 {
                out[k] += w[c] * p[k];
            }
        }
        Some(out)
    }
}

/// A photo's colours in UV space.
#[derive(Debug, Clone)]
pub struct Unwrapped {
    pub width: usize,
    pub height: usize,
    /// RGB albedo estimate in [0, 1], row-major, 0 where unseen.
    pub albedo: Vec<[f32; 3]>,
    /// Per texel confidence in [0, 1] (0 = not seen).
    pub confidence: Vec<f32>,
}

impl Unwrapped {
    /// Fraction of the face-area texels seen with confidence above `threshold`.
    pub fn coverage(&self, sampler: &UvSampler, threshold: f32) -> f32 {
        let face = sampler.face.iter().filter(|&&f| f).count().max(1);
        let seen = self
            .confidence
            .iter()
            .zip(&sampler.face)
            .filter(|(c, f)| **f && **c > threshold)
            .count();
        seen as f32 / face as f32
    }
}

/// The four pixels (row-major indices, clamped to the `size²` image: top-left, top-right,
/// bottom-left, bottom-right) a bilinear sample at `(x, y)` reads, and its fractions.
fn bilinear_taps(size: usize, x: f32, y: f32) -> ([usize; 4], [f32; 2]) {
    let (fx, fy) = (x - 0.5, y - 0.5);
    let (x0, y0) = (fx.floor(), fy.floor());
    let at = |xi: f32, yi: f32| {
        let clamp = |v: f32| (v as i64).clamp(0, size as i64 - 1) as usize;
        clamp(yi) * size + clamp(xi)
    };
    (
        [
            at(x0, y0),
            at(x0 + 1.0, y0),
            at(x0, y0 + 1.0),
            at(x0 + 1.0, y0 + 1.0),
        ],
        [fx - x0, fy - y0],
    )
}

fn sample(image: &[f32], size: usize, x: f32, y: f32) -> [f32; 3] {
    let ([i00, i01, i10, i11], [ax, ay]) = bilinear_taps(size, x, y);
    let at = |i: usize| [image[i * 3], image[i * 3 + 1], image[i * 3 + 2]];
    let (p00, p01, p10, p11) = (at(i00), at(i01), at(i10), at(i11));
    [0, 1, 2].map(|k| {
        (p00[k] * (1.0 - ax) + p01[k] * ax) * (1.0 - ay) + (p10[k] * (1.0 - ax) + p11[k] * ax) * ay
    })
}

/// Whether every pixel the bilinear sample at `(x, y)` reads is inside the photo.
fn sample_inside(inside: &[f32], size: usize, x: f32, y: f32) -> bool {
    bilinear_taps(size, x, y).0.iter().all(|&i| inside[i] > 0.5)
}

/// Unwraps the working crop of one fitted photo (`target.pixels`, RGB in [0, 1],
/// `resolution²`). Texels seen where the crop reaches past the photo's border get no
/// confidence: the black there is not the face's colour.
pub fn unwrap(
    face: &FaceModel,
    sampler: &UvSampler,
    shape: &[[f32; 3]],
    params: &PhotoParams,
    target: &PhotoTarget,
) -> Result<Unwrapped> {
    let (image, inside, resolution) = (&target.pixels, &target.inside, target.resolution);
    if shape.len() != face.num_shape_vertices()
        || image.len() != resolution * resolution * 3
        || inside.len() != resolution * resolution
    {
        return Err(Error::Invalid(
            "unwrap: shape or image of the wrong size".into(),
        ));
    }
    let r = euler_matrix(params.angles);
    let t = params.translation_mm;
    let camera: Vec<[f32; 3]> = shape
        .iter()
        .map(|p| {
            let q = rotate(&r, *p);
            [q[0] + t[0], q[1] + t[1], q[2] + t[2]]
        })
        .collect();
    let normals: Vec<[f32; 3]> =
        crate::face_model::area_weighted_normals(&camera, face.shape_triangles());
    let f = params.focal_px;
    let half = resolution as f32 / 2.0;
    let (a, b) = (
        -(DEPTH.far + DEPTH.near) / (DEPTH.far - DEPTH.near),
        -2.0 * DEPTH.far * DEPTH.near / (DEPTH.far - DEPTH.near),
    );
    // Depth buffer of the fitted face in the crop, with the renderer's rules.
    let clip: Vec<f32> = face
        .render_to_shape()
        .iter()
        .flat_map(|&s| {
            let p = camera[s as usize];
            [f * p[0] / half, f * p[1] / half, a * p[2] + b, -p[2]]
        })
        .collect();
    let d = rasterize::Dims {
        batch: 1,
        vertices: face.num_render_vertices(),
        triangles: face.triangles().len(),
        height: resolution,
        width: resolution,
    };
    let rast = rasterize::forward_cpu(&clip, face.triangles(), d);
    let light = {
        let l = params.light_direction;
        let n = (l[0] * l[0] + l[1] * l[1] + l[2] * l[2]).sqrt().max(1e-6);
        l.map(|c| c / n)
    };
    let texels = sampler.width * sampler.height;
    let mut albedo = vec![[0f32; 3]; texels];
    let mut confidence = vec![0f32; texels];
    for i in 0..texels {
        let (Some(p), Some(n)) = (
            sampler.point(face, &camera, i),
            sampler.point(face, &normals, i),
        ) else {
            continue;
        };
        if p[2] >= -DEPTH.near {
            continue;
        }
        let nn = (n[0] * n[0] + n[1] * n[1] + n[2] * n[2]).sqrt().max(1e-9);
        let n = n.map(|c| c / nn);
        let dist = (p[0] * p[0] + p[1] * p[1] + p[2] * p[2]).sqrt();
        let facing = -(n[0] * p[0] + n[1] * p[1] + n[2] * p[2]) / dist;
        if facing < MIN_FACING {
            continue;
        }
        let x = half + f * p[0] / -p[2];
        let y = half - f * p[1] / -p[2];
        if !(x >= 0.0 && y >= 0.0 && x < resolution as f32 && y < resolution as f32) {
            continue;
        }
        let pixel = (y as usize) * resolution + x as usize;
        let zw = rast[pixel * 4 + 2];
        if rast[pixel * 4 + 3] < 1.0 {
            continue;
        }
        let z_front = b / (-zw - a);
        if (p[2] - z_front).abs() > DEPTH_TOLERANCE_MM {
            continue;
        }
        if !sample_inside(inside, resolution, x, y) {
            continue;
        }
        let colour = sample(image, resolution, x, y);
        let n_dot_l = (n[0] * light[0] + n[1] * light[1] + n[2] * light[2]).max(0.0);
        for k in 0..3 {
            let shading = (params.ambient[k] + params.diffuse[k] * n_dot_l).max(0.05);
            albedo[i][k] = (colour[k] / shading).clamp(0.0, 1.0);
        }
        confidence[i] = ((facing - MIN_FACING) / (0.8 - MIN_FACING)).clamp(0.0, 1.0);
    }
    Ok(Unwrapped {
        width: sampler.width,
        height: sampler.height,
        albedo,
        confidence,
    })
}

/// A uv map `[1, R, R, 3]` in [0, 1] as RGB8.
pub async fn to_rgb8(uv_map: Tensor<4>) -> Result<RgbImage> {
    let [_, h, w, _] = uv_map.dims();
    let (values, _) = crate::device::read_floats(uv_map.slice([0..1, 0..h, 0..w, 0..3])).await?;
    let bytes = values
        .iter()
        .map(|v| (v.clamp(0.0, 1.0) * 255.0).round() as u8)
        .collect();
    RgbImage::from_raw(w as u32, h as u32, bytes)
        .ok_or_else(|| Error::Invalid("uv map size".into()))
}

/// An RGB8 texture as a UV map `[1, H, W, 3]` in [0, 1] on `device` (the renderer's layout).
pub fn from_rgb8(texture: &RgbImage, device: &burn::tensor::Device) -> Tensor<4> {
    let (w, h) = (texture.width() as usize, texture.height() as usize);
    let values: Vec<f32> = texture.as_raw().iter().map(|&v| v as f32 / 255.0).collect();
    Tensor::from_data(burn::tensor::TensorData::new(values, [1, h, w, 3]), device)
}

/// A fit's final texture, and how well its photo region joins the model's texture.
#[derive(Debug, Clone)]
pub struct BlendedTexture {
    pub image: RgbImage,
    /// Seam measure: the mean colour step (L1 over RGB, [0, 3]) between neighbouring texels on
    /// either side of the boundary of what the photos saw, over the mean step between any two
    /// neighbouring face-area texels. About 1 when the boundary is invisible; a hard seam
    /// makes it several times that. `None` when the photos saw no boundary.
    pub seam: Option<f32>,
    /// Seen face-area texels left to the model because their colour is not the face's skin
    /// (hair, background, occluders): an outlier against the fitted albedo.
    pub rejected_texels: usize,
}

/// Texels seen with less confidence than this (summed over photos) do not count as seen for
/// the seam measure.
const SEEN: f32 = 0.3;

/// The fitted texture with the photos' visible skin blended in (face area only): the texture
/// model keeps what no photo saw, the photo gives the detail it saw.
///
/// `seamless` (the default) blends so that no edge shows: seen texels whose colour is an
/// outlier against the model's (hair, background unwrapped as skin) are left to the model; the
/// photo's weight is feathered inside the seen region; and the model's texture is shifted by
/// the photo's low-frequency colour offset, filled smoothly over the whole map, so that where
/// the photo fades out the model already has its colour (a cheap membrane interpolation, in the
/// spirit of gradient-domain blending). Without it, each texel mixes photo and model by its
/// own confidence alone (hard-edged patches where the photo meets the model).
pub fn blend_photo_texture(
    face: &FaceModel,
    targets: &[PhotoTarget],
    params: &[PhotoParams],
    shapes: &[Vec<[f32; 3]>],
    texture: &RgbImage,
    seamless: bool,
) -> Result<BlendedTexture> {
    let (width, height) = (texture.width() as usize, texture.height() as usize);
    let sampler = UvSampler::new(face, width, height);
    let texels = width * height;
    let mut sum = vec![[0f32; 3]; texels];
    let mut weight = vec![0f32; texels];
    for ((target, p), shape) in targets.iter().zip(params).zip(shapes) {
        let u = unwrap(face, &sampler, shape, p, target)?;
        for i in 0..texels {
            if !sampler.face[i] {
                continue;
            }
            let c = u.confidence[i];
            for k in 0..3 {
                sum[i][k] += c * u.albedo[i][k];
            }
            weight[i] += c;
        }
    }
    let model: Vec<[f32; 3]> = texture
        .pixels()
        .map(|p| [0, 1, 2].map(|k| p[k] as f32 / 255.0))
        .collect();
    let photo: Vec<[f32; 3]> = (0..texels)
        .map(|i| {
            if weight[i] > 0.0 {
                sum[i].map(|v| v / weight[i])
            } else {
                [0.0; 3]
            }
        })
        .collect();
    let seen: Vec<bool> = weight.iter().map(|&w| w > SEEN).collect();
    // Full trust only in well-seen texels.
    let mut alpha: Vec<f32> = weight
        .iter()
        .map(|&w| (w / targets.len().max(1) as f32).clamp(0.0, 1.0).sqrt())
        .collect();
    let mut base = model.clone();
    let mut rejected_texels = 0;
    if seamless {
        // Hair, background and occluders intrude at the face's border (hairline, ears, jaw,
        // neck), not inside it, where outliers are the eyes, brows and lips the model's
        // texture lacks: only the ring outside the narrow face area is tested.
        let inner = face.uv_face_mask(FaceArea::Narrow, width, height);
        let testable: Vec<bool> = (0..texels).map(|i| seen[i] && inner[i] < 0.5).collect();
        rejected_texels = reject_outliers(&photo, &model, &seen, &testable, &mut alpha);
        // The photo's colour offset from the model where it is trusted, filled everywhere and
        // kept to low frequencies.
        let mut offset: Vec<[f32; 3]> = (0..texels)
            .map(|i| [0, 1, 2].map(|k| photo[i][k] - model[i][k]))
            .collect();
        if alpha.iter().any(|&a| a > 0.0) {
            push_pull_fill(&mut offset, &alpha, width, height);
            let radius = (width / 32).max(1);
            for _ in 0..3 {
                box_blur(&mut offset, width, height, radius);
            }
            for i in 0..texels {
                if sampler.texels[i].0 != u32::MAX {
                    base[i] = [0, 1, 2].map(|k| (model[i][k] + offset[i][k]).clamp(0.0, 1.0));
                }
            }
        }
        // Feather: the photo fades in over a few texels inside its region's border.
        let mut soft: Vec<[f32; 1]> = alpha.iter().map(|&a| [a]).collect();
        let radius = (width / 128).max(1);
        for _ in 0..2 {
            box_blur(&mut soft, width, height, radius);
        }
        for (a, s) in alpha.iter_mut().zip(&soft) {
            *a = a.min(s[0]);
        }
    }
    let mut out = texture.clone();
    let mut blended = vec![[0f32; 3]; texels];
    for (i, px) in out.pixels_mut().enumerate() {
        let a = alpha[i];
        for k in 0..3 {
            let v = base[i][k] * (1.0 - a) + photo[i][k] * a;
            blended[i][k] = v;
            px[k] = (v * 255.0).round().clamp(0.0, 255.0) as u8;
        }
    }
    Ok(BlendedTexture {
        seam: seam_measure(&blended, &seen, &sampler.face, width, height),
        image: out,
        rejected_texels,
    })
}

/// Sets `alpha` to 0 on `testable` texels whose photo colour departs from the model's by much
/// more than is usual over the seen texels (median and MAD of the departure after removing the
/// median offset); returns how many.
fn reject_outliers(
    photo: &[[f32; 3]],
    model: &[[f32; 3]],
    seen: &[bool],
    testable: &[bool],
    alpha: &mut [f32],
) -> usize {
    let seen_texels: Vec<usize> = (0..seen.len()).filter(|&i| seen[i]).collect();
    if seen_texels.len() < 16 {
        return 0;
    }
    let median = |mut v: Vec<f32>| {
        v.sort_by(f32::total_cmp);
        v[v.len() / 2]
    };
    let offset: [f32; 3] = [0, 1, 2].map(|k| {
        median(
            seen_texels
                .iter()
                .map(|&i| photo[i][k] - model[i][k])
                .collect(),
        )
    });
    let departure = |i: usize| -> f32 {
        (0..3)
            .map(|k| (photo[i][k] - model[i][k] - offset[k]).abs())
            .sum()
    };
    let departures: Vec<f32> = seen_texels.iter().map(|&i| departure(i)).collect();
    let typical = median(departures.clone());
    let spread = median(departures.iter().map(|d| (d - typical).abs()).collect());
    // 3 robust standard deviations, and never below a colour step the eye would call the same
    // skin (0.15 over three channels).
    let limit = (typical + 3.0 * 1.4826 * spread).max(0.15);
    let mut rejected = 0;
    for (&i, &d) in seen_texels.iter().zip(&departures) {
        if testable[i] && d > limit {
            alpha[i] = 0.0;
            rejected += 1;
        }
    }
    rejected
}

/// Separable box blur of radius `radius` (the window clamped at the borders), in place, over
/// `C` interleaved channels of a `width × height` image.
pub fn box_blur<const C: usize>(
    values: &mut [[f32; C]],
    width: usize,
    height: usize,
    radius: usize,
) {
    let pass = |source: &[[f32; C]], horizontal: bool| -> Vec<[f32; C]> {
        let mut out = vec![[0f32; C]; source.len()];
        for y in 0..height {
            for x in 0..width {
                let (along, len) = if horizontal { (x, width) } else { (y, height) };
                let (lo, hi) = (along.saturating_sub(radius), (along + radius).min(len - 1));
                let mut s = [0f32; C];
                for t in lo..=hi {
                    let i = if horizontal {
                        y * width + t
                    } else {
                        t * width + x
                    };
                    for k in 0..C {
                        s[k] += source[i][k];
                    }
                }
                out[y * width + x] = s.map(|v| v / (hi - lo + 1) as f32);
            }
        }
        out
    };
    let rows = pass(values, true);
    let blurred = pass(&rows, false);
    values.copy_from_slice(&blurred);
}

/// See [`BlendedTexture::seam`].
pub fn seam_measure(
    texture: &[[f32; 3]],
    seen: &[bool],
    face: &[bool],
    width: usize,
    height: usize,
) -> Option<f32> {
    let step =
        |a: usize, b: usize| -> f32 { (0..3).map(|k| (texture[a][k] - texture[b][k]).abs()).sum() };
    let (mut across, mut across_n, mut all, mut all_n) = (0f64, 0usize, 0f64, 0usize);
    for y in 0..height {
        for x in 0..width {
            let i = y * width + x;
            for j in [
                (x + 1 < width).then(|| i + 1),
                (y + 1 < height).then(|| i + width),
            ]
            .into_iter()
            .flatten()
            {
                if !(face[i] && face[j]) {
                    continue;
                }
                let s = step(i, j) as f64;
                all += s;
                all_n += 1;
                if seen[i] != seen[j] {
                    across += s;
                    across_n += 1;
                }
            }
        }
    }
    if across_n == 0 || all == 0.0 {
        return None;
    }
    Some(((across / across_n as f64) / (all / all_n as f64)) as f32)
}

/// Fills every texel with `weight == 0` from its neighbourhood (push-pull: average down a
/// pyramid, then fill holes from the coarser level on the way up). Smooth and hole-free.
pub fn push_pull_fill(colours: &mut [[f32; 3]], weights: &[f32], width: usize, height: usize) {
    if width <= 1 || height <= 1 {
        return;
    }
    let (hw, hh) = (width / 2, height / 2);
    let mut coarse = vec![[0f32; 3]; hw * hh];
    let mut coarse_w = vec![0f32; hw * hh];
    for y in 0..hh {
        for x in 0..hw {
            let (mut c, mut w) = ([0f32; 3], 0f32);
            for (dx, dy) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
                let i = (2 * y + dy) * width + 2 * x + dx;
                let wi = weights[i].min(1.0);
                for k in 0..3 {
                    c[k] += colours[i][k] * wi;
                }
                w += wi;
            }
            let j = y * hw + x;
            if w > 0.0 {
                coarse[j] = c.map(|v| v / w);
                coarse_w[j] = (w / 4.0).clamp(1e-3, 1.0);
            }
        }
    }
    push_pull_fill(&mut coarse, &coarse_w, hw, hh);
    for y in 0..height {
        for x in 0..width {
            let i = y * width + x;
            let w = weights[i].min(1.0);
            if w < 1.0 {
                let j = (y / 2).min(hh - 1) * hw + (x / 2).min(hw - 1);
                for k in 0..3 {
                    colours[i][k] = colours[i][k] * w + coarse[j][k] * (1.0 - w);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_step_at_the_boundary_of_the_seen_region_is_a_seam_and_a_ramp_is_not() {
        let (w, h) = (32, 16);
        let seen: Vec<bool> = (0..w * h).map(|i| i % w < 16).collect();
        let face = vec![true; w * h];
        // A gentle diagonal gradient everywhere, with a step of 0.3 where the seen region ends
        // or without.
        let gradient = |i: usize| 0.01 * (i % w + i / w) as f32;
        let step: Vec<[f32; 3]> = (0..w * h)
            .map(|i| [gradient(i) + if seen[i] { 0.3 } else { 0.0 }; 3])
            .collect();
        let ramp: Vec<[f32; 3]> = (0..w * h).map(|i| [gradient(i); 3]).collect();
        let hard = seam_measure(&step, &seen, &face, w, h).unwrap();
        let soft = seam_measure(&ramp, &seen, &face, w, h).unwrap();
        assert!(hard > 5.0, "{hard}");
        assert!((soft - 1.0).abs() < 0.1, "{soft}");
        // Nothing seen: no boundary, no measure.
        assert!(seam_measure(&ramp, &vec![false; w * h], &face, w, h).is_none());
    }

    #[test]
    fn a_sample_is_inside_only_when_all_four_of_its_pixels_are() {
        // A 4 × 4 crop whose right column lies past the photo's border.
        let inside: Vec<f32> = (0..16)
            .map(|k| if k % 4 == 3 { 0.0 } else { 1.0 })
            .collect();
        // Pixel centres are at +0.5: a sample at x = 2.2 reads columns 1 and 2.
        assert!(sample_inside(&inside, 4, 2.2, 1.5));
        // Between columns 2 and 3: it reads the outside column too.
        assert!(!sample_inside(&inside, 4, 3.0, 1.5));
        assert!(!sample_inside(&inside, 4, 3.9, 0.2));
        // Near the crop's own edge the clamped reads stay inside.
        assert!(sample_inside(&inside, 4, 0.1, 0.1));
    }

    #[test]
    fn only_testable_outliers_are_left_to_the_model() {
        let n = 100;
        let model = vec![[0.6, 0.5, 0.4]; n];
        // Skin a little brighter than the model everywhere, with noise; texels 0-9 are hair.
        let photo: Vec<[f32; 3]> = (0..n)
            .map(|i| {
                let d = 0.01 * ((i * 7) % 5) as f32;
                if i < 10 {
                    [0.1, 0.08, 0.05]
                } else {
                    [0.7 + d, 0.6 + d, 0.5 + d]
                }
            })
            .collect();
        let seen = vec![true; n];
        let testable: Vec<bool> = (0..n).map(|i| i % 2 == 0).collect();
        let mut alpha = vec![1.0; n];
        let rejected = reject_outliers(&photo, &model, &seen, &testable, &mut alpha);
        assert_eq!(rejected, 5);
        for i in 0..n {
            let expect_rejected = i < 10 && i % 2 == 0;
            assert_eq!(alpha[i] == 0.0, expect_rejected, "texel {i}");
        }
    }
}
