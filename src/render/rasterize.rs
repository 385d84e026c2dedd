//! `rasterize`: glue for `shaders/rasterize.wgsl` and its CPU reference.
//!
//! The CPU reference follows the kernels step by step (same edge values, same top-left rule,
//! same depth bits), so the two agree exactly on triangle ids.

use burn::backend::wgpu::CubeTensor;
use burn::tensor::Shape;

use super::kernel::{self, Launch, WgslKernel, kernel_params};
use super::scatter::{self, Accumulator};

const SHADER: &str = include_str!("../../shaders/rasterize.wgsl");
const W_MIN: f32 = 1e-6;
const NO_TRIANGLE: u32 = u32::MAX;

const TRIANGLES: WgslKernel<RasterizeParams> = WgslKernel::new(SHADER, "raster_triangles", (64, 1));
const RESOLVE: WgslKernel<RasterizeParams> = WgslKernel::new(SHADER, "raster_resolve", (8, 8));
const BACKWARD: WgslKernel<RasterizeParams> =
    WgslKernel::new(SHADER, "raster_backward", (8, 8)).with_library(scatter::LIBRARY);
const ROW_SPLIT: u32 = 4;
// The passes of `raster_triangles`, as numbered in the shader.
const DEPTH_PASS: u32 = 0;
const ID_PASS: u32 = 1;

kernel_params! {
    /// [`Dims`] as `shaders/rasterize.wgsl` reads them.
    pub(crate) struct RasterizeParams {
        batch: u32,
        vertices: u32,
        triangles: u32,
        height: u32,
        width: u32,
        /// `raster_triangles` only: `DEPTH_PASS` keeps each pixel's nearest depth, `ID_PASS`
        /// the lowest triangle id at that depth.
        pass_index: u32,
    }
}

/// Sizes of one rasterization call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dims {
    pub batch: usize,
    pub vertices: usize,
    pub triangles: usize,
    pub height: usize,
    pub width: usize,
}

impl Dims {
    fn params(&self) -> RasterizeParams {
        RasterizeParams {
            batch: self.batch as u32,
            vertices: self.vertices as u32,
            triangles: self.triangles as u32,
            height: self.height as u32,
            width: self.width as u32,
            pass_index: DEPTH_PASS,
        }
    }
}

type V4 = [f32; 4];

fn vertex(pos: &[f32], d: &Dims, b: usize, v: u32) -> V4 {
    let o = (b * d.vertices + v as usize) * 4;
    [pos[o], pos[o + 1], pos[o + 2], pos[o + 3]]
}

fn pixel_ndc(px: usize, py: usize, d: &Dims) -> (f32, f32) {
    (
        (px as f32 + 0.5) / d.width as f32 * 2.0 - 1.0,
        1.0 - (py as f32 + 0.5) / d.height as f32 * 2.0,
    )
}

fn edge_value(pi: V4, pj: V4, vi: u32, vj: u32, ndc: (f32, f32)) -> f32 {
    let (lo, hi) = if vi > vj { (pj, pi) } else { (pi, pj) };
    let a_lo = lo[0] - ndc.0 * lo[3];
    let c_lo = lo[1] - ndc.1 * lo[3];
    let a_hi = hi[0] - ndc.0 * hi[3];
    let c_hi = hi[1] - ndc.1 * hi[3];
    let k = a_lo * c_hi - a_hi * c_lo;
    if vi > vj { -k } else { k }
}

fn edge_inside(k: f32, s: f32, pi: V4, pj: V4) -> bool {
    let sk = s * k;
    if sk > 0.0 {
        return true;
    }
    if sk != 0.0 {
        return false;
    }
    let dx = s * (pj[0] / pj[3] - pi[0] / pi[3]);
    let dy = s * (pj[1] / pj[3] - pi[1] / pi[3]);
    dy < 0.0 || (dy == 0.0 && dx > 0.0)
}

