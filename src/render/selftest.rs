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

/// One case of [`scatter_stress`] or [`compare_gradients_with_reference`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GradientCase {
    pub name: String,
    pub passed: bool,
    /// What was measured against what was expected.
    pub detail: String,
}

/// Outcome of [`scatter_stress`] and [`compare_gradients_with_reference`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GradientReport {
    pub cases: Vec<GradientCase>,
    pub milliseconds: f64,
}

impl GradientReport {
    pub fn passed(&self) -> bool {
        !self.cases.is_empty() && self.cases.iter().all(|c| c.passed)
    }

    fn check(&mut self, name: &str, passed: bool, detail: String) {
        self.cases.push(GradientCase {
            name: name.to_string(),
            passed,
            detail,
        });
    }
}

fn data<const D: usize>(values: Vec<f32>, dims: [usize; D], device: &Device) -> Tensor<D> {
    Tensor::from_data(TensorData::new(values, dims), device)
}

async fn gradient<const D: usize>(
    input: &Tensor<D>,
    grads: &burn::tensor::Gradients,
) -> Result<Vec<f32>> {
    let grad = input
        .grad(grads)
        .ok_or_else(|| crate::Error::Execution("no gradient recorded".into()))?;
    Ok(read_floats(grad).await?.0)
}

/// Largest |a - b| over two equally long slices (NaN if either holds one).
fn max_difference(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0f32, |m, d| {
            if d.is_nan() || m.is_nan() {
                f32::NAN
            } else {
                m.max(d)
            }
        })
}

fn largest(values: &[f32]) -> f32 {
    values.iter().fold(0.0f32, |m, v| m.max(v.abs()))
}

/// A triangle whose centroid is the image centre and which covers the whole image.
fn covering_triangle(device: &Device) -> Result<(Tensor<3>, Topology)> {
    let positions = vec![
        -4.0, -4.0, 0.0, 1.0, 8.0, -4.0, 0.0, 1.0, -4.0, 8.0, 0.0, 1.0,
    ];
    Ok((
        data(positions, [1, 3, 4], device),
        Topology::new(vec![[0, 1, 2]], 3, device)?,
    ))
}

/// Texture coordinates of the centre of texel (x, y) of a `side`² map.
fn texel_centre(x: usize, y: usize, side: usize) -> [f32; 2] {
    [
        (x as f32 + 0.5) / side as f32,
        (y as f32 + 0.5) / side as f32,
    ]
}

