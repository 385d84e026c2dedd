//! `ganfit bench gan`: what a texture-GAN training step costs at each growth level, and what
//! the trained generator costs the fitter.

use burn::tensor::{Distribution, Tensor};
use ganfit::Result;
use ganfit::texture::pggan::{PgganConfig, Stage};
use ganfit::texture::train::{TrainOptions, Trainer};

use crate::common::Backend;
use crate::common::time_ms;

pub fn run(devices: Vec<Backend>, config: PgganConfig, batch: usize, repeat: usize) -> Result<()> {
    config.validate().map_err(ganfit::Error::Invalid)?;
    for (_, device) in crate::common::open_devices(devices, &[Backend::Cpu]) {
        let levels: Vec<usize> = (0..config.levels()).map(|l| config.channels(l)).collect();
        println!(
            "gan config: {}x{} latent {} channels {levels:?}",
            config.resolution * config.aspect,
            config.resolution,
            config.latent
        );
        let options = TrainOptions {
            config: config.clone(),
            ..TrainOptions::default()
        };
        let interval = options.r1_interval.max(1) as u64;
        let mut trainer = Trainer::new(options, &device)?;
        let ad = trainer.device().clone();
        for level in 0..config.levels() {
            // Mid fade-in: both the new block and the skip path run, the costliest moment.
            let stage = Stage {
                level,
                alpha: if level == 0 { 1.0 } else { 0.5 },
            };
            let r = stage.resolution();
            let real = Tensor::<4>::random(
                [batch, 3, r, r * config.aspect],
                Distribution::Uniform(-1.0, 1.0),
                &ad,
            );
            let masks = Tensor::<4>::random(
                [batch, 1, r, r * config.aspect],
                Distribution::Uniform(0.0, 1.0),
                &ad,
            );
            // Averaged over one lazy-R1 interval, as training runs it.
            let mut step = 0u64;
            let ms = time_ms(&ad, interval as usize, || {
                let losses = trainer.step(real.clone(), masks.clone(), stage, step);
                step += 1;
                let _ = losses.discriminator.into_data();
                Ok(())
            })?;
            println!(
                "gan step {}x{} batch {batch}: {ms:.1} ms ({:.2} ms per image)",
                r * config.aspect,
                r,
                ms / batch as f64
            );
        }
        let full = Stage::full(&config);
        let generator = trainer.average;
        let forward = time_ms(&device, repeat, || {
            let z =
                Tensor::<2>::random([1, config.latent], Distribution::Normal(0.0, 1.0), &device);
            let _ = generator.forward(z, full).into_data();
            Ok(())
        })?;
        println!("gan generator forward, batch 1: {forward:.1} ms");
    }
    Ok(())
}
