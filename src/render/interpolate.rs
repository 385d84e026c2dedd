//! `interpolate`: glue for `shaders/interpolate.wgsl` and its CPU reference.

use burn::backend::wgpu::CubeTensor;
use burn::tensor::Shape;

use super::kernel::{self, Launch, WgslKernel, kernel_params};
use super::rasterize::pixel_groups;
use super::scatter;

const SHADER: &str = include_str!("../../shaders/interpolate.wgsl");
const FORWARD: WgslKernel<InterpolateParams> =
    WgslKernel::new(SHADER, "interpolate_forward", (8, 8));
/// Channels one backward launch scatters (`CHUNK` in the shader, a constant of each compiled
/// kernel, so that its loop over them unrolls).
const SCATTERED_CHANNELS: usize = 4;
const BACKWARD: WgslKernel<InterpolateParams> =
    WgslKernel::new(SHADER, "interpolate_backward", (8, 8)).with_library(scatter::LIBRARY);

kernel_params! {
    /// [`Dims`] as `shaders/interpolate.wgsl` reads them.
    pub(crate) struct InterpolateParams {
        batch: u32,
        vertices: u32,
        triangles: u32,
        height: u32,
        width: u32,
        channels: u32,
        /// 1 when attributes have one row per image, 0 when one row is shared.
        attr_batched: u32,
        /// Backward only: the first channel this launch scatters (launches take up to
        /// `SCATTERED_CHANNELS` channels each).
        channel_offset: u32,
    }
}

/// Sizes of one interpolation call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dims {
    pub batch: usize,
    pub vertices: usize,
    pub triangles: usize,
    pub height: usize,
    pub width: usize,
    pub channels: usize,
    /// Whether attributes have one row per image (else one shared row).
    pub attr_batched: bool,
}

impl Dims {
    fn params(&self) -> InterpolateParams {
        InterpolateParams {
            batch: self.batch as u32,
            vertices: self.vertices as u32,
            triangles: self.triangles as u32,
            height: self.height as u32,
            width: self.width as u32,
            channels: self.channels as u32,
            attr_batched: self.attr_batched.into(),
            channel_offset: 0,
        }
    }

    fn raster(&self) -> super::rasterize::Dims {
        super::rasterize::Dims {
            batch: self.batch,
            vertices: self.vertices,
            triangles: self.triangles,
            height: self.height,
            width: self.width,
        }
    }

    fn corners(&self, tris: &[[u32; 3]], b: usize, id: f32) -> Option<[usize; 3]> {
        if !(id >= 1.0 && id <= self.triangles as f32) {
            return None;
        }
        let ab = if self.attr_batched { b } else { 0 };
        Some(tris[id as usize - 1].map(|i| (ab * self.vertices + i as usize) * self.channels))
    }
}

/// CPU reference of the forward pass: `[B, H, W, C]`, flattened.
pub fn forward_cpu(attr: &[f32], rast: &[f32], tris: &[[u32; 3]], d: Dims) -> Vec<f32> {
    let c = d.channels;
    let mut out = vec![0f32; d.batch * d.height * d.width * c];
    for b in 0..d.batch {
        for p in b * d.height * d.width..(b + 1) * d.height * d.width {
            let Some([a0, a1, a2]) = d.corners(tris, b, rast[p * 4 + 3]) else {
                continue;
            };
            let (u, v) = (rast[p * 4], rast[p * 4 + 1]);
            let w = 1.0 - u - v;
            for ch in 0..c {
                out[p * c + ch] = u * attr[a0 + ch] + v * attr[a1 + ch] + w * attr[a2 + ch];
            }
        }
    }
    out
}

/// CPU reference of the backward pass: (d attributes, d rast).
pub fn backward_cpu(
    attr: &[f32],
    rast: &[f32],
    tris: &[[u32; 3]],
    grad_out: &[f32],
    d: Dims,
) -> (Vec<f32>, Vec<f32>) {
    let c = d.channels;
    // Sums in f64: the reference the kernels' fixed-point sums are held to.
    let mut grad_attr = vec![0f64; attr.len()];
    let mut grad_rast = vec![0f32; rast.len()];
    for b in 0..d.batch {
        for p in b * d.height * d.width..(b + 1) * d.height * d.width {
            let Some([a0, a1, a2]) = d.corners(tris, b, rast[p * 4 + 3]) else {
                continue;
            };
            let (u, v) = (rast[p * 4], rast[p * 4 + 1]);
            let w = 1.0 - u - v;
            let (mut du, mut dv) = (0f32, 0f32);
            for ch in 0..c {
                let g = grad_out[p * c + ch];
                du += g * (attr[a0 + ch] - attr[a2 + ch]);
                dv += g * (attr[a1 + ch] - attr[a2 + ch]);
                grad_attr[a0 + ch] += f64::from(g * u);
                grad_attr[a1 + ch] += f64::from(g * v);
                grad_attr[a2 + ch] += f64::from(g * w);
            }
            grad_rast[p * 4] = du;
            grad_rast[p * 4 + 1] = dv;
        }
    }
    (super::scatter::to_f32(grad_attr), grad_rast)
}

pub fn forward_cube(attr: CubeTensor, rast: CubeTensor, tri: CubeTensor, d: Dims) -> CubeTensor {
    let out = kernel::empty(&attr, Shape::new([d.batch, d.height, d.width, d.channels]));
    Launch::new(FORWARD, &attr)
        .arg(&attr)
        .arg(&rast)
        .arg(&tri)
        .arg(&out)
        .run(&d.params(), pixel_groups(&d.raster(), FORWARD.workgroup));
    out
}

/// (d attributes, d rast); d attributes is an empty tensor (shape `[0]`) and nothing is
/// scattered when `attr_grad` is false.
pub fn backward_cube(
    attr: CubeTensor,
    rast: CubeTensor,
    tri: CubeTensor,
    grad_out: CubeTensor,
    d: Dims,
    attr_grad: bool,
) -> (CubeTensor, CubeTensor) {
    backward_cube_in(BACKWARD.workgroup, attr, rast, tri, grad_out, d, attr_grad)
}

/// [`backward_cube`] with workgroups of another shape (the result must not change).
pub(crate) fn backward_cube_in(
    workgroup: (u32, u32),
    attr: CubeTensor,
    rast: CubeTensor,
    tri: CubeTensor,
    grad_out: CubeTensor,
    d: Dims,
    attr_grad: bool,
) -> (CubeTensor, CubeTensor) {
    let grad_rast = kernel::empty(&attr, Shape::new([d.batch, d.height, d.width, 4]));
    // Every pixel of every image may send to a shared attribute, up to three times (a
    // degenerate triangle).
    let grad_attr = scatter::weighted(
        &attr,
        attr_grad.then(|| attr.meta.shape().clone()),
        &grad_out,
        3 * d.batch * d.height * d.width,
        d.channels,
        SCATTERED_CHANNELS,
        |pass, offset, channels, accumulator| {
            let kernel = BACKWARD
                .with_workgroup(workgroup)
                .with_channels(channels as u32)
                .in_pass(pass);
            let params = InterpolateParams {
                channel_offset: offset as u32,
                ..d.params()
            };
            Launch::new(kernel, &attr)
                .arg(&attr)
                .arg(&rast)
                .arg(&tri)
                .arg(&grad_out)
                .arg(&grad_rast)
                .arg(&accumulator.words)
                .run(&params, pixel_groups(&d.raster(), workgroup));
        },
    );
    (grad_attr, grad_rast)
}