/// The contention cases of the gradient scatter with known answers: many pixels on one
/// address, a batch sharing its inputs, exact cancellation, extreme magnitudes side by side,
/// NaN propagation, and run-to-run bitwise equality. `device` must support autodiff.
pub async fn scatter_stress(device: &Device) -> Result<GradientReport> {
    let start = clock::now_ms();
    let mut report = GradientReport {
        cases: Vec::new(),
        milliseconds: 0.0,
    };
    let (side, pixels) = (32usize, 32 * 32);

    // Every pixel inside one triangle with unit output gradient: an attribute's gradient is the
    // sum of its barycentric over the pixels, N/3 for a triangle centred on the image (the
    // barycentric is affine and the pixel centres average to the centre).
    {
        let (clip, topology) = covering_triangle(device)?;
        let attributes = Tensor::<3>::ones([1, 3, 3], device).require_grad();
        let rast = super::rasterize(clip, &topology, side, side)?;
        let covered = read_floats(super::coverage(&rast).sum()).await?.0[0];
        let grads = super::interpolate(attributes.clone(), rast, &topology)?
            .sum()
            .backward();
        let got = gradient(&attributes, &grads).await?;
        let expected = pixels as f32 / 3.0;
        let error = got.iter().fold(0.0f32, |m, g| m.max((g - expected).abs()));
        report.check(
            "one triangle over the whole image",
            covered == pixels as f32 && error <= 1e-4 * expected,
            format!("{covered} of {pixels} pixels covered; attribute gradients {got:?}, expected {expected} each (error {error})"),
        );
    }

    // Every pixel on the centre of texel (0, 0) of a 2x2 map: that texel's gradient is exactly
    // the number of pixels, the others exactly zero.
    {
        let map = Tensor::<4>::ones([1, 2, 2, 3], device).require_grad();
        let uv = texel_centre(0, 0, 2).repeat(pixels);
        let uv = data(uv, [1, side, side, 2], device);
        let grads = super::texture(map.clone(), uv, super::Boundary::Clamp)?
            .sum()
            .backward();
        let got = gradient(&map, &grads).await?;
        let mut expected = vec![0.0f32; 12];
        expected[..3].fill(pixels as f32);
        report.check(
            "every pixel on one texel of a 2x2 map",
            got == expected,
            format!("texel gradients {got:?}, expected {expected:?} exactly"),
        );
    }

    // Attributes shared by a batch of 8 identical images: 8 times one image's gradient.
    {
        let mesh = scenes::sphere(8, 12, 1.0);
        let v = mesh.positions.len();
        let topology = Topology::new(mesh.triangles.clone(), v, device)?;
        let clip = sphere_clip(&mesh, 0.3, side, side, device).detach();
        let mut per_batch = Vec::new();
        for batch in [1, 8] {
            let colors = data(mesh.colors_flat(), [1, v, 3], device).require_grad();
            let rast = super::rasterize(clip.clone().repeat_dim(0, batch), &topology, side, side)?;
            let weights: Vec<f32> = (0..batch * pixels * 3)
                .map(|i| (((i % (pixels * 3)) * 7919) % 17) as f32 / 17.0 - 0.45)
                .collect();
            let grads = (super::interpolate(colors.clone(), rast, &topology)?
                * data(weights, [batch, side, side, 3], device))
            .sum()
            .backward();
            per_batch.push(gradient(&colors, &grads).await?);
        }
        let eight: Vec<f32> = per_batch[0].iter().map(|g| 8.0 * g).collect();
        let error = max_difference(&per_batch[1], &eight);
        let scale = largest(&eight);
        report.check(
            "attributes shared by a batch of 8",
            error <= 1e-5 * scale,
            format!("largest difference from 8x one image {error} (largest gradient {scale})"),
        );
    }

    // The same samples with opposite gradients in two images of a batch sharing one map:
    // every texel's contributions cancel, to exactly zero.
    {
        let map = data(
            (0..4 * 4 * 3).map(|i| i as f32 / 48.0).collect(),
            [1, 4, 4, 3],
            device,
        )
        .require_grad();
        let uv: Vec<f32> = (0..pixels * 2)
            .map(|i| ((i * 2654435761usize) % 1000) as f32 / 1000.0)
            .collect();
        let uv = data([uv.clone(), uv].concat(), [2, side, side, 2], device);
        let weights: Vec<f32> = (0..pixels * 3)
            .map(|i| ((i * 40503) % 1001) as f32 / 1001.0 - 0.5)
            .collect();
        let opposite: Vec<f32> = weights.iter().map(|w| -w).collect();
        let weights = data([weights, opposite].concat(), [2, side, side, 3], device);
        let grads = (super::texture(map.clone(), uv, super::Boundary::Wrap)? * weights)
            .sum()
            .backward();
        let got = gradient(&map, &grads).await?;
        report.check(
            "+x and -x cancelling",
            got.iter().all(|g| *g == 0.0),
            format!(
                "largest texel gradient {} (expected exactly 0)",
                largest(&got)
            ),
        );
    }

    // 1e30 and 1e-30 in one launch: the large one exact to f32 precision, the small one lost
    // below the launch's quantum but not turned into garbage, nothing overflows.
    {
        let map = Tensor::<4>::zeros([1, 2, 2, 1], device).require_grad();
        let uv = [texel_centre(0, 0, 2), texel_centre(1, 1, 2)].concat();
        let uv = data(uv, [1, 1, 2, 2], device);
        let weights = data(vec![1e30, 1e-30], [1, 1, 2, 1], device);
        let grads = (super::texture(map.clone(), uv, super::Boundary::Clamp)? * weights)
            .sum()
            .backward();
        let got = gradient(&map, &grads).await?;
        let large_ok = ((got[0] - 1e30) / 1e30).abs() <= 1e-6;
        // The quantum of this launch is below 1e30 * 2^-50 (four contributions per pixel).
        let small_ok = (got[3] - 1e-30).abs() <= 1e30 * 2f32.powi(-50);
        report.check(
            "1e30 beside 1e-30",
            large_ok && small_ok && got[1] == 0.0 && got[2] == 0.0,
            format!("texel gradients {got:?}, expected [1e30, 0, 0, 1e-30 within a quantum]"),
        );
    }

    // A NaN in the output gradient reaches the gradient of what that pixel read (all four
    // texels of its bilinear footprint, as NaN * 0 is NaN), and only that.
    {
        let map = Tensor::<4>::zeros([1, 4, 4, 1], device).require_grad();
        let uv = [texel_centre(0, 0, 4), texel_centre(3, 3, 4)].concat();
        let uv = data(uv, [1, 1, 2, 2], device);
        let weights = data(vec![f32::NAN, 1.0], [1, 1, 2, 1], device);
        let grads = (super::texture(map.clone(), uv, super::Boundary::Clamp)? * weights)
            .sum()
            .backward();
        let got = gradient(&map, &grads).await?;
        let texels_ok = got.iter().enumerate().all(|(i, g)| match i {
            0 | 1 | 4 | 5 => g.is_nan(),
            15 => *g == 1.0,
            _ => *g == 0.0,
        });
        let (clip, topology) = covering_triangle(device)?;
        let clip = clip.require_grad();
        let attributes = Tensor::<3>::ones([1, 3, 1], device).require_grad();
        let rast = super::rasterize(clip.clone(), &topology, 4, 4)?;
        let mut weights = vec![1.0f32; 16];
        weights[5] = f32::NAN;
        let grads = (super::interpolate(attributes.clone(), rast, &topology)?
            * data(weights, [1, 4, 4, 1], device))
        .sum()
        .backward();
        let attribute = gradient(&attributes, &grads).await?;
        let position = gradient(&clip, &grads).await?;
        report.check(
            "NaN in the output gradient",
            texels_ok
                && attribute.iter().all(|g| g.is_nan())
                && position.iter().any(|g| g.is_nan()),
            format!(
                "texel gradients {got:?} (expected NaN on texels 0, 1, 4, 5, 1 on texel 15, 0 \
                 elsewhere); attribute gradients \
                 {attribute:?} and position gradients {position:?} (expected NaN)"
            ),
        );
    }

    // Bitwise equal gradients run after run, through all four ops.
    {
        let mut runs = Vec::new();
        for _ in 0..2 {
            runs.push(four_op_gradients(device, 48, 40).await?);
        }
        let bits = |run: &Vec<Vec<f32>>| -> Vec<u32> {
            run.iter().flatten().map(|g| g.to_bits()).collect()
        };
        let equal = bits(&runs[0]) == bits(&runs[1]);
        let nonzero = runs[0].iter().all(|g| g.iter().any(|x| *x != 0.0));
        report.check(
            "two runs bitwise equal",
            equal && nonzero,
            format!(
                "positions, colours and map gradients {} (every one non-zero: {nonzero})",
                if equal { "bitwise equal" } else { "differ" }
            ),
        );
    }

    report.milliseconds = clock::now_ms() - start;
    Ok(report)
}

