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

fn apply(r: &[[f32; 3]; 3], p: [f32; 3]) -> [f32; 3] {
    [0, 1, 2].map(|i| r[i][0] * p[0] + r[i][1] * p[1] + r[i][2] * p[2])
}

fn sample(image: &[f32], size: usize, x: f32, y: f32) -> [f32; 3] {
    let (fx, fy) = (x - 0.5, y - 0.5);
    let (x0, y0) = (fx.floor(), fy.floor());
    let (ax, ay) = (fx - x0, fy - y0);
    let at = |xi: f32, yi: f32| {
        let (xi, yi) = (
            (xi as i64).clamp(0, size as i64 - 1) as usize,
            (yi as i64).clamp(0, size as i64 - 1) as usize,
        );
        let o = (yi * size + xi) * 3;
        [image[o], image[o + 1], image[o + 2]]
    };
    let (p00, p01, p10, p11) = (
        at(x0, y0),
        at(x0 + 1.0, y0),
        at(x0, y0 + 1.0),
        at(x0 + 1.0, y0 + 1.0),
    );
    [0, 1, 2].map(|k| {
        (p00[k] * (1.0 - ax) + p01[k] * ax) * (1.0 - ay) + (p10[k] * (1.0 - ax) + p11[k] * ax) * ay
    })
}

/// Unwraps the working crop `image` (RGB in [0, 1], `resolution²`) of one fitted photo.
pub fn unwrap(
    face: &FaceModel,
    sampler: &UvSampler,
    shape: &[[f32; 3]],
    params: &PhotoParams,
    image: &[f32],
    resolution: usize,
) -> Result<Unwrapped> {
    if shape.len() != face.num_shape_vertices() || image.len() != resolution * resolution * 3 {
        return Err(Error::Invalid(
            "unwrap: shape or image of the wrong size".into(),
        ));
    }
    let r = euler_matrix(params.angles);
    let t = params.translation_mm;
    let camera: Vec<[f32; 3]> = shape
        .iter()
        .map(|p| {
            let q = apply(&r, *p);
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

/// The fitted texture with the photos' visible skin blended in (confidence-weighted, face area
/// only): GANFit's generator keeps the occluded parts, the photo gives the visible detail.
pub fn blend_photo_texture(
    face: &FaceModel,
    targets: &[PhotoTarget],
    params: &[PhotoParams],
    shapes: &[Vec<[f32; 3]>],
    texture: &RgbImage,
) -> Result<RgbImage> {
    let (width, height) = (texture.width() as usize, texture.height() as usize);
    let sampler = UvSampler::new(face, width, height);
    let mut sum = vec![[0f32; 3]; width * height];
    let mut weight = vec![0f32; width * height];
    for ((target, p), shape) in targets.iter().zip(params).zip(shapes) {
        let u = unwrap(face, &sampler, shape, p, &target.pixels, target.resolution)?;
        for i in 0..width * height {
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
    let mut out = texture.clone();
    for (i, px) in out.pixels_mut().enumerate() {
        if weight[i] <= 0.0 {
            continue;
        }
        // Full trust only in well-seen texels; a soft ramp hides the seam.
        let alpha = (weight[i] / targets.len() as f32).clamp(0.0, 1.0).powf(0.5);
        for k in 0..3 {
            let photo = sum[i][k] / weight[i];
            let model = px[k] as f32 / 255.0;
            px[k] = ((model * (1.0 - alpha) + photo * alpha) * 255.0)
                .round()
                .clamp(0.0, 255.0) as u8;
        }
    }
    Ok(out)
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