fn orientation(p0: V4, p1: V4, p2: V4) -> f32 {
    let a = (p0[0] / p0[3], p0[1] / p0[3]);
    let b = (p1[0] / p1[3], p1[1] / p1[3]);
    let c = (p2[0] / p2[3], p2[1] / p2[3]);
    let area = (b.0 - a.0) * (c.1 - a.1) - (c.0 - a.0) * (b.1 - a.1);
    if area > 0.0 {
        1.0
    } else if area < 0.0 {
        -1.0
    } else {
        0.0
    }
}

fn finite(p: V4) -> bool {
    p.iter().all(|v| v.is_finite())
}

/// Calls `hit(pixel, depth_bits)` for every pixel the triangle covers, as the kernel does.
fn for_each_fragment(
    pos: &[f32],
    tris: &[[u32; 3]],
    d: &Dims,
    b: usize,
    t: usize,
    mut hit: impl FnMut(usize, u32),
) {
    let [i0, i1, i2] = tris[t];
    let (p0, p1, p2) = (
        vertex(pos, d, b, i0),
        vertex(pos, d, b, i1),
        vertex(pos, d, b, i2),
    );
    if !(finite(p0) && finite(p1) && finite(p2))
        || p0[3] <= W_MIN
        || p1[3] <= W_MIN
        || p2[3] <= W_MIN
    {
        return;
    }
    let s = orientation(p0, p1, p2);
    if s == 0.0 {
        return;
    }
    let (w, h) = (d.width as f32, d.height as f32);
    let xs = [p0, p1, p2].map(|p| (p[0] / p[3] + 1.0) * 0.5 * w);
    let ys = [p0, p1, p2].map(|p| (1.0 - p[1] / p[3]) * 0.5 * h);
    let min3 = |v: [f32; 3]| v[0].min(v[1].min(v[2]));
    let max3 = |v: [f32; 3]| v[0].max(v[1].max(v[2]));
    let bx_min = (min3(xs) - 0.5).ceil().clamp(0.0, w);
    let bx_max = (max3(xs) - 0.5).floor().clamp(-1.0, w - 1.0);
    let by_min = (min3(ys) - 0.5).ceil().clamp(0.0, h);
    let by_max = (max3(ys) - 0.5).floor().clamp(-1.0, h - 1.0);
    if bx_max < bx_min || by_max < by_min {
        return;
    }
    for py in by_min as usize..=by_max as usize {
        for px in bx_min as usize..=bx_max as usize {
            let ndc = pixel_ndc(px, py, d);
            let k0 = edge_value(p1, p2, i1, i2, ndc);
            let k1 = edge_value(p2, p0, i2, i0, ndc);
            let k2 = edge_value(p0, p1, i0, i1, ndc);
            if !(edge_inside(k0, s, p1, p2)
                && edge_inside(k1, s, p2, p0)
                && edge_inside(k2, s, p0, p1))
            {
                continue;
            }
            let den = k0 * p0[3] + k1 * p1[3] + k2 * p2[3];
            if den == 0.0 {
                continue;
            }
            let zw = (k0 * p0[2] + k1 * p1[2] + k2 * p2[2]) / den;
            if !(-1.0..=1.0).contains(&zw) {
                continue;
            }
            hit(
                (b * d.height + py) * d.width + px,
                (zw * 0.5 + 0.5).to_bits(),
            );
        }
    }
}

