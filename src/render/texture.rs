//! `texture`: glue for `shaders/texture.wgsl` and its CPU reference.

use burn::backend::wgpu::CubeTensor;
use burn::tensor::Shape;

use super::kernel::{self, Launch, WgslKernel, kernel_params};
use super::scatter;

const SHADER: &str = include_str!("../../shaders/texture.wgsl");
const FORWARD: WgslKernel<TextureParams> = WgslKernel::new(SHADER, "texture_forward", (8, 8));
/// Channels one backward launch scatters (`CHUNK` in the shader: its workgroup memory holds
/// that many channels' contributions).
const SCATTERED_CHANNELS: usize = 3;
const BACKWARD: WgslKernel<TextureParams> =
    WgslKernel::new(SHADER, "texture_backward", (8, 8)).with_library(scatter::LIBRARY);

kernel_params! {
    /// [`Dims`] as `shaders/texture.wgsl` reads them.
    pub(crate) struct TextureParams {
        batch: u32,
        height: u32,
        width: u32,
        channels: u32,
        map_height: u32,
        map_width: u32,
        /// 1 when the map has one layer per image, 0 when one layer is shared.
        map_batched: u32,
        /// 1 to wrap coordinates around, 0 to clamp them to the edge texels.
        wrap: u32,
        /// Backward only: the first channel this launch scatters (launches take up to
        /// `SCATTERED_CHANNELS` channels each).
        channel_offset: u32,
    }
}

/// Sizes of one sampling call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dims {
    pub batch: usize,
    pub height: usize,
    pub width: usize,
    pub channels: usize,
    pub map_height: usize,
    pub map_width: usize,
    /// Whether the map has one layer per image (else one shared layer).
    pub map_batched: bool,
    pub wrap: bool,
}

impl Dims {
    fn params(&self) -> TextureParams {
        TextureParams {
            batch: self.batch as u32,
            height: self.height as u32,
            width: self.width as u32,
            channels: self.channels as u32,
            map_height: self.map_height as u32,
            map_width: self.map_width as u32,
            map_batched: self.map_batched.into(),
            wrap: self.wrap.into(),
            channel_offset: 0,
        }
    }

    fn groups(&self, workgroup: (u32, u32)) -> (u32, u32, u32) {
        (
            kernel::groups(self.width, workgroup.0),
            kernel::groups(self.height, workgroup.1),
            self.batch as u32,
        )
    }
}

fn texel(i: i64, n: usize, wrap: bool) -> usize {
    let n = n as i64;
    if wrap {
        i.rem_euclid(n) as usize
    } else {
        i.clamp(0, n - 1) as usize
    }
}

/// The four texels (flat offsets of their first channel) and the bilinear fractions.
fn footprint(s: f32, t: f32, b: usize, d: &Dims) -> ([usize; 4], f32, f32) {
    let x = (s * d.map_width as f32 - 0.5).clamp(-1.0e6, 1.0e6);
    let y = (t * d.map_height as f32 - 0.5).clamp(-1.0e6, 1.0e6);
    let (xf, yf) = (x.floor(), y.floor());
    let (xi, yi) = (xf as i64, yf as i64);
    let x0 = texel(xi, d.map_width, d.wrap);
    let x1 = texel(xi + 1, d.map_width, d.wrap);
    let y0 = texel(yi, d.map_height, d.wrap);
    let y1 = texel(yi + 1, d.map_height, d.wrap);
    let base = if d.map_batched { b } else { 0 } * d.map_height * d.map_width;
    let at = |y: usize, x: usize| (base + y * d.map_width + x) * d.channels;
    (
        [at(y0, x0), at(y0, x1), at(y1, x0), at(y1, x1)],
        x - xf,
        y - yf,
    )
}

fn lerp(a: f32, b: f32, t: f32) -> f32 {
    // WGSL's mix(a, b, t) = a * (1 - t) + b * t.
    a * (1.0 - t) + b * t
}

/// CPU reference of the forward pass: `[B, H, W, C]`, flattened.
pub fn forward_cpu(map: &[f32], uv: &[f32], d: Dims) -> Vec<f32> {
    let c = d.channels;
    let mut out = vec![0f32; d.batch * d.height * d.width * c];
    for b in 0..d.batch {
        for p in b * d.height * d.width..(b + 1) * d.height * d.width {
            let (s, t) = (uv[p * 2], uv[p * 2 + 1]);
            if !(s.is_finite() && t.is_finite()) {
                continue;
            }
            let ([t00, t01, t10, t11], fx, fy) = footprint(s, t, b, &d);
            for ch in 0..c {
                let top = lerp(map[t00 + ch], map[t01 + ch], fx);
                let bottom = lerp(map[t10 + ch], map[t11 + ch], fx);
                out[p * c + ch] = lerp(top, bottom, fy);
            }
        }
    }
    out
}

