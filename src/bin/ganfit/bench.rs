//! `ganfit bench ...`: timings printed as `name: value unit`.

use burn::tensor::{Device, Tensor, TensorData};
use clap::Subcommand;
use ganfit::Result;
use ganfit::render::{self, Boundary, Topology, camera, scenes};
use ganfit::texture::pggan::PgganConfig;

use crate::common::{Backend, open_devices, time_ms};

#[derive(Subcommand)]
pub enum Bench {
    /// The four render ops, each one's forward and backward alone, at 256² and 512², batch 1
    /// and 4, with the CPU reference (backend `cpu`) in the same run.
    Raster {
        /// Backends to time (default: every one available).
        #[arg(long, value_enum)]
        device: Vec<Backend>,
        /// Timed repetitions per configuration.
        #[arg(long, default_value_t = 5)]
        repeat: usize,
    },
    /// Forward time of each face network at batch 1 (and forward+backward to the input for the
    /// identity networks, as the fitter runs them).
    Nets {
        #[arg(long, value_enum)]
        device: Vec<Backend>,
        #[arg(long, default_value_t = 5)]
        repeat: usize,
        #[arg(long)]
        models: Option<std::path::PathBuf>,
    },
    /// One fitting iteration's parts (texture model, shape + render, identity network, each
    /// forward+backward) and a whole fit of a synthetic face, per stage, at 224² and 256².
    Fit {
        #[arg(long, value_enum)]
        device: Vec<Backend>,
        /// Working resolutions (default 224 and 256).
        #[arg(long)]
        resolution: Vec<usize>,
        #[arg(long, default_value_t = 5)]
        repeat: usize,
        #[arg(long, default_value_t = 300)]
        landmark_iterations: usize,
        #[arg(long, default_value_t = 150)]
        iterations: usize,
        #[arg(long)]
        models: Option<std::path::PathBuf>,
        /// The photo to fit (default: $GANFIT_DATA/samples/astronaut.png).
        #[arg(long)]
        photo: Option<std::path::PathBuf>,
        /// Fit options for the whole fit as a JSON file (`FitOptions`; e.g. the identity
        /// terms switched on); resolution and iterations come from the flags.
        #[arg(long)]
        options: Option<std::path::PathBuf>,
    },
    /// One texture-GAN training step (discriminator, generator, weight average) at each growth
    /// level, and the generator's forward pass at full size.
    Gan {
        #[arg(long, value_enum)]
        device: Vec<Backend>,
        /// Output height (the width is twice that: ICT's atlas).
        #[arg(long, default_value_t = 64)]
        resolution: usize,
        #[arg(long, default_value_t = 16)]
        batch: usize,
        #[command(flatten)]
        channels: crate::texture::ChannelArgs,
        #[arg(long, default_value_t = 5)]
        repeat: usize,
    },
}

pub fn run(what: Bench) -> Result<()> {
    match what {
        Bench::Raster { device, repeat } => raster(device, repeat),
        Bench::Nets {
            device,
            repeat,
            models,
        } => nets(device, repeat, &crate::common::models_dir(models)),
        Bench::Fit {
            device,
            resolution,
            repeat,
            landmark_iterations,
            iterations,
            models,
            photo,
            options,
        } => crate::bench_fit::run(
            device,
            resolution,
            repeat,
            landmark_iterations,
            iterations,
            &crate::common::models_dir(models),
            photo,
            &crate::common::read_options(options.as_deref())?,
        ),
        Bench::Gan {
            device,
            resolution,
            batch,
            channels,
            repeat,
        } => {
            let config = channels.apply(PgganConfig {
                resolution,
                aspect: 2,
                ..PgganConfig::default()
            });
            crate::bench_gan::run(device, config, batch, repeat)
        }
    }
}

struct Scene {
    topology: Topology,
    points: Tensor<3>,
    uv: Tensor<3>,
    map: Tensor<4>,
}

fn face_like_scene(device: &Device) -> Result<Scene> {
    // ~20k triangles, as many as the fitted ICT face + head region.
    let mesh = scenes::sphere(100, 101, 1.0);
    let v = mesh.positions.len();
    let topology = Topology::new(mesh.triangles.clone(), v, device)?;
    let points = Tensor::<3>::from_data(TensorData::new(mesh.positions_flat(), [1, v, 3]), device);
    let uv: Vec<f32> = mesh.colors.iter().flat_map(|c| [c[0], c[1]]).collect();
    let uv = Tensor::<3>::from_data(TensorData::new(uv, [1, v, 2]), device);
    let map = Tensor::<4>::ones([1, 256, 256, 3], device) * 0.5;
    Ok(Scene {
        topology,
        points,
        uv,
        map,
    })
}

