//! The progressive GAN: shapes through growth, reference outputs (also checked on WebGPU by
//! the browser suite), a short training run (with resume), weight files, and clear errors on
//! bad files. Synthetic textures only; small sizes (CPU backend).

#[path = "golden/generator.rs"]
mod golden;

use std::path::Path;

use burn::tensor::{Distribution, Tensor};
use ganfit::device::{cpu, read_floats_blocking};
use ganfit::texture::corpus::{Entry, Index};
use ganfit::texture::pggan::{
    DISCRIMINATOR_INPUTS, Discriminator, Generator, PgganConfig, Stage, discriminator_input,
};
use ganfit::texture::train::{RunFiles, TrainOptions, train};
use ganfit::texture::{corpus::Corpus, corpus::Split, weights};

fn tiny() -> PgganConfig {
    PgganConfig {
        latent: 32,
        resolution: 16,
        aspect: 2,
        base_channels: 16,
        full_channel_levels: 1,
        min_channels: 4,
    }
}

#[test]
fn shapes_follow_the_growth_schedule() {
    let config = tiny();
    let device = cpu();
    let g = Generator::new(&config, &device);
    let d = Discriminator::new(&config, &device);
    let z = Tensor::<2>::random([3, config.latent], Distribution::Normal(0.0, 1.0), &device);
    for level in 0..config.levels() {
        for alpha in [0.5, 1.0] {
            let stage = Stage { level, alpha };
            let images = g.forward(z.clone(), stage);
            assert_eq!(images.dims(), [3, 3, 4 << level, 8 << level]);
            let [b, _, h, w] = images.dims();
            let masks = Tensor::<4>::ones([b, 1, h, w], &device);
            let input = discriminator_input(images, masks);
            assert_eq!(input.dims(), [3, DISCRIMINATOR_INPUTS, h, w]);
            assert_eq!(d.forward(input, stage).dims(), [3, 1]);
        }
    }
    assert_eq!(config.levels(), 3);
}

#[test]
fn the_generator_gives_its_reference_outputs_on_cpu_and_wgpu() {
    // A missing adapter must fail this tier, never skip it.
    let (gpu, info) =
        ganfit::device::gpu().expect("the wgpu test tier needs an adapter (lavapipe in CI)");
    for (device, name, tolerance) in [
        (cpu(), "cpu".to_string(), 1e-4),
        (gpu, info.to_string(), 1e-3),
    ] {
        let generator = golden::generator(&device);
        for (stage, expected) in golden::stages().into_iter().zip(golden::EXPECTED) {
            let (values, _) =
                read_floats_blocking(generator.forward(golden::latents(&device), stage)).unwrap();
            let probe = golden::probe(&values);
            let gap = golden::max_gap(&probe, expected);
            assert!(
                gap < tolerance,
                "{name}, {stage:?}: off by {gap}; it gives\n{probe:?}"
            );
        }
    }
}

/// Smooth random colour fields, 32×16 (a 2:1 atlas), written as a corpus.
fn synthetic_corpus(dir: &Path, count: usize) {
    let mut rng = ganfit::util::rng::SplitMix64::new(9);
    let mut entries = Vec::new();
    for i in 0..count {
        let (a, b, c) = (rng.uniform(), rng.uniform(), rng.uniform());
        let img = image::RgbImage::from_fn(32, 16, |x, y| {
            let (x, y) = (x as f32 / 31.0, y as f32 / 15.0);
            image::Rgb([
                (255.0 * (a * x + (1.0 - a) * y)) as u8,
                (255.0 * b) as u8,
                (255.0 * c * x * y) as u8,
            ])
        });
        let id = format!("s{i:03}");
        img.save(dir.join(format!("{id}.png"))).unwrap();
        image::GrayImage::from_pixel(32, 16, image::Luma([255]))
            .save(dir.join(format!("{id}_mask.png")))
            .unwrap();
        entries.push(Entry {
            id,
            source: "synthetic".into(),
            coverage: 1.0,
            landmark_error: 0.0,
            yaw: 0.0,
            identity: None,
        });
    }
    let index = Index {
        resolution: 16,
        aspect: 2,
        entries,
        rejected: vec![],
    };
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
}

