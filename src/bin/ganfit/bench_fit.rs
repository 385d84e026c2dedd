//! `ganfit bench fit`: what one fitting iteration costs and where the time goes.

use burn::tensor::{Tensor, TensorData};
use ganfit::Result;
use ganfit::device::block_on;
use ganfit::fit::{self, Control, FitOptions, FitStage, Models, Progress, scene};
use ganfit::nets::faceres;
use ganfit::render::shading::{PhongLight, normalize};
use ganfit::util::clock::now_ms;
use ganfit::util::rng::SplitMix64;

use crate::common::Backend;
use crate::common::time_ms;

/// Forward + backward of each part of the stage-2 graph, alone, at `resolution`.
fn components(models: &Models, resolution: usize, repeat: usize) -> Result<()> {
    let device = models.face.device().clone();
    let t2 = |v: Vec<f32>, c: usize| Tensor::<2>::from_data(TensorData::new(v, [1, c]), &device);
    let (ni, ne, nt) = (
        models.face.num_identity(),
        models.face.num_expression(),
        models.texture.parameters(),
    );
    let mut rng = SplitMix64::new(3);
    let latent: Vec<f32> = (0..nt).map(|_| rng.normal()).collect();

    let generator = time_ms(&device, repeat, || {
        let z = t2(latent.clone(), nt).require_grad();
        let map = models.texture.uv_map(z.clone())?;
        let grads = map.sum().backward();
        let _ = z.grad(&grads);
        Ok(())
    })?;
    println!("fit {resolution}² texture model forward+backward: {generator:.1} ms");

    let uv_map = models.texture.uv_map(t2(latent.clone(), nt))?.detach();
    let focal = 1.8 * resolution as f32;
    let render = time_ms(&device, repeat, || {
        let identity = t2(vec![0.0; ni], ni).require_grad();
        let shape = models
            .face
            .vertices(identity.clone(), t2(vec![0.0; ne], ne))?;
        let camera = scene::Camera {
            angles: t2(vec![0.0, 0.3, 0.0], 3),
            translation: t2(vec![0.0, 5.0, -focal * 300.0 / resolution as f32], 3),
            focal: t2(vec![focal], 1),
        };
        let light = PhongLight {
            ambient: t2(vec![0.5; 3], 3),
            diffuse: t2(vec![0.4; 3], 3),
            direction: normalize(t2(vec![0.3, 0.2, 1.0], 3), 1),
            specular: t2(vec![0.03], 1),
            shininess: 20.0,
        };
        let background = scene::grey(1, resolution, &device);
        let rendered = scene::render(
            &models.face,
            shape,
            &camera,
            &light,
            uv_map.clone(),
            background,
            resolution,
        )?;
        let grads = rendered.image.sum().backward();
        let _ = identity.grad(&grads);
        Ok(())
    })?;
    println!("fit {resolution}² shape + render forward+backward: {render:.1} ms");

    let n = faceres::INPUT_SIZE;
    let identity_network = models.nets.faceres()?;
    let identity_net = time_ms(&device, repeat, || {
        let x = Tensor::<4>::ones([1, n, n, 3], &device).require_grad();
        let out = identity_network.forward(x.clone())?;
        let grads = out.embedding.sum().backward();
        let _ = x.grad(&grads);
        Ok(())
    })?;
    println!("fit identity network (faceres {n}²) forward+backward: {identity_net:.1} ms");

    // The loss terms alone, on stand-ins of the shapes stage 2 gives them.
    let rendered = Tensor::<4>::ones([1, resolution, resolution, 3], &device) * 0.4;
    let photo = Tensor::<4>::ones([1, resolution, resolution, 3], &device) * 0.6;
    let mask = Tensor::<4>::ones([1, resolution, resolution, 1], &device);
    let target_landmarks = Tensor::<3>::ones([1, 68, 2], &device) * (resolution as f32 / 2.0);
    let lm_weights = Tensor::<1>::ones([68], &device);
    let photo_features =
        identity_network.forward(Tensor::<4>::ones([1, n, n, 3], &device) * 0.5)?;
    let photo_embedding = photo_features.embedding.detach();
    let photo_activations: Vec<Tensor<4>> = photo_features
        .activations
        .into_iter()
        .map(|a| a.detach())
        .collect();
    let render_features =
        identity_network.forward(Tensor::<4>::ones([1, n, n, 3], &device) * 0.3)?;
    let render_embedding = render_features.embedding.detach();
    let render_activations: Vec<Tensor<4>> = render_features
        .activations
        .into_iter()
        .map(|a| a.detach())
        .collect();
    let loss_terms = time_ms(&device, repeat, || {
        let image = rendered.clone().require_grad();
        let landmarks =
            (Tensor::<3>::ones([1, 68, 2], &device) * (resolution as f32 / 2.1)).require_grad();
        let embedding = render_embedding.clone().require_grad();
        let activations: Vec<Tensor<4>> = render_activations
            .iter()
            .map(|a| a.clone().require_grad())
            .collect();
        let mut total = fit::losses::masked_l1(image.clone(), photo.clone(), mask.clone())
            + fit::losses::landmarks(
                landmarks.clone(),
                target_landmarks.clone(),
                lm_weights.clone(),
                resolution as f32,
            )
            + fit::losses::identity(embedding.clone(), photo_embedding.clone());
        if let Some(content) = fit::losses::content(&activations, &photo_activations) {
            total = total + content;
        }
        let grads = total.backward();
        let _ = (
            image.grad(&grads),
            landmarks.grad(&grads),
            embedding.grad(&grads),
        );
        Ok(())
    })?;
    println!("fit {resolution}² losses forward+backward: {loss_terms:.1} ms");

    // One Adam update of every parameter group (stage 2 updates them all).
    let initial = [fit::params::Initial {
        angles: [0.0; 3],
        translation: [0.0, 0.0, -500.0],
        focal,
    }];
    let mut params = fit::params::Params::new(1, &initial, ni, ne, nt, &device);
    params.set_rates(&FitOptions::default().rates);
    let mut adam = ganfit::util::adam::Adam::default();
    let optimiser = time_ms(&device, repeat, || {
        adam.begin_step();
        for slot in params.iter_mut() {
            let grad = slot.value.ones_like() * 1e-3;
            adam.update(slot, grad, |v| v);
        }
        Ok(())
    })?;
    println!("fit {resolution}² optimiser (Adam, every group): {optimiser:.1} ms");
    Ok(())
}

