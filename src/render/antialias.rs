//! `antialias`: glue for `shaders/antialias.wgsl` and its CPU reference (the algorithm is
//! described at the top of the shader).

use burn::backend::wgpu::CubeTensor;

use super::kernel::{self, Launch, WgslKernel, kernel_params};
use super::rasterize::pixel_groups;
use super::scatter::{self, Accumulator};

const SHADER: &str = include_str!("../../shaders/antialias.wgsl");
const FORWARD: WgslKernel<AntialiasParams> = WgslKernel::new(SHADER, "antialias_forward", (8, 8));
const BACKWARD_COLOR: WgslKernel<AntialiasParams> =
    WgslKernel::new(SHADER, "antialias_backward_color", (8, 8));
const BACKWARD_POSITION: WgslKernel<AntialiasParams> =
    WgslKernel::new(SHADER, "antialias_backward_position", (8, 8)).with_library(scatter::LIBRARY);

const W_MIN: f32 = 1e-6;
const CROSSING_SLACK: f32 = 0.0625;

kernel_params! {
    /// [`Dims`] as `shaders/antialias.wgsl` reads them.
    pub(crate) struct AntialiasParams {
        batch: u32,
        vertices: u32,
        triangles: u32,
        height: u32,
        width: u32,
        channels: u32,
    }
}

/// Sizes of one antialiasing call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dims {
    pub batch: usize,
    pub vertices: usize,
    pub triangles: usize,
    pub height: usize,
    pub width: usize,
    pub channels: usize,
}

impl Dims {
    fn params(&self) -> AntialiasParams {
        AntialiasParams {
            batch: self.batch as u32,
            vertices: self.vertices as u32,
            triangles: self.triangles as u32,
            height: self.height as u32,
            width: self.width as u32,
            channels: self.channels as u32,
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
}

/// Inputs shared by the three passes.
pub struct Scene<'a> {
    pub color: &'a [f32],
    pub rast: &'a [f32],
    pub pos: &'a [f32],
    pub tris: &'a [[u32; 3]],
    pub wings: &'a [[i32; 3]],
    pub dims: Dims,
}

/// One silhouette-crossing pixel pair.
#[derive(Debug, Clone, Copy)]
struct Pair {
    target: usize,
    source: usize,
    weight: f32,
    dweight: f32,
    va: u32,
    vb: u32,
    dt_da: [f32; 2],
    dt_db: [f32; 2],
    sigma: f32,
    down: bool,
}

impl Scene<'_> {
    fn vertex(&self, b: usize, v: u32) -> [f32; 4] {
        let o = (b * self.dims.vertices + v as usize) * 4;
        [
            self.pos[o],
            self.pos[o + 1],
            self.pos[o + 2],
            self.pos[o + 3],
        ]
    }

    fn to_pixel(&self, p: [f32; 4]) -> [f32; 2] {
        [
            (p[0] / p[3] + 1.0) * 0.5 * self.dims.width as f32,
            (1.0 - p[1] / p[3]) * 0.5 * self.dims.height as f32,
        ]
    }

    fn triangle_id(&self, pixel: usize) -> usize {
        let id = self.rast[pixel * 4 + 3];
        if id >= 1.0 && id <= self.dims.triangles as f32 {
            id as usize
        } else {
            0
        }
    }