/// CPU reference of the forward pass: rast `[B, H, W, 4]`, flattened.
pub fn forward_cpu(pos: &[f32], tris: &[[u32; 3]], d: Dims) -> Vec<f32> {
    let pixels = d.batch * d.height * d.width;
    let mut depth = vec![u32::MAX; pixels];
    let mut ids = vec![NO_TRIANGLE; pixels];
    for b in 0..d.batch {
        for t in 0..tris.len() {
            for_each_fragment(pos, tris, &d, b, t, |p, bits| depth[p] = depth[p].min(bits));
        }
        for t in 0..tris.len() {
            for_each_fragment(pos, tris, &d, b, t, |p, bits| {
                if bits == depth[p] {
                    ids[p] = ids[p].min(t as u32);
                }
            });
        }
    }
    let mut rast = vec![0f32; pixels * 4];
    for b in 0..d.batch {
        for py in 0..d.height {
            for px in 0..d.width {
                let p = (b * d.height + py) * d.width + px;
                let t = ids[p];
                if t == NO_TRIANGLE {
                    continue;
                }
                let [i0, i1, i2] = tris[t as usize];
                let (p0, p1, p2) = (
                    vertex(pos, &d, b, i0),
                    vertex(pos, &d, b, i1),
                    vertex(pos, &d, b, i2),
                );
                let ndc = pixel_ndc(px, py, &d);
                let k0 = edge_value(p1, p2, i1, i2, ndc);
                let k1 = edge_value(p2, p0, i2, i0, ndc);
                let k2 = edge_value(p0, p1, i0, i1, ndc);
                let sum = k0 + k1 + k2;
                let den = k0 * p0[3] + k1 * p1[3] + k2 * p2[3];
                rast[p * 4] = k0 / sum;
                rast[p * 4 + 1] = k1 / sum;
                rast[p * 4 + 2] = (k0 * p0[2] + k1 * p1[2] + k2 * p2[2]) / den;
                rast[p * 4 + 3] = (t + 1) as f32;
            }
        }
    }
    rast
}

/// How many triangles claim each pixel before the depth test. On a consistently wound surface
/// seen from one side every covered pixel is claimed once: the watertightness property.
pub fn coverage_counts(pos: &[f32], tris: &[[u32; 3]], d: Dims) -> Vec<u32> {
    let mut counts = vec![0u32; d.batch * d.height * d.width];
    for b in 0..d.batch {
        for t in 0..tris.len() {
            for_each_fragment(pos, tris, &d, b, t, |p, _| counts[p] += 1);
        }
    }
    counts
}

/// CPU reference of the backward pass: d positions `[B, V, 4]` from d rast.
pub fn backward_cpu(
    pos: &[f32],
    tris: &[[u32; 3]],
    rast: &[f32],
    grad_rast: &[f32],
    d: Dims,
) -> Vec<f32> {
    // Sums in f64: the reference the kernels' fixed-point sums are held to.
    let mut grad = vec![0f64; d.batch * d.vertices * 4];
    for b in 0..d.batch {
        for py in 0..d.height {
            for px in 0..d.width {
                let p = (b * d.height + py) * d.width + px;
                let id = rast[p * 4 + 3];
                if !(id >= 1.0 && id <= d.triangles as f32) {
                    continue;
                }
                let (du, dv, dz) = (grad_rast[p * 4], grad_rast[p * 4 + 1], grad_rast[p * 4 + 2]);
                if du == 0.0 && dv == 0.0 && dz == 0.0 {
                    continue;
                }
                let tri = tris[id as usize - 1];
                let v = tri.map(|i| vertex(pos, &d, b, i));
                let ndc = pixel_ndc(px, py, &d);
                let a = v.map(|q| q[0] - ndc.0 * q[3]);
                let c = v.map(|q| q[1] - ndc.1 * q[3]);
                let k = [
                    a[1] * c[2] - a[2] * c[1],
                    a[2] * c[0] - a[0] * c[2],
                    a[0] * c[1] - a[1] * c[0],
                ];
                let sum = k[0] + k[1] + k[2];
                let w = v.map(|q| q[3]);
                let z = v.map(|q| q[2]);
                let den = k[0] * w[0] + k[1] * w[1] + k[2] * w[2];
                if sum == 0.0 || den == 0.0 {
                    continue;
                }
                let (u, vv) = (k[0] / sum, k[1] / sum);
                let zw = (k[0] * z[0] + k[1] * z[1] + k[2] * z[2]) / den;
                let mut gk = [
                    (du * (1.0 - u) - dv * vv) / sum,
                    (dv * (1.0 - vv) - du * u) / sum,
                    (-du * u - dv * vv) / sum,
                ];
                for i in 0..3 {
                    gk[i] += dz * (z[i] - zw * w[i]) / den;
                }
                let ga = [
                    gk[2] * c[1] - gk[1] * c[2],
                    gk[0] * c[2] - gk[2] * c[0],
                    gk[1] * c[0] - gk[0] * c[1],
                ];
                let gc = [
                    gk[1] * a[2] - gk[2] * a[1],
                    gk[2] * a[0] - gk[0] * a[2],
                    gk[0] * a[1] - gk[1] * a[0],
                ];
                for i in 0..3 {
                    let o = (b * d.vertices + tri[i] as usize) * 4;
                    grad[o] += f64::from(ga[i]);
                    grad[o + 1] += f64::from(gc[i]);
                    grad[o + 2] += f64::from(dz * k[i] / den);
                    grad[o + 3] += f64::from(-dz * zw * k[i] / den - ndc.0 * ga[i] - ndc.1 * gc[i]);
                }
            }
        }
    }
    super::scatter::to_f32(grad)
}

