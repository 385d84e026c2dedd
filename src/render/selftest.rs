//! Renderer checks that run unchanged on every backend, the browser included: the page's GPU
//! self-test, the wasm tests and the native tests call these.
//!
//! [`compare_with_reference`] renders a scene with the device's kernels and compares it with
//! the plain-Rust reference; [`recover_pose`] optimises a rotation and translation from a
//! target image alone through rasterize, interpolate and antialias.

use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use super::{Topology, camera, scenes};
use crate::device::read_floats;
use crate::error::Result;
use crate::util::clock;

/// Outcome of [`compare_with_reference`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReferenceReport {
    pub width: usize,
    pub height: usize,
    pub triangles: usize,
    pub covered_pixels: usize,
    /// Pixels whose triangle id differs from the reference (expected 0).
    pub id_mismatches: usize,
    /// Largest difference of the interpolated and antialiased colours.
    pub max_color_error: f32,
    /// Largest difference of the attribute gradient (interpolate backward).
    pub max_gradient_error: f32,
    pub milliseconds: f64,
}

impl ReferenceReport {
    pub fn passed(&self) -> bool {
        self.id_mismatches == 0
            && self.max_color_error < 1e-3
            && self.max_gradient_error < 1e-3
            && self.covered_pixels > 0
    }
}

fn sphere_clip(
    mesh: &scenes::Mesh,
    yaw: f32,
    width: usize,
    height: usize,
    device: &Device,
) -> Tensor<3> {
    let v = mesh.positions.len();
    let points = Tensor::<3>::from_data(TensorData::new(mesh.positions_flat(), [1, v, 3]), device);
    let rotation = camera::euler_rotation(Tensor::from_data(
        TensorData::new(vec![0.3, yaw, 0.1], [1, 3]),
        device,
    ));
    let translation = Tensor::from_data(TensorData::new(vec![0.05, -0.02, -3.0], [1, 3]), device);
    let focal = Tensor::from_data(TensorData::new(vec![1.6 * width as f32], [1, 1]), device);
    camera::project(
        camera::transform(points, rotation, translation),
        focal,
        width,
        height,
        camera::DepthRange {
            near: 1.0,
            far: 10.0,
        },
    )
}

/// Renders a coloured sphere on `device` and compares ids, colours and one gradient with the
/// CPU reference. `device` must support autodiff (call `.autodiff()` on it).
pub async fn compare_with_reference(
    device: &Device,
    width: usize,
    height: usize,
) -> Result<ReferenceReport> {
    let start = clock::now_ms();
    let mesh = scenes::sphere(12, 18, 1.0);
    let v = mesh.positions.len();
    let topology = Topology::new(mesh.triangles.clone(), v, device)?;
    let clip = sphere_clip(&mesh, 0.4, width, height, device).detach();
    let colors = Tensor::<3>::from_data(TensorData::new(mesh.colors_flat(), [1, v, 3]), device)
        .require_grad();
    let rast = super::rasterize(clip.clone(), &topology, height, width)?;
    let color = super::interpolate(colors.clone(), rast.clone(), &topology)?;
    let image = super::antialias(color, rast.clone(), clip.clone(), &topology)?;
    let weights: Vec<f32> = (0..width * height * 3)
        .map(|i| ((i * 7919) % 13) as f32 / 13.0 - 0.4)
        .collect();
    let loss = (image.clone()
        * Tensor::<4>::from_data(
            TensorData::new(weights.clone(), [1, height, width, 3]),
            device,
        ))
    .sum();
    let grads = loss.backward();
    let grad = colors
        .grad(&grads)
        .ok_or_else(|| crate::Error::Execution("no gradient recorded".into()))?;

    let (clip_values, _) = read_floats(clip).await?;
    let (rast_values, _) = read_floats(rast).await?;
    let (image_values, _) = read_floats(image).await?;
    let (grad_values, _) = read_floats(grad).await?;

    let d = super::rasterize::Dims {
        batch: 1,
        vertices: v,
        triangles: mesh.triangles.len(),
        height,
        width,
    };
    let reference_rast = super::rasterize::forward_cpu(&clip_values, &mesh.triangles, d);
    let di = super::interpolate::Dims {
        batch: 1,
        vertices: v,
        triangles: d.triangles,
        height,
        width,
        channels: 3,
        attr_batched: false,
    };
    let reference_color =
        super::interpolate::forward_cpu(&mesh.colors_flat(), &reference_rast, &mesh.triangles, di);
    let scene = super::antialias::Scene {
        color: &reference_color,
        rast: &reference_rast,
        pos: &clip_values,
        tris: &mesh.triangles,
        wings: topology.wing_list(),
        dims: super::antialias::Dims {
            batch: 1,
            vertices: v,
            triangles: d.triangles,
            height,
            width,
            channels: 3,
        },
    };
    let reference_image = super::antialias::forward_cpu(&scene);
    let (grad_color, _) = super::antialias::backward_cpu(&scene, &weights);
    let (reference_grad, _) = super::interpolate::backward_cpu(
        &mesh.colors_flat(),
        &reference_rast,
        &mesh.triangles,
        &grad_color,
        di,
    );

    let ids = |r: &[f32]| r.chunks(4).map(|p| p[3]).collect::<Vec<_>>();
    let (got, want) = (ids(&rast_values), ids(&reference_rast));
    let max_diff = |a: &[f32], b: &[f32]| {
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0f32, f32::max)
    };
    Ok(ReferenceReport {
        width,
        height,
        triangles: d.triangles,
        covered_pixels: want.iter().filter(|&&id| id > 0.0).count(),
        id_mismatches: got.iter().zip(&want).filter(|(a, b)| a != b).count(),
        max_color_error: max_diff(&image_values, &reference_image),
        max_gradient_error: max_diff(&grad_values, &reference_grad),
        milliseconds: clock::now_ms() - start,
    })
}