    fn pair(&self, b: usize, x: usize, y: usize, down: bool) -> Option<Pair> {
        let d = &self.dims;
        let (nx, ny) = if down { (x, y + 1) } else { (x + 1, y) };
        if nx >= d.width || ny >= d.height {
            return None;
        }
        let p0 = (b * d.height + y) * d.width + x;
        let p1 = (b * d.height + ny) * d.width + nx;
        let (id0, id1) = (self.triangle_id(p0), self.triangle_id(p1));
        if id0 == id1 {
            return None;
        }
        let use_first = if id0 != 0 && id1 != 0 {
            self.rast[p0 * 4 + 2] <= self.rast[p1 * 4 + 2]
        } else {
            id1 == 0
        };
        let (t, ref_pixel, other_pixel, centre, sigma) = if use_first {
            (id0 - 1, p0, p1, [x as f32 + 0.5, y as f32 + 0.5], 1.0)
        } else {
            (id1 - 1, p1, p0, [nx as f32 + 0.5, ny as f32 + 0.5], -1.0)
        };
        let to_local = |q: [f32; 2]| {
            let dq = [q[0] - centre[0], q[1] - centre[1]];
            if down {
                [sigma * dq[1], dq[0]]
            } else {
                [sigma * dq[0], dq[1]]
            }
        };
        let idx = self.tris[t];
        let mut local = [[0f32; 2]; 3];
        for i in 0..3 {
            let p = self.vertex(b, idx[i]);
            if !(p[3] > W_MIN) {
                return None;
            }
            local[i] = to_local(self.to_pixel(p));
        }
        let mut best: Option<usize> = None;
        let mut best_x = -3.0e38f32;
        for m in 0..3 {
            let a = local[(m + 1) % 3];
            let c = local[(m + 2) % 3];
            if (a[1] < 0.0) == (c[1] < 0.0) {
                continue;
            }
            let xc = (a[0] * c[1] - c[0] * a[1]) / (c[1] - a[1]);
            if xc > best_x {
                best_x = xc;
                best = Some(m);
            }
        }
        let m = best?;
        let (ia, ib) = ((m + 1) % 3, (m + 2) % 3);
        let (a, c) = (local[ia], local[ib]);
        if (c[1] - a[1]).abs() < (c[0] - a[0]).abs() {
            return None;
        }
        let opposite = self.wings[t][m];
        if opposite >= 0 {
            let po = self.vertex(b, opposite as u32);
            if po[3] > W_MIN {
                let o = to_local(self.to_pixel(po));
                let cross = |u: [f32; 2], v: [f32; 2]| u[0] * v[1] - u[1] * v[0];
                let edge = [c[0] - a[0], c[1] - a[1]];
                let own = cross(edge, [local[m][0] - a[0], local[m][1] - a[1]]);
                let other = cross(edge, [o[0] - a[0], o[1] - a[1]]);
                if !(own * other > 0.0) {
                    return None;
                }
            }
        }
        let xc = best_x;
        if !(xc > -CROSSING_SLACK && xc < 1.0 + CROSSING_SLACK) {
            return None;
        }
        let tc = xc.clamp(0.0, 1.0);
        let weight = (0.5 - tc).abs();
        let (target, source, mut dweight) = if tc < 0.5 {
            (ref_pixel, other_pixel, -1.0)
        } else {
            (other_pixel, ref_pixel, 1.0)
        };
        if !(0.0..=1.0).contains(&xc) {
            dweight = 0.0;
        }
        let dd = c[1] - a[1];
        Some(Pair {
            target,
            source,
            weight,
            dweight,
            va: idx[ia],
            vb: idx[ib],
            dt_da: [c[1] / dd, (xc - c[0]) / dd],
            dt_db: [-a[1] / dd, (a[0] - xc) / dd],
            sigma,
            down,
        })
    }

    /// Every active pair once, keyed by its left/top pixel.
    fn pairs(&self) -> Vec<Pair> {
        let d = &self.dims;
        let mut pairs = Vec::new();
        for b in 0..d.batch {
            for y in 0..d.height {
                for x in 0..d.width {
                    pairs.extend(self.pair(b, x, y, false));
                    pairs.extend(self.pair(b, x, y, true));
                }
            }
        }
        pairs
    }
}

/// CPU reference of the forward pass.
pub fn forward_cpu(scene: &Scene) -> Vec<f32> {
    let c = scene.dims.channels;
    let mut out = scene.color.to_vec();
    for pair in scene.pairs() {
        for ch in 0..c {
            out[pair.target * c + ch] += pair.weight
                * (scene.color[pair.source * c + ch] - scene.color[pair.target * c + ch]);
        }
    }
    out
}