fn clip(scene: &Scene, batch: usize, size: usize, device: &Device) -> Tensor<3> {
    let angles = Tensor::<2>::from_data(
        TensorData::new([0.2f32, 0.3, 0.0].repeat(batch), [batch, 3]),
        device,
    );
    let translation = Tensor::<2>::from_data(
        TensorData::new([0.0f32, 0.0, -2.6].repeat(batch), [batch, 3]),
        device,
    );
    let focal = Tensor::<2>::from_data(
        TensorData::new(vec![1.2 * size as f32; batch], [batch, 1]),
        device,
    );
    let points = scene.points.clone().repeat_dim(0, batch);
    camera::project(
        camera::transform(points, camera::euler_rotation(angles), translation),
        focal,
        size,
        size,
        camera::DepthRange {
            near: 0.5,
            far: 10.0,
        },
    )
}

/// One op's timings at one size on one backend.
struct OpTiming {
    forward: f64,
    backward: f64,
}

/// Each render op's forward and backward alone (the backward scatters every gradient), per
/// size and batch, on each backend; then a table of backward/forward ratios and of each
/// backend's speed against the CPU reference measured in the same run.
fn raster(devices: Vec<Backend>, repeat: usize) -> Result<()> {
    const OPS: [&str; 4] = ["rasterize", "interpolate", "texture", "antialias"];
    let mut results = std::collections::BTreeMap::new();
    let mut backends = Vec::new();
    for (backend, device) in open_devices(devices, &[Backend::Cpu, Backend::Gpu]) {
        backends.push(format!("{backend:?}"));
        let scene = face_like_scene(&device)?;
        println!("triangles: {}", scene.topology.num_triangles());
        for size in [256, 512] {
            for batch in [1, 4] {
                let clip = clip(&scene, batch, size, &device);
                let rast = render::rasterize(clip.clone(), &scene.topology, size, size)?;
                let uv = render::interpolate(scene.uv.clone(), rast.clone(), &scene.topology)?;
                let color = render::texture(scene.map.clone(), uv.clone(), Boundary::Clamp)?;
                // A varied output gradient, the same on every backend.
                let pattern = |channels: usize| -> Tensor<4> {
                    let values: Vec<f32> = (0..batch * size * size * channels)
                        .map(|i| ((i * 7919) % 23) as f32 / 23.0 - 0.45)
                        .collect();
                    Tensor::from_data(
                        TensorData::new(values, [batch, size, size, channels]),
                        &device,
                    )
                };
                let (g4, g2, g3) = (pattern(4), pattern(2), pattern(3));
                let topo = &scene.topology;
                let mut timings = Vec::new();
                timings.push(OpTiming {
                    forward: time_ms(&device, repeat, || {
                        render::rasterize(clip.clone(), topo, size, size)
                            .map(|_| ())
                            .map_err(ganfit::Error::from)
                    })?,
                    backward: time_ms(&device, repeat, || {
                        render::backward::rasterize(clip.clone(), topo, rast.clone(), g4.clone())
                            .map(|_| ())
                            .map_err(ganfit::Error::from)
                    })?,
                });
                timings.push(OpTiming {
                    forward: time_ms(&device, repeat, || {
                        render::interpolate(scene.uv.clone(), rast.clone(), topo)
                            .map(|_| ())
                            .map_err(ganfit::Error::from)
                    })?,
                    backward: time_ms(&device, repeat, || {
                        render::backward::interpolate(
                            scene.uv.clone(),
                            rast.clone(),
                            topo,
                            g2.clone(),
                        )
                        .map(|_| ())
                        .map_err(ganfit::Error::from)
                    })?,
                });
                timings.push(OpTiming {
                    forward: time_ms(&device, repeat, || {
                        render::texture(scene.map.clone(), uv.clone(), Boundary::Clamp)
                            .map(|_| ())
                            .map_err(ganfit::Error::from)
                    })?,
                    backward: time_ms(&device, repeat, || {
                        render::backward::texture(
                            scene.map.clone(),
                            uv.clone(),
                            Boundary::Clamp,
                            g3.clone(),
                        )
                        .map(|_| ())
                        .map_err(ganfit::Error::from)
                    })?,
                });
                timings.push(OpTiming {
                    forward: time_ms(&device, repeat, || {
                        render::antialias(color.clone(), rast.clone(), clip.clone(), topo)
                            .map(|_| ())
                            .map_err(ganfit::Error::from)
                    })?,
                    backward: time_ms(&device, repeat, || {
                        render::backward::antialias(
                            color.clone(),
                            rast.clone(),
                            clip.clone(),
                            topo,
                            g3.clone(),
                        )
                        .map(|_| ())
                        .map_err(ganfit::Error::from)
                    })?,
                });
                let key = format!("{size}x{size} batch {batch}");
                for (op, t) in OPS.iter().zip(&timings) {
                    println!(
                        "raster {backend:?} {op} {key}: forward {:.2} ms, backward {:.2} ms, \
                         backward/forward {:.2}",
                        t.forward,
                        t.backward,
                        t.backward / t.forward
                    );
                }
                results.insert((format!("{backend:?}"), key), timings);
            }
        }
    }
    println!(
        "\n| backend | op | size | forward ms | backward ms | backward/forward | backward vs Cpu |"
    );
    println!("|---|---|---|---|---|---|---|");
    for ((backend, key), timings) in &results {
        let reference = results.get(&("Cpu".to_string(), key.clone()));
        for (i, (op, t)) in OPS.iter().zip(timings).enumerate() {
            let versus = reference
                .map(|r| format!("{:.2}x", r[i].backward / t.backward))
                .unwrap_or_else(|| "-".into());
            println!(
                "| {backend} | {op} | {key} | {:.2} | {:.2} | {:.2} | {versus} |",
                t.forward,
                t.backward,
                t.backward / t.forward
            );
        }
    }
    Ok(())
}