/// Gradients of a weighted sum of a textured, antialiased sphere with respect to its clip
/// positions, vertex colours (which also blend into the image) and texture map.
async fn four_op_gradients(device: &Device, width: usize, height: usize) -> Result<Vec<Vec<f32>>> {
    let mesh = scenes::sphere(12, 18, 1.0);
    let v = mesh.positions.len();
    let topology = Topology::new(mesh.triangles.clone(), v, device)?;
    let clip = sphere_clip(&mesh, 0.4, width, height, device)
        .detach()
        .require_grad();
    let colors = data(mesh.colors_flat(), [1, v, 3], device).require_grad();
    let map = data(
        (0..16 * 16 * 3)
            .map(|i| ((i * 37) % 101) as f32 / 101.0)
            .collect(),
        [1, 16, 16, 3],
        device,
    )
    .require_grad();
    let rast = super::rasterize(clip.clone(), &topology, height, width)?;
    let color = super::interpolate(colors.clone(), rast.clone(), &topology)?;
    let uv = color.clone().slice([0..1, 0..height, 0..width, 0..2]);
    let textured = super::texture(map.clone(), uv, super::Boundary::Wrap)? + color;
    let image = super::antialias(textured, rast, clip.clone(), &topology)?;
    let weights: Vec<f32> = (0..width * height * 3)
        .map(|i| ((i * 7919) % 13) as f32 / 13.0 - 0.4)
        .collect();
    let grads = (image * data(weights, [1, height, width, 3], device))
        .sum()
        .backward();
    Ok(vec![
        gradient(&clip, &grads).await?,
        gradient(&colors, &grads).await?,
        gradient(&map, &grads).await?,
    ])
}