/// Outcome of [`recover_pose`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PoseReport {
    pub iterations: usize,
    pub losses: Vec<f32>,
    /// |parameters - truth| at the start and at the end (radians and scene units together).
    pub initial_error: f32,
    pub final_error: f32,
    pub milliseconds: f64,
}

impl PoseReport {
    pub fn converged(&self) -> bool {
        let (first, last) = (
            self.losses[0],
            *self.losses.last().unwrap_or(&f32::INFINITY),
        );
        self.final_error < 0.25 * self.initial_error && last < 0.1 * first
    }
}

/// Recovers a sphere's rotation (3 angles) and translation from a rendered target image by
/// Adam on the pixel loss through the four ops; `device` must support autodiff.
pub async fn recover_pose(device: &Device, size: usize, iterations: usize) -> Result<PoseReport> {
    let start = clock::now_ms();
    let mesh = scenes::sphere(10, 16, 1.0);
    let v = mesh.positions.len();
    let topology = Topology::new(mesh.triangles.clone(), v, device)?;
    let points = Tensor::<3>::from_data(TensorData::new(mesh.positions_flat(), [1, v, 3]), device);
    let colors = Tensor::<3>::from_data(TensorData::new(mesh.colors_flat(), [1, v, 3]), device);
    let focal = Tensor::<2>::from_data(TensorData::new(vec![1.4 * size as f32], [1, 1]), device);
    let depth = camera::DepthRange {
        near: 0.5,
        far: 10.0,
    };
    let render = |params: Tensor<1>| -> Result<Tensor<4>> {
        let angles = params.clone().slice([0..3]).reshape([1, 3]);
        let translation = params.slice([3..6]).reshape([1, 3]);
        let clip = camera::project(
            camera::transform(points.clone(), camera::euler_rotation(angles), translation),
            focal.clone(),
            size,
            size,
            depth,
        );
        let rast = super::rasterize(clip.clone(), &topology, size, size)?;
        let color = super::interpolate(colors.clone(), rast.clone(), &topology)?;
        Ok(super::antialias(color, rast, clip, &topology)?)
    };
    let truth = [0.2f32, -0.3, 0.1, 0.1, -0.05, -3.2];
    let initial = [0.05f32, -0.1, 0.0, -0.05, 0.08, -3.45];
    let target = render(Tensor::from_data(
        TensorData::new(truth.to_vec(), [6]),
        device,
    ))?
    .detach();
    let mut params = initial;
    let (mut m, mut s) = ([0f32; 6], [0f32; 6]);
    let (lr, beta1, beta2) = (0.02f32, 0.9f32, 0.999f32);
    let mut losses = Vec::with_capacity(iterations);
    for step in 1..=iterations {
        let p =
            Tensor::<1>::from_data(TensorData::new(params.to_vec(), [6]), device).require_grad();
        let loss = (render(p.clone())? - target.clone()).powi_scalar(2).mean();
        let grads = loss.clone().backward();
        let grad = p
            .grad(&grads)
            .ok_or_else(|| crate::Error::Execution("no gradient recorded".into()))?;
        let (g, _) = read_floats(grad).await?;
        let (l, _) = read_floats(loss.detach()).await?;
        losses.push(l[0]);
        for i in 0..6 {
            m[i] = beta1 * m[i] + (1.0 - beta1) * g[i];
            s[i] = beta2 * s[i] + (1.0 - beta2) * g[i] * g[i];
            let m_hat = m[i] / (1.0 - beta1.powi(step as i32));
            let s_hat = s[i] / (1.0 - beta2.powi(step as i32));
            params[i] -= lr * m_hat / (s_hat.sqrt() + 1e-8);
        }
    }
    let distance = |p: &[f32; 6]| {
        p.iter()
            .zip(&truth)
            .map(|(a, b)| (a - b).powi(2))
            .sum::<f32>()
            .sqrt()
    };
    Ok(PoseReport {
        iterations,
        losses,
        initial_error: distance(&initial),
        final_error: distance(&params),
        milliseconds: clock::now_ms() - start,
    })
}