/// CPU reference of the backward pass: (d map, d uv).
pub fn backward_cpu(map: &[f32], uv: &[f32], grad_out: &[f32], d: Dims) -> (Vec<f32>, Vec<f32>) {
    let c = d.channels;
    // Sums in f64: the reference the kernels' fixed-point sums are held to.
    let mut grad_map = vec![0f64; map.len()];
    let mut grad_uv = vec![0f32; uv.len()];
    for b in 0..d.batch {
        for p in b * d.height * d.width..(b + 1) * d.height * d.width {
            let (s, t) = (uv[p * 2], uv[p * 2 + 1]);
            if !(s.is_finite() && t.is_finite()) {
                continue;
            }
            let ([t00, t01, t10, t11], fx, fy) = footprint(s, t, b, &d);
            let (mut gx, mut gy) = (0f32, 0f32);
            for ch in 0..c {
                let g = grad_out[p * c + ch];
                let (c00, c01, c10, c11) =
                    (map[t00 + ch], map[t01 + ch], map[t10 + ch], map[t11 + ch]);
                gx += g * ((1.0 - fy) * (c01 - c00) + fy * (c11 - c10));
                gy += g * (lerp(c10, c11, fx) - lerp(c00, c01, fx));
                grad_map[t00 + ch] += f64::from(g * ((1.0 - fx) * (1.0 - fy)));
                grad_map[t01 + ch] += f64::from(g * (fx * (1.0 - fy)));
                grad_map[t10 + ch] += f64::from(g * ((1.0 - fx) * fy));
                grad_map[t11 + ch] += f64::from(g * (fx * fy));
            }
            grad_uv[p * 2] = gx * d.map_width as f32;
            grad_uv[p * 2 + 1] = gy * d.map_height as f32;
        }
    }
    (super::scatter::to_f32(grad_map), grad_uv)
}

pub fn forward_cube(map: CubeTensor, uv: CubeTensor, d: Dims) -> CubeTensor {
    let out = kernel::empty(&map, Shape::new([d.batch, d.height, d.width, d.channels]));
    Launch::new(FORWARD, &map)
        .arg(&map)
        .arg(&uv)
        .arg(&out)
        .run(&d.params(), d.groups(FORWARD.workgroup));
    out
}

/// (d map, d uv); d map is an empty tensor (shape `[0]`) and nothing is scattered when
/// `map_grad` is false.
pub fn backward_cube(
    map: CubeTensor,
    uv: CubeTensor,
    grad_out: CubeTensor,
    d: Dims,
    map_grad: bool,
) -> (CubeTensor, CubeTensor) {
    backward_cube_in(BACKWARD.workgroup, map, uv, grad_out, d, map_grad)
}

/// [`backward_cube`] with workgroups of another shape (the result must not change).
pub(crate) fn backward_cube_in(
    workgroup: (u32, u32),
    map: CubeTensor,
    uv: CubeTensor,
    grad_out: CubeTensor,
    d: Dims,
    map_grad: bool,
) -> (CubeTensor, CubeTensor) {
    let grad_uv = kernel::empty(&map, Shape::new([d.batch, d.height, d.width, 2]));
    // Every pixel of every image may send to a shared texel, up to four times (a footprint that
    // clamps or wraps onto itself).
    let grad_map = scatter::weighted(
        &map,
        map_grad.then(|| map.meta.shape().clone()),
        &grad_out,
        4 * d.batch * d.height * d.width,
        d.channels,
        SCATTERED_CHANNELS,
        |pass, offset, channels, accumulator| {
            let kernel = BACKWARD
                .with_workgroup(workgroup)
                .with_channels(channels as u32)
                .in_pass(pass);
            let params = TextureParams {
                channel_offset: offset as u32,
                ..d.params()
            };
            Launch::new(kernel, &map)
                .arg(&map)
                .arg(&uv)
                .arg(&grad_out)
                .arg(&grad_uv)
                .arg(&accumulator.words)
                .run(&params, d.groups(workgroup));
        },
    );
    (grad_map, grad_uv)
}
