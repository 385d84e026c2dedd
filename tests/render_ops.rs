//! The four render ops: WGSL kernels (wgpu, lavapipe in CI) against the CPU reference, and
//! every gradient against central finite differences.

use burn::tensor::{Device, Tensor, TensorData};
use ganfit::device::{cpu, gpu, read_floats_blocking};
use ganfit::render::{self, Boundary, Topology, scenes};
use ganfit::util::rng::SplitMix64;

fn gpu_device() -> Device {
    // A missing adapter must fail this tier, never skip it.
    let (device, info) = gpu().expect("the wgpu test tier needs an adapter (lavapipe in CI)");
    eprintln!("wgpu adapter: {info}");
    device
}

fn tensor<const D: usize>(values: &[f32], dims: [usize; D], device: &Device) -> Tensor<D> {
    Tensor::from_data(TensorData::new(values.to_vec(), dims), device)
}

fn read<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    read_floats_blocking(t).unwrap().0
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// Random triangles, two images with different positions, perspective w.
fn scene(batch: usize, seed: u64) -> (scenes::Mesh, Vec<f32>) {
    let mesh = scenes::random_triangles(24, seed);
    let mut pos = Vec::new();
    for b in 0..batch {
        pos.extend(mesh.clip_with_varying_w(seed + b as u64));
    }
    (mesh, pos)
}

const H: usize = 37;
const W: usize = 45;

#[test]
fn rasterize_matches_cpu_reference_exactly_on_ids() {
    let (mesh, pos) = scene(2, 7);
    let v = mesh.positions.len();
    let mut results = Vec::new();
    for device in [cpu(), gpu_device()] {
        let topo = Topology::new(mesh.triangles.clone(), v, &device).unwrap();
        let rast = render::rasterize(tensor(&pos, [2, v, 4], &device), &topo, H, W).unwrap();
        results.push(read(rast));
    }
    let (c, g) = (&results[0], &results[1]);
    let ids = |r: &Vec<f32>| r.chunks(4).map(|p| p[3]).collect::<Vec<_>>();
    assert_eq!(
        ids(c),
        ids(g),
        "triangle ids differ between the CPU reference and WGSL"
    );
    let covered = ids(c).iter().filter(|&&id| id > 0.0).count();
    assert!(
        covered > H * W / 2,
        "scene should cover most pixels, covered {covered}"
    );
    let err = max_abs_diff(c, g);
    assert!(err < 1e-4, "rast values differ by {err}");
}

#[test]
fn rasterize_is_watertight_on_a_jittered_grid() {
    // A jittered grid covering more than the screen: every pixel is covered, by exactly one
    // triangle in the reference, and the GPU finds the same triangles.
    let mesh = scenes::grid(9, 1.2, 0.0, 0.35, 3);
    let v = mesh.positions.len();
    let pos: Vec<f32> = mesh
        .positions
        .iter()
        .flat_map(|p| [p[0], p[1], p[2], 1.0])
        .collect();
    let d = render::rasterize::Dims {
        batch: 1,
        vertices: v,
        triangles: mesh.triangles.len(),
        height: 64,
        width: 64,
    };
    let counts = render::rasterize::coverage_counts(&pos, &mesh.triangles, d);
    assert!(
        counts.iter().all(|&c| c == 1),
        "coverage counts: min {:?} max {:?}",
        counts.iter().min(),
        counts.iter().max()
    );
    let device = gpu_device();
    let topo = Topology::new(mesh.triangles.clone(), v, &device).unwrap();
    let rast = read(render::rasterize(tensor(&pos, [1, v, 4], &device), &topo, 64, 64).unwrap());
    let reference = render::rasterize::forward_cpu(&pos, &mesh.triangles, d);
    assert!(
        rast.chunks(4).all(|p| p[3] > 0.0),
        "a pixel fell through the grid"
    );
    assert_eq!(
        rast.chunks(4).map(|p| p[3]).collect::<Vec<_>>(),
        reference.chunks(4).map(|p| p[3]).collect::<Vec<_>>()
    );
}

