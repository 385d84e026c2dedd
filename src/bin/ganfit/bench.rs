//! `ganfit bench ...`: timings printed as `name: value unit`.

use burn::tensor::{Device, Tensor, TensorData};
use clap::Subcommand;
use ganfit::Result;
use ganfit::render::{self, Boundary, Topology, camera, scenes};
use ganfit::texture::pggan::PgganConfig;

use crate::common::{Backend, open_devices, time_ms};

#[derive(Subcommand)]
pub enum Bench {
    /// The four render ops, forward and forward+backward, at 256² and 512², batch 1 and 4.
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
        } => crate::bench_fit::run(
            device,
            resolution,
            repeat,
            landmark_iterations,
            iterations,
            &crate::common::models_dir(models),
            photo,
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

/// Renders one image batch through the four ops; returns the image.
fn render_once(scene: &Scene, clip: Tensor<3>, size: usize) -> Result<Tensor<4>> {
    let rast = render::rasterize(clip.clone(), &scene.topology, size, size)?;
    let uv = render::interpolate(scene.uv.clone(), rast.clone(), &scene.topology)?;
    let color = render::texture(scene.map.clone(), uv, Boundary::Clamp)?;
    Ok(render::antialias(color, rast, clip, &scene.topology)?)
}

fn raster(devices: Vec<Backend>, repeat: usize) -> Result<()> {
    let mut results = std::collections::BTreeMap::new();
    for (backend, device) in open_devices(devices, &[Backend::Cpu, Backend::Gpu]) {
        let ad = device.clone().autodiff();
        let scene = face_like_scene(&device)?;
        let scene_ad = face_like_scene(&ad)?;
        println!("triangles: {}", scene.topology.num_triangles());
        for size in [256, 512] {
            for batch in [1, 4] {
                let c = clip(&scene, batch, size, &device);
                let forward = time_ms(&device, repeat, || {
                    render_once(&scene, c.clone(), size).map(|_| ())
                })?;
                let c_ad = clip(&scene_ad, batch, size, &ad);
                let both = time_ms(&ad, repeat, || {
                    let map = scene_ad.map.clone().require_grad();
                    let pos = c_ad.clone().require_grad();
                    let s = Scene {
                        topology: scene_ad.topology.clone(),
                        points: scene_ad.points.clone(),
                        uv: scene_ad.uv.clone(),
                        map: map.clone(),
                    };
                    let image = render_once(&s, pos.clone(), size)?;
                    let grads = image.sum().backward();
                    let _ = (map.grad(&grads), pos.grad(&grads));
                    Ok(())
                })?;
                let key = format!("{size}x{size} batch {batch}");
                println!("raster {:?} {key} forward: {forward:.2} ms", backend);
                println!("raster {:?} {key} forward+backward: {both:.2} ms", backend);
                results.insert((format!("{backend:?}"), key), (forward, both));
            }
        }
    }
    for ((backend, key), (forward, both)) in &results {
        if backend == "Gpu"
            && let Some((cf, cb)) = results.get(&("Cpu".to_string(), key.clone()))
        {
            println!(
                "raster speedup wgsl/cpu {key} forward: {:.2} x",
                cf / forward
            );
            println!(
                "raster speedup wgsl/cpu {key} forward+backward: {:.2} x",
                cb / both
            );
        }
    }
    Ok(())
}

fn nets(devices: Vec<Backend>, repeat: usize, models: &std::path::Path) -> Result<()> {
    use ganfit::nets::{
        FaceNets, blazeface, detector, facemesh, faceres, landmarks68, mobilefacenet, resnet,
    };
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
                nets.landmarks
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
        let mobile = time_ms(&device, repeat, || {
            sync(
                nets.mobilefacenet
                    .forward(input(mobilefacenet::INPUT_SIZE, &device))?
                    .embedding,
            );
            Ok(())
        })?;
        println!("nets {backend:?} mobilefacenet 112x112 forward: {mobile:.2} ms");
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
        let mobile = backward(mobilefacenet::INPUT_SIZE, &|x| {
            Ok(nets.mobilefacenet.forward(x)?.embedding)
        })?;
        println!("nets {backend:?} mobilefacenet 112x112 forward+backward: {mobile:.2} ms");
        let face_res = backward(faceres::INPUT_SIZE, &|x| {
            Ok(nets.faceres()?.forward(x)?.embedding)
        })?;
        println!("nets {backend:?} faceres 224x224 forward+backward: {face_res:.2} ms");
    }
    Ok(())
}