#[test]
fn trains_resumes_and_writes_a_loadable_generator() {
    let tmp = std::env::temp_dir().join(format!("ganfit-gan-test-{}", std::process::id()));
    let corpus_dir = tmp.join("corpus");
    std::fs::create_dir_all(&corpus_dir).unwrap();
    synthetic_corpus(&corpus_dir, 24);
    let corpus = Corpus::open(&corpus_dir, Split::All).unwrap();
    let device = cpu();
    let options = TrainOptions {
        config: tiny(),
        minutes: 0.15,
        batch: vec![8],
        checkpoint_minutes: 0.05,
        ..Default::default()
    };
    let files = RunFiles::new(&tmp.join("generator.bpk"));
    let mut lines = Vec::new();
    let progress = train(&corpus, &device, options.clone(), &files, None, |l| {
        lines.push(l.to_string())
    })
    .unwrap();
    assert!(progress.steps > 5, "only {} steps", progress.steps);
    assert_eq!(
        progress.stage,
        Stage {
            level: 2,
            alpha: 1.0
        }
    );
    assert!(progress.last_losses.0.is_finite() && progress.last_losses.1.is_finite());
    assert!(files.generator.exists() && files.checkpoint.join("progress.json").exists());
    assert!(std::fs::read_dir(&files.checkpoint).unwrap().any(|e| {
        e.unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with("samples_")
    }));

    // Resume for a little longer: the step count continues.
    let more = TrainOptions {
        minutes: progress.minutes_done + 0.05,
        ..options
    };
    let resumed = train(
        &corpus,
        &device,
        more,
        &files,
        Some(&files.checkpoint),
        |_| {},
    )
    .unwrap();
    assert!(resumed.steps > progress.steps);

    // The deliverable loads and generates finite images in [-1.5, 1.5].
    let bytes = std::fs::read(&files.generator).unwrap();
    let g = weights::load_generator(bytes.clone(), &device, "generator.bpk").unwrap();
    let z = Tensor::<2>::random([2, 32], Distribution::Normal(0.0, 1.0), &device);
    let (values, _) = read_floats_blocking(g.forward(z, Stage::full(&tiny()))).unwrap();
    assert!(values.iter().all(|v| v.is_finite()));

    // Truncated and foreign files are refused with the file named.
    let err =
        weights::load_generator(bytes[..bytes.len() / 2].to_vec(), &device, "cut.bpk").unwrap_err();
    assert!(err.to_string().contains("cut.bpk"), "{err}");
    let err = weights::load_generator(b"not a model".to_vec(), &device, "junk.bin").unwrap_err();
    assert!(err.to_string().contains("junk.bin"), "{err}");
    // A checkpoint of another configuration is refused.
    let other = TrainOptions {
        config: PgganConfig {
            latent: 16,
            ..tiny()
        },
        minutes: 1.0,
        ..Default::default()
    };
    let err = train(
        &corpus,
        &device,
        other,
        &files,
        Some(&files.checkpoint),
        |_| {},
    )
    .err()
    .unwrap();
    assert!(err.to_string().contains("progress.json"), "{err}");
    std::fs::remove_dir_all(&tmp).ok();
}

#[test]
fn latent_fitting_stays_on_the_sphere_and_approaches_a_generated_texture() {
    use ganfit::texture::latent::{LatentFitOptions, fit_texels, sphere_rows};
    use ganfit::texture::model::TextureModel;
    let device = cpu();
    let config = golden::config();
    // Seeded weights: the same problem every run.
    let model = TextureModel::Gan(golden::generator(&device));
    let mut rng = ganfit::util::rng::SplitMix64::new(21);
    let truth = sphere_rows(2, config.latent, &mut rng, &device);
    let target = model.uv_map(truth).unwrap();
    let l1 = |params: Tensor<2>| {
        let map = model.uv_map(params).unwrap();
        read_floats_blocking((map - target.clone()).abs().mean())
            .unwrap()
            .0[0]
    };
    let start = model.start().unwrap();
    assert_eq!(start.dims(), [1, config.latent]);
    let fit = |steps| {
        let options = LatentFitOptions {
            steps,
            learning_rate: 0.1,
            starts: 4,
            ..Default::default()
        };
        let weight = Tensor::<4>::ones([2, 16, 32, 1], &device);
        ganfit::device::block_on(fit_texels(
            &model,
            |p| model.uv_map(p),
            target.clone(),
            weight,
            &options,
        ))
        .unwrap()
    };
    let (best_start, fitted) = (fit(0), fit(300));
    for rows in [fitted.clone(), start] {
        let (norms, _) = read_floats_blocking(rows.powi_scalar(2).sum_dim(1)).unwrap();
        for n in norms {
            assert!((n - config.latent as f32).abs() < 1e-2, "squared norm {n}");
        }
    }
    let (before, after) = (l1(best_start), l1(fitted));
    assert!(
        after < 0.5 * before,
        "fitted {after}, its best start {before}"
    );
}

/// Masked training learns what the masks show: on textures of one colour plus noise, seen
/// through random masks, the generator's mean colour reaches the corpus's (it starts far off).
#[test]
fn masked_training_learns_the_colour_the_masks_show() {
    use ganfit::texture::train::Trainer;
    let config = PgganConfig {
        latent: 32,
        resolution: 8,
        aspect: 2,
        base_channels: 32,
        full_channel_levels: 2,
        min_channels: 16,
    };
    let options = TrainOptions {
        config: config.clone(),
        augment: false,
        r1_gamma: 0.1,
        ..TrainOptions::default()
    };
    let mut trainer = Trainer::new(options, &cpu()).unwrap();
    let ad = trainer.device().clone();
    let stage = Stage {
        level: 0,
        alpha: 1.0,
    };
    let target = [0.6f32, 0.0, -0.2];
    let colour = || {
        Tensor::<4>::from_data(
            burn::tensor::TensorData::new(target.to_vec(), [1, 3, 1, 1]),
            &ad,
        )
        .repeat_dim(0, 16)
        .repeat_dim(2, 4)
        .repeat_dim(3, 8)
    };
    let mean_colour = |trainer: &Trainer| {
        let z = Tensor::<2>::random([64, 32], Distribution::Normal(0.0, 1.0), &ad);
        let images = trainer.generator.forward(z, stage);
        read_floats_blocking(images.mean_dim(0).mean_dim(2).mean_dim(3).reshape([3]))
            .unwrap()
            .0
    };
    let gap = |m: &[f32]| {
        m.iter()
            .zip(target)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max)
    };
    let before = gap(&mean_colour(&trainer));
    for step in 0..300u64 {
        let real =
            colour() + Tensor::<4>::random([16, 3, 4, 8], Distribution::Normal(0.0, 0.05), &ad);
        let masks = Tensor::<4>::random([16, 1, 4, 8], Distribution::Uniform(0.2, 1.0), &ad);
        trainer.step(real, masks, stage, step);
    }
    let after = mean_colour(&trainer);
    assert!(
        gap(&after) < 0.08 && gap(&after) < before / 2.0,
        "mean colour {after:?}, the corpus's {target:?} (off by {before} before training)"
    );
}