/// CPU reference of the backward pass: (d colour, d positions).
pub fn backward_cpu(scene: &Scene, grad_out: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let d = &scene.dims;
    let c = d.channels;
    let mut grad_color = grad_out.to_vec();
    // Sums in f64: the reference the kernels' fixed-point sums are held to.
    let mut grad_pos = vec![0f64; scene.pos.len()];
    for pair in scene.pairs() {
        let (tg, sc) = (pair.target * c, pair.source * c);
        let mut g_t = 0f32;
        for ch in 0..c {
            let g = grad_out[tg + ch];
            grad_color[tg + ch] -= pair.weight * g;
            grad_color[sc + ch] += pair.weight * g;
            g_t += g * (scene.color[sc + ch] - scene.color[tg + ch]);
        }
        g_t *= pair.dweight;
        if g_t == 0.0 {
            continue;
        }
        let b = pair.target / (d.height * d.width);
        for (v, dt) in [(pair.va, pair.dt_da), (pair.vb, pair.dt_db)] {
            let gl = [g_t * dt[0], g_t * dt[1]];
            let gp = if pair.down {
                [gl[1], pair.sigma * gl[0]]
            } else {
                [pair.sigma * gl[0], gl[1]]
            };
            let p = scene.vertex(b, v);
            let (sx, sy) = (0.5 * d.width as f32, 0.5 * d.height as f32);
            let inv_w = 1.0 / p[3];
            let o = (b * d.vertices + v as usize) * 4;
            grad_pos[o] += f64::from(gp[0] * sx * inv_w);
            grad_pos[o + 1] += f64::from(-gp[1] * sy * inv_w);
            grad_pos[o + 3] += f64::from((-gp[0] * sx * p[0] + gp[1] * sy * p[1]) * inv_w * inv_w);
        }
    }
    (grad_color, super::scatter::to_f32(grad_pos))
}

pub struct CubeScene {
    pub color: CubeTensor,
    pub rast: CubeTensor,
    pub pos: CubeTensor,
    pub tri: CubeTensor,
    pub wings: CubeTensor,
    pub dims: Dims,
}

impl CubeScene {
    fn launch(&self, kernel: WgslKernel<AntialiasParams>) -> Launch<'_, AntialiasParams> {
        Launch::new(kernel, &self.color)
            .arg(&self.rast)
            .arg(&self.pos)
            .arg(&self.tri)
            .arg(&self.wings)
    }
}

pub fn forward_cube(scene: &CubeScene) -> CubeTensor {
    let out = kernel::empty(&scene.color, scene.color.meta.shape().clone());
    let groups = pixel_groups(&scene.dims.raster(), FORWARD.workgroup);
    scene
        .launch(FORWARD)
        .arg(&scene.color)
        .arg(&out)
        .run(&scene.dims.params(), groups);
    out
}

/// (d color, d positions); d positions is an empty tensor (shape `[0]`) and nothing is
/// scattered when `position_grad` is false.
pub fn backward_cube(
    scene: &CubeScene,
    grad_out: CubeTensor,
    position_grad: bool,
) -> (CubeTensor, CubeTensor) {
    backward_cube_in(BACKWARD_POSITION.workgroup, scene, grad_out, position_grad)
}

/// [`backward_cube`] with workgroups of another shape (the result must not change).
pub(crate) fn backward_cube_in(
    workgroup: (u32, u32),
    scene: &CubeScene,
    grad_out: CubeTensor,
    position_grad: bool,
) -> (CubeTensor, CubeTensor) {
    let d = scene.dims;
    let params = d.params();
    let grad_color = kernel::empty(&scene.color, scene.color.meta.shape().clone());
    scene
        .launch(BACKWARD_COLOR.with_workgroup(workgroup))
        .arg(&grad_out)
        .arg(&grad_color)
        .run(&params, pixel_groups(&d.raster(), workgroup));
    if !position_grad {
        return (grad_color, kernel::empty(&scene.color, [0].into()));
    }
    // A pixel sends to the two vertices of each of its two pairs' edges; the scratch holds
    // each pixel's count of sending pairs between the passes.
    let pixels = d.batch * d.height * d.width;
    let grad_pos = Accumulator::with_scratch(
        &scene.color,
        scene.pos.meta.shape().clone(),
        4 * pixels,
        pixels,
    );
    let kernel = BACKWARD_POSITION.with_workgroup(workgroup);
    for pass in [scatter::MEASURE, scatter::ACCUMULATE] {
        scene
            .launch(kernel.in_pass(pass))
            .arg(&scene.color)
            .arg(&grad_out)
            .arg(&grad_pos.words)
            .run(&params, pixel_groups(&d.raster(), workgroup));
    }
    (grad_color, grad_pos.decode())
}