/// Each op's backward on `device` against the CPU reference (f64 sums), fed with the
/// device's own forward outputs so that only the backward is compared. Tolerance: 1e-4 of
/// the largest reference gradient of each output (the fixed-point quantum is below 2^-40 of
/// it; the rest is f32 arithmetic in each contribution). `device` must support autodiff.
pub async fn compare_gradients_with_reference(
    device: &Device,
    width: usize,
    height: usize,
) -> Result<GradientReport> {
    let start = clock::now_ms();
    let mut report = GradientReport {
        cases: Vec::new(),
        milliseconds: 0.0,
    };
    let mesh = scenes::sphere(12, 18, 1.0);
    let v = mesh.positions.len();
    let t = mesh.triangles.len();
    let topology = Topology::new(mesh.triangles.clone(), v, device)?;
    let clip = sphere_clip(&mesh, 0.4, width, height, device).detach();
    let clip_values = read_floats(clip.clone()).await?.0;
    let weights = |channels: usize, seed: usize| -> Vec<f32> {
        (0..width * height * channels)
            .map(|i| (((i + seed) * 7919) % 13) as f32 / 13.0 - 0.4)
            .collect()
    };
    let mut compare = |name: &str, got: &[f32], want: &[f32]| {
        let error = max_difference(got, want);
        let scale = largest(want);
        report.check(
            name,
            got.len() == want.len() && error <= 1e-4 * scale && scale > 0.0,
            format!("largest difference {error}, largest reference gradient {scale}"),
        );
    };
    let rd = super::rasterize::Dims {
        batch: 1,
        vertices: v,
        triangles: t,
        height,
        width,
    };

    // rasterize
    let positions = clip.clone().require_grad();
    let rast = super::rasterize(positions.clone(), &topology, height, width)?;
    let rast_values = read_floats(rast.clone()).await?.0;
    let w4 = weights(4, 1);
    let grads = (rast * data(w4.clone(), [1, height, width, 4], device))
        .sum()
        .backward();
    let want = super::rasterize::backward_cpu(&clip_values, &mesh.triangles, &rast_values, &w4, rd);
    compare(
        "rasterize: positions",
        &gradient(&positions, &grads).await?,
        &want,
    );

    // interpolate
    let rast = data(rast_values.clone(), [1, height, width, 4], device);
    let colors = data(mesh.colors_flat(), [1, v, 3], device).require_grad();
    let rast_input = rast.clone().require_grad();
    let w3 = weights(3, 2);
    let grads = (super::interpolate(colors.clone(), rast_input.clone(), &topology)?
        * data(w3.clone(), [1, height, width, 3], device))
    .sum()
    .backward();
    let di = super::interpolate::Dims {
        batch: 1,
        vertices: v,
        triangles: t,
        height,
        width,
        channels: 3,
        attr_batched: false,
    };
    let (want_attr, want_rast) = super::interpolate::backward_cpu(
        &mesh.colors_flat(),
        &rast_values,
        &mesh.triangles,
        &w3,
        di,
    );
    compare(
        "interpolate: attributes",
        &gradient(&colors, &grads).await?,
        &want_attr,
    );
    compare(
        "interpolate: rast",
        &gradient(&rast_input, &grads).await?,
        &want_rast,
    );

    // texture
    let (mt, mw) = (16, 12);
    let map_values: Vec<f32> = (0..mt * mw * 3)
        .map(|i| ((i * 37) % 101) as f32 / 101.0)
        .collect();
    let uv_values: Vec<f32> = (0..width * height * 2)
        .map(|i| ((i * 2654435761usize) % 1400) as f32 / 1000.0 - 0.2)
        .collect();
    for (boundary, wrap) in [
        (super::Boundary::Clamp, false),
        (super::Boundary::Wrap, true),
    ] {
        let map = data(map_values.clone(), [1, mt, mw, 3], device).require_grad();
        let uv = data(uv_values.clone(), [1, height, width, 2], device).require_grad();
        let grads = (super::texture(map.clone(), uv.clone(), boundary)?
            * data(w3.clone(), [1, height, width, 3], device))
        .sum()
        .backward();
        let dt = super::texture::Dims {
            batch: 1,
            height,
            width,
            channels: 3,
            map_height: mt,
            map_width: mw,
            map_batched: false,
            wrap,
        };
        let (want_map, want_uv) = super::texture::backward_cpu(&map_values, &uv_values, &w3, dt);
        compare(
            &format!("texture {boundary:?}: map"),
            &gradient(&map, &grads).await?,
            &want_map,
        );
        compare(
            &format!("texture {boundary:?}: uv"),
            &gradient(&uv, &grads).await?,
            &want_uv,
        );
    }

    // antialias
    let color_values: Vec<f32> =
        super::interpolate::forward_cpu(&mesh.colors_flat(), &rast_values, &mesh.triangles, di);
    let color = data(color_values.clone(), [1, height, width, 3], device).require_grad();
    let positions = clip.clone().require_grad();
    let grads = (super::antialias(color.clone(), rast, positions.clone(), &topology)?
        * data(w3.clone(), [1, height, width, 3], device))
    .sum()
    .backward();
    let scene = super::antialias::Scene {
        color: &color_values,
        rast: &rast_values,
        pos: &clip_values,
        tris: &mesh.triangles,
        wings: topology.wing_list(),
        dims: super::antialias::Dims {
            batch: 1,
            vertices: v,
            triangles: t,
            height,
            width,
            channels: 3,
        },
    };
    let (want_color, want_pos) = super::antialias::backward_cpu(&scene, &w3);
    compare(
        "antialias: colour",
        &gradient(&color, &grads).await?,
        &want_color,
    );
    compare(
        "antialias: positions",
        &gradient(&positions, &grads).await?,
        &want_pos,
    );

    report.milliseconds = clock::now_ms() - start;
    Ok(report)
}