fn nets(devices: Vec<Backend>, repeat: usize, models: &std::path::Path) -> Result<()> {
    use ganfit::nets::{FaceNets, blazeface, detector, facemesh, faceres, landmarks68, resnet};
    for (backend, device) in open_devices(devices, &[Backend::Cpu, Backend::Gpu]) {
        let nets = FaceNets::load(models, &device)?;
        let input =
            |size: usize, device: &Device| Tensor::<4>::ones([1, size, size, 3], device) * 0.5;
        let sync = |t: Tensor<2>| t.into_data();
        let detector = time_ms(&device, repeat, || {
            let (_, scores) = nets.ssd()?.forward(input(detector::INPUT_SIZE, &device))?;
            sync(scores);
            Ok(())
        })?;
        println!("nets {backend:?} detector 512x512 forward: {detector:.2} ms");
        let (blazeface, facemesh) = nets.mediapipe()?;
        let blaze = time_ms(&device, repeat, || {
            let output = blazeface.forward(input(blazeface::INPUT_SIZE, &device))?;
            sync(output.logits);
            Ok(())
        })?;
        println!("nets {backend:?} blazeface 256x256 forward: {blaze:.2} ms");
        let mesh = time_ms(&device, repeat, || {
            let output = facemesh.forward(input(facemesh::INPUT_SIZE, &device))?;
            output.confidence.into_data();
            Ok(())
        })?;
        println!("nets {backend:?} facemesh 192x192 forward: {mesh:.2} ms");
        let landmarks = time_ms(&device, repeat, || {
            sync(
                nets.landmarks_net()?
                    .forward(input(landmarks68::INPUT_SIZE, &device))?,
            );
            Ok(())
        })?;
        println!("nets {backend:?} landmarks68 112x112 forward: {landmarks:.2} ms");
        let resnet = time_ms(&device, repeat, || {
            sync(
                nets.resnet()?
                    .forward(input(resnet::INPUT_SIZE, &device))?
                    .embedding,
            );
            Ok(())
        })?;
        println!("nets {backend:?} resnet 150x150 forward: {resnet:.2} ms");
        let face_res = time_ms(&device, repeat, || {
            sync(
                nets.faceres()?
                    .forward(input(faceres::INPUT_SIZE, &device))?
                    .embedding,
            );
            Ok(())
        })?;
        println!("nets {backend:?} faceres 224x224 forward: {face_res:.2} ms");

        let ad = device.clone().autodiff();
        let nets = FaceNets::load(models, &ad)?;
        let backward = |size: usize, run: &dyn Fn(Tensor<4>) -> Result<Tensor<2>>| {
            time_ms(&ad, repeat, || {
                let x = input(size, &ad).require_grad();
                let grads = run(x.clone())?.sum().backward();
                let _ = x.grad(&grads).map(|g| g.into_data());
                Ok(())
            })
        };
        let resnet = backward(resnet::INPUT_SIZE, &|x| {
            Ok(nets.resnet()?.forward(x)?.embedding)
        })?;
        println!("nets {backend:?} resnet 150x150 forward+backward: {resnet:.2} ms");
        let face_res = backward(faceres::INPUT_SIZE, &|x| {
            Ok(nets.faceres()?.forward(x)?.embedding)
        })?;
        println!("nets {backend:?} faceres 224x224 forward+backward: {face_res:.2} ms");
    }
    Ok(())
}