/// Times a whole fit of `photo`, stage by stage, from the progress reports.
fn whole_fit(
    models: &Models,
    photo: &image::RgbImage,
    resolution: usize,
    landmark_iterations: usize,
    iterations: usize,
    base: &FitOptions,
) -> Result<()> {
    let options = FitOptions {
        resolution,
        landmark_iterations,
        iterations,
        report_every: 5,
        preview_every: 0,
        ..base.clone()
    };
    // (stage, iteration, elapsed) of each report.
    let mut reports: Vec<(FitStage, usize, f64)> = Vec::new();
    let mut observer = |p: &Progress| {
        reports.push((p.stage, p.iteration, p.elapsed_ms));
        Control::Continue
    };
    let start = now_ms();
    let result = block_on(fit::fit(
        models,
        std::slice::from_ref(photo),
        &options,
        &mut observer,
    ))?;
    let wall = now_ms() - start;
    for stage in [FitStage::Landmarks, FitStage::Full, FitStage::Identity] {
        let of_stage: Vec<_> = reports.iter().filter(|r| r.0 == stage && r.1 > 0).collect();
        if let (Some(first), Some(last)) = (of_stage.first(), of_stage.last())
            && last.1 > first.1
        {
            let per = (last.2 - first.2) / (last.1 - first.1) as f64;
            println!("fit {resolution}² {stage:?} stage: {per:.1} ms/iteration");
        }
    }
    let stage_3 = match fit::session::runs_identity_stage(&options) {
        true => options.identity_iterations,
        false => 0,
    };
    println!(
        "fit {resolution}² whole fit ({landmark_iterations} + {iterations} + {stage_3} iterations): {:.1} s",
        wall / 1000.0
    );
    println!(
        "fit {resolution}² engine-reported time: {:.1} s",
        result.milliseconds / 1000.0
    );
    Ok(())
}

pub fn run(
    devices: Vec<Backend>,
    resolutions: Vec<usize>,
    repeat: usize,
    landmark_iterations: usize,
    iterations: usize,
    models: &std::path::Path,
    photo: Option<std::path::PathBuf>,
    options: &FitOptions,
) -> Result<()> {
    let photo_path = match photo {
        Some(p) => p,
        None => std::path::PathBuf::from(
            std::env::var("GANFIT_DATA").unwrap_or_else(|_| "../shared/data".into()),
        )
        .join("samples/astronaut.png"),
    };
    let photo = ganfit::io::image::read(&photo_path)?;
    println!("# photo: {}", photo_path.display());
    let resolutions = if resolutions.is_empty() {
        vec![224, 256]
    } else {
        resolutions
    };
    for (_, device) in crate::common::open_devices(devices, &[Backend::Cpu, Backend::Gpu]) {
        let models = crate::common::load_models(models, &device.autodiff(), None)?;
        println!("# texture model: {}", models.texture.name());
        for &r in &resolutions {
            components(&models, r, repeat)?;
            whole_fit(&models, &photo, r, landmark_iterations, iterations, options)?;
        }
    }
    Ok(())
}