#[test]
fn interpolate_texture_antialias_match_cpu_reference() {
    let (mesh, pos) = scene(2, 11);
    let v = mesh.positions.len();
    let mut rng = SplitMix64::new(5);
    let map: Vec<f32> = (0..2 * 16 * 12 * 3).map(|_| rng.uniform()).collect();
    let mut outputs = Vec::new();
    for device in [cpu(), gpu_device()] {
        let topo = Topology::new(mesh.triangles.clone(), v, &device).unwrap();
        let clip = tensor(&pos, [2, v, 4], &device);
        let rast = render::rasterize(clip.clone(), &topo, H, W).unwrap();
        let colors = tensor(&mesh.colors_flat(), [1, v, 3], &device);
        let interpolated = render::interpolate(colors, rast.clone(), &topo).unwrap();
        let uv = interpolated.clone().slice([0..2, 0..H, 0..W, 0..2]) * 1.3 - 0.1;
        let sampled = render::texture(
            tensor(&map, [2, 16, 12, 3], &device),
            uv.clone(),
            Boundary::Clamp,
        )
        .unwrap();
        let wrapped =
            render::texture(tensor(&map, [2, 16, 12, 3], &device), uv, Boundary::Wrap).unwrap();
        let aa = render::antialias(interpolated.clone(), rast, clip, &topo).unwrap();
        outputs.push([read(interpolated), read(sampled), read(wrapped), read(aa)]);
    }
    for (i, name) in ["interpolate", "texture clamp", "texture wrap", "antialias"]
        .iter()
        .enumerate()
    {
        let err = max_abs_diff(&outputs[0][i], &outputs[1][i]);
        assert!(err < 1e-4, "{name}: WGSL and CPU reference differ by {err}");
    }
    let changed = outputs[0][3]
        .iter()
        .zip(&outputs[0][0])
        .filter(|(a, b)| (*a - *b).abs() > 1e-6)
        .count();
    assert!(changed > 10, "antialiasing changed only {changed} values");
}

/// d(sum(weights · f(x)))/dx by central differences, for every element of x.
fn finite_difference(x: &[f32], h: f32, f: impl Fn(&[f32]) -> f32) -> Vec<f32> {
    (0..x.len())
        .map(|i| {
            let mut plus = x.to_vec();
            let mut minus = x.to_vec();
            plus[i] += h;
            minus[i] -= h;
            (f(&plus) - f(&minus)) / (2.0 * h)
        })
        .collect()
}

fn weighted(values: &[f32], weights: &[f32]) -> f32 {
    values.iter().zip(weights).map(|(a, b)| a * b).sum()
}

fn assert_grad_close(name: &str, analytic: &[f32], numeric: &[f32], tol: f32) {
    let scale = numeric.iter().map(|v| v.abs()).fold(1e-3, f32::max);
    let err = max_abs_diff(analytic, numeric);
    assert!(
        err <= tol * scale,
        "{name}: max gradient error {err} (scale {scale}, tol {tol})\nanalytic {analytic:?}\nnumeric {numeric:?}"
    );
}