/// WGSL forward: two passes over triangles (depth, then id) and one over pixels.
pub fn forward_cube(pos: CubeTensor, tri: CubeTensor, d: Dims) -> CubeTensor {
    let pixels = d.batch * d.height * d.width;
    let depth = kernel::filled_u32(&pos, pixels, u32::MAX);
    let ids = kernel::filled_u32(&pos, pixels, NO_TRIANGLE);
    let params = d.params();
    for pass_index in [DEPTH_PASS, ID_PASS] {
        Launch::new(TRIANGLES, &pos)
            .arg(&pos)
            .arg(&tri)
            .arg(&depth)
            .arg(&ids)
            .run(
                &RasterizeParams {
                    pass_index,
                    ..params
                },
                (kernel::groups(d.triangles, 64), ROW_SPLIT, d.batch as u32),
            );
    }
    let rast = kernel::empty(&pos, Shape::new([d.batch, d.height, d.width, 4]));
    Launch::new(RESOLVE, &pos)
        .arg(&pos)
        .arg(&tri)
        .arg(&ids)
        .arg(&rast)
        .run(&params, pixel_groups(&d, RESOLVE.workgroup));
    rast
}

/// WGSL backward.
pub fn backward_cube(
    pos: CubeTensor,
    tri: CubeTensor,
    rast: CubeTensor,
    grad_rast: CubeTensor,
    d: Dims,
) -> CubeTensor {
    backward_cube_in(BACKWARD.workgroup, pos, tri, rast, grad_rast, d)
}

/// [`backward_cube`] with workgroups of another shape (the result must not change).
pub(crate) fn backward_cube_in(
    workgroup: (u32, u32),
    pos: CubeTensor,
    tri: CubeTensor,
    rast: CubeTensor,
    grad_rast: CubeTensor,
    d: Dims,
) -> CubeTensor {
    // A pixel sends to each corner of its triangle once (up to three times to one vertex of a
    // degenerate triangle).
    let grad = Accumulator::new(
        &pos,
        Shape::new([d.batch, d.vertices, 4]),
        3 * d.batch * d.height * d.width,
    );
    let kernel = BACKWARD.with_workgroup(workgroup);
    for pass in [scatter::MEASURE, scatter::ACCUMULATE] {
        Launch::new(kernel.in_pass(pass), &pos)
            .arg(&pos)
            .arg(&tri)
            .arg(&rast)
            .arg(&grad_rast)
            .arg(&grad.words)
            .run(&d.params(), pixel_groups(&d, workgroup));
    }
    grad.decode()
}

pub(super) fn pixel_groups(d: &Dims, workgroup: (u32, u32)) -> (u32, u32, u32) {
    (
        kernel::groups(d.width, workgroup.0),
        kernel::groups(d.height, workgroup.1),
        d.batch as u32,
    )
}