#[test]
fn gradients_match_finite_differences_on_both_backends() {
    // A few large triangles at low resolution, so that small position changes move barycentrics
    // without changing which triangle covers which pixel.
    let mesh = scenes::grid(2, 0.7, 0.1, 0.2, 9);
    let v = mesh.positions.len();
    let pos: Vec<f32> = mesh.clip_with_varying_w(4);
    let (h, w) = (12, 14);
    let mut rng = SplitMix64::new(1);
    let colors = mesh.colors_flat();
    let weights: Vec<f32> = (0..h * w * 3).map(|_| rng.range(-1.0, 1.0)).collect();
    let map: Vec<f32> = (0..6 * 5 * 3).map(|_| rng.uniform()).collect();

    for device in [cpu().autodiff(), gpu_device().autodiff()] {
        let topo = Topology::new(mesh.triangles.clone(), v, &device).unwrap();
        // Forward on the plain-Rust references, for the finite differences.
        let d = render::rasterize::Dims {
            batch: 1,
            vertices: v,
            triangles: mesh.triangles.len(),
            height: h,
            width: w,
        };
        let di = render::interpolate::Dims {
            batch: 1,
            vertices: v,
            triangles: d.triangles,
            height: h,
            width: w,
            channels: 3,
            attr_batched: false,
        };
        let shade = |p: &[f32], c: &[f32]| {
            let rast = render::rasterize::forward_cpu(p, &mesh.triangles, d);
            render::interpolate::forward_cpu(c, &rast, &mesh.triangles, di)
        };
        let ids = |p: &[f32]| {
            render::rasterize::forward_cpu(p, &mesh.triangles, d)
                .chunks(4)
                .map(|q| q[3])
                .collect::<Vec<_>>()
        };

        // rasterize + interpolate: gradients to positions (through u, v) and colours.
        let clip = tensor(&pos, [1, v, 4], &device).require_grad();
        let attr = tensor(&colors, [1, v, 3], &device).require_grad();
        let rast = render::rasterize(clip.clone(), &topo, h, w).unwrap();
        let out = render::interpolate(attr.clone(), rast, &topo).unwrap();
        let loss = (out * tensor(&weights, [1, h, w, 3], &device)).sum();
        let grads = loss.backward();
        let g_pos = read(clip.grad(&grads).unwrap());
        let g_attr = read(attr.grad(&grads).unwrap());
        let fd_attr = finite_difference(&colors, 1e-2, |c| weighted(&shade(&pos, c), &weights));
        assert_grad_close("interpolate d attributes", &g_attr, &fd_attr, 1e-3);
        let base_ids = ids(&pos);
        let hstep = 1e-3;
        let fd_pos: Vec<f32> = (0..pos.len())
            .map(|i| {
                let (mut p, mut m) = (pos.clone(), pos.clone());
                p[i] += hstep;
                m[i] -= hstep;
                if ids(&p) != base_ids || ids(&m) != base_ids {
                    return f32::NAN;
                }
                (weighted(&shade(&p, &colors), &weights) - weighted(&shade(&m, &colors), &weights))
                    / (2.0 * hstep)
            })
            .collect();
        let usable: Vec<usize> = (0..pos.len()).filter(|&i| fd_pos[i].is_finite()).collect();
        assert!(
            usable.len() > pos.len() / 2,
            "too few coverage-stable perturbations"
        );
        let a: Vec<f32> = usable.iter().map(|&i| g_pos[i]).collect();
        let n: Vec<f32> = usable.iter().map(|&i| fd_pos[i]).collect();
        assert_grad_close("rasterize d positions", &a, &n, 2e-2);

        // texture: gradients to the map and to uv.
        // Keep samples away from texel centres, where bilinear filtering has kinks.
        let away_from_kinks = |rng: &mut SplitMix64, n: f32| loop {
            let s = rng.range(0.05, 0.95);
            let f = (s * n - 0.5).rem_euclid(1.0);
            if f > 0.02 && f < 0.98 {
                break s;
            }
        };
        let uv_values: Vec<f32> = (0..h * w)
            .flat_map(|_| {
                [
                    away_from_kinks(&mut rng, 5.0),
                    away_from_kinks(&mut rng, 6.0),
                ]
            })
            .collect();
        let dt = render::texture::Dims {
            batch: 1,
            height: h,
            width: w,
            channels: 3,
            map_height: 6,
            map_width: 5,
            map_batched: false,
            wrap: false,
        };
        let map_t = tensor(&map, [1, 6, 5, 3], &device).require_grad();
        let uv_t = tensor(&uv_values, [1, h, w, 2], &device).require_grad();
        let out = render::texture(map_t.clone(), uv_t.clone(), Boundary::Clamp).unwrap();
        let grads = (out * tensor(&weights, [1, h, w, 3], &device))
            .sum()
            .backward();
        let g_map = read(map_t.grad(&grads).unwrap());
        let g_uv = read(uv_t.grad(&grads).unwrap());
        let fd_map = finite_difference(&map, 1e-2, |m| {
            weighted(&render::texture::forward_cpu(m, &uv_values, dt), &weights)
        });
        assert_grad_close("texture d map", &g_map, &fd_map, 1e-3);
        let fd_uv = finite_difference(&uv_values, 1e-4, |u| {
            weighted(&render::texture::forward_cpu(&map, u, dt), &weights)
        });
        assert_grad_close("texture d uv", &g_uv, &fd_uv, 2e-2);

        // antialias: gradients to colours and to positions at the silhouette.
        let aa_dims = render::antialias::Dims {
            batch: 1,
            vertices: v,
            triangles: d.triangles,
            height: h,
            width: w,
            channels: 3,
        };
        let color_img: Vec<f32> = (0..h * w * 3).map(|_| rng.uniform()).collect();
        let aa = |p: &[f32], c: &[f32]| {
            let rast = render::rasterize::forward_cpu(p, &mesh.triangles, d);
            let scene = render::antialias::Scene {
                color: c,
                rast: &rast,
                pos: p,
                tris: &mesh.triangles,
                wings: topo.wing_list(),
                dims: aa_dims,
            };
            render::antialias::forward_cpu(&scene)
        };
        let clip = tensor(&pos, [1, v, 4], &device).require_grad();
        let color_t = tensor(&color_img, [1, h, w, 3], &device).require_grad();
        let rast = render::rasterize(clip.clone(), &topo, h, w)
            .unwrap()
            .detach();
        let out = render::antialias(color_t.clone(), rast, clip.clone(), &topo).unwrap();
        let grads = (out * tensor(&weights, [1, h, w, 3], &device))
            .sum()
            .backward();
        let g_color = read(color_t.grad(&grads).unwrap());
        let g_pos = read(clip.grad(&grads).unwrap());
        let fd_color = finite_difference(&color_img, 1e-2, |c| weighted(&aa(&pos, c), &weights));
        assert_grad_close("antialias d colour", &g_color, &fd_color, 1e-3);
        let fd_pos: Vec<f32> = (0..pos.len())
            .map(|i| {
                let (mut p, mut m) = (pos.clone(), pos.clone());
                p[i] += hstep;
                m[i] -= hstep;
                if ids(&p) != base_ids || ids(&m) != base_ids {
                    return f32::NAN;
                }
                (weighted(&aa(&p, &color_img), &weights) - weighted(&aa(&m, &color_img), &weights))
                    / (2.0 * hstep)
            })
            .collect();
        let usable: Vec<usize> = (0..pos.len()).filter(|&i| fd_pos[i].is_finite()).collect();
        let a: Vec<f32> = usable.iter().map(|&i| g_pos[i]).collect();
        let n: Vec<f32> = usable.iter().map(|&i| fd_pos[i]).collect();
        assert!(
            n.iter().any(|g| g.abs() > 1e-3),
            "antialias should depend on silhouette positions"
        );
        assert_grad_close("antialias d positions", &a, &n, 2e-2);
    }
}

#[test]
fn antialias_gradient_moves_a_silhouette_towards_the_target() {
    // A white square on black; the target is the same square shifted right by 0.4 pixel.
    let square = |dx: f32| -> Vec<f32> {
        [[-0.5f32, -0.5], [0.5, -0.5], [0.5, 0.5], [-0.5, 0.5]]
            .iter()
            .flat_map(|p| [p[0] + dx, p[1], 0.0, 1.0])
            .collect()
    };
    let tris = vec![[0, 1, 2], [0, 2, 3]];
    let (h, w) = (32, 32);
    let pixel = 2.0 / w as f32;
    for device in [cpu().autodiff(), gpu_device().autodiff()] {
        let topo = Topology::new(tris.clone(), 4, &device).unwrap();
        let render_at = |pos: Tensor<3>| {
            let rast = render::rasterize(pos.clone(), &topo, h, w).unwrap();
            let mask = render::coverage(&rast);
            render::antialias(mask, rast, pos, &topo).unwrap()
        };
        let target = render_at(tensor(&square(0.4 * pixel), [1, 4, 4], &device)).detach();
        let pos = tensor(&square(0.0), [1, 4, 4], &device).require_grad();
        let loss = (render_at(pos.clone()) - target).powi_scalar(2).sum();
        let grad = read(pos.grad(&loss.backward()).unwrap());
        let dx: f32 = grad.chunks(4).map(|g| g[0]).sum();
        let dy: f32 = grad.chunks(4).map(|g| g[1]).sum();
        assert!(
            dx < 0.0,
            "moving right should lower the loss: d loss/dx = {dx}"
        );
        assert!(
            dy.abs() < 0.25 * dx.abs(),
            "no vertical push expected: {dy} vs {dx}"
        );
    }
}

#[test]
fn bad_input_is_refused_with_a_typed_error() {
    let device = cpu();
    assert!(matches!(
        Topology::new(vec![], 3, &device),
        Err(render::RenderError::EmptyMesh)
    ));
    assert!(matches!(
        Topology::new(vec![[0, 1, 5]], 3, &device),
        Err(render::RenderError::IndexOutOfRange {
            triangle: 0,
            index: 5,
            vertices: 3
        })
    ));
    let topo = Topology::new(vec![[0, 1, 2]], 3, &device).unwrap();
    let pos = tensor(&[0.0; 16], [1, 4, 4], &device);
    assert!(matches!(
        render::rasterize(pos, &topo, 8, 8),
        Err(render::RenderError::Shape { .. })
    ));
    let pos = tensor(&[0.0; 12], [1, 3, 4], &device);
    assert!(matches!(
        render::rasterize(pos.clone(), &topo, 0, 8),
        Err(render::RenderError::Resolution { .. })
    ));
    assert!(matches!(
        render::rasterize(pos, &topo, 100_000, 8),
        Err(render::RenderError::Resolution { .. })
    ));
}

#[test]
fn degenerate_behind_camera_and_nan_triangles_draw_nothing() {
    // Degenerate (collinear), one vertex behind the eye, and NaN: none is drawn, nothing fails.
    let pos = [
        -0.5,
        -0.5,
        0.0,
        1.0,
        0.0,
        0.0,
        0.0,
        1.0,
        0.5,
        0.5,
        0.0,
        1.0, // collinear
        -0.5,
        -0.5,
        0.0,
        1.0,
        0.5,
        -0.5,
        0.0,
        -1.0,
        0.0,
        0.5,
        0.0,
        1.0, // w < 0
        f32::NAN,
        -0.5,
        0.0,
        1.0,
        0.5,
        -0.5,
        0.0,
        1.0,
        0.0,
        0.5,
        0.0,
        1.0, // NaN
    ];
    let tris = vec![[0, 1, 2], [3, 4, 5], [6, 7, 8]];
    for device in [cpu(), gpu_device()] {
        let topo = Topology::new(tris.clone(), 9, &device).unwrap();
        let rast =
            read(render::rasterize(tensor(&pos, [1, 9, 4], &device), &topo, 16, 16).unwrap());
        assert!(rast.iter().all(|&v| v == 0.0), "nothing should be drawn");
    }
}

#[test]
fn pose_recovery_converges_on_cpu_and_wgpu() {
    use ganfit::device::block_on;
    use ganfit::render::selftest;
    for (name, device) in [("cpu", cpu()), ("wgpu", gpu_device())] {
        let report = block_on(selftest::recover_pose(&device.autodiff(), 40, 60)).unwrap();
        eprintln!(
            "{name}: loss {} -> {}, parameter error {} -> {} in {:.0} ms",
            report.losses[0],
            report.losses.last().unwrap(),
            report.initial_error,
            report.final_error,
            report.milliseconds
        );
        assert!(report.converged(), "{name}: {report:?}");
    }
}

#[test]
fn selftest_passes_natively() {
    use ganfit::device::block_on;
    use ganfit::render::selftest;
    for device in [cpu(), gpu_device()] {
        let report =
            block_on(selftest::compare_with_reference(&device.autodiff(), 40, 32)).unwrap();
        assert!(report.passed(), "{report:?}");
    }
}

#[test]
fn gradients_match_the_f64_reference_on_wgpu() {
    let device = gpu_device().autodiff();
    let report = ganfit::device::block_on(render::selftest::compare_gradients_with_reference(
        &device, 45, 37,
    ))
    .unwrap();
    for case in &report.cases {
        eprintln!("{}: {} ({})", case.name, case.passed, case.detail);
    }
    assert!(report.passed(), "{report:#?}");
}

#[test]
fn scatter_contention_cases_give_their_known_answers_on_wgpu() {
    let device = gpu_device().autodiff();
    let report = ganfit::device::block_on(render::selftest::scatter_stress(&device)).unwrap();
    for case in &report.cases {
        eprintln!("{}: {} ({})", case.name, case.passed, case.detail);
    }
    assert!(report.passed(), "{report:#?}");
}

#[test]
fn scatter_contention_cases_give_their_known_answers_on_the_cpu_reference() {
    let report =
        ganfit::device::block_on(render::selftest::scatter_stress(&cpu().autodiff())).unwrap();
    for case in &report.cases {
        eprintln!("{}: {} ({})", case.name, case.passed, case.detail);
    }
    assert!(report.passed(), "{report:#?}");
}
