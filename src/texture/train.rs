//! Training the UV texture GAN (native only): progressive growth on a time budget, resumable,
//! with sample grids and NaN protection.
//!
//! Loss: the non-saturating logistic GAN loss with an R1 penalty on real images (Mescheder et
//! al. 2018) and PGGAN's small drift term. burn's autodiff is first-order, so R1's
//! E‖∇D(x)‖² is estimated by a finite difference along a Gaussian direction u:
//! E_u[((D(x + hu) − D(x)) / h)²] = ‖∇D(x)‖² + O(h), which needs first-order gradients only.

use std::path::{Path, PathBuf};

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::activation::softplus;
use burn::tensor::module::avg_pool2d;
use burn::tensor::ops::AvgPoolOptions;
use burn::tensor::{Device, Distribution, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use super::corpus::Corpus;
use super::pggan::{Discriminator, Generator, PgganConfig, Stage};
use super::weights;
use crate::error::{Error, Result};
use crate::util::clock::now_ms;
use crate::util::rng::SplitMix64;

/// Training settings (`ganfit texture train`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainOptions {
    pub config: PgganConfig,
    /// Wall-clock budget for the whole growth schedule.
    pub minutes: f64,
    /// Images per batch at each level (4×4 first); the last entry repeats.
    pub batch: Vec<usize>,
    pub learning_rate: f64,
    /// R1 weight γ (penalty γ/2 · ‖∇D‖²).
    pub r1_gamma: f32,
    /// Finite-difference step of the R1 estimate, in image units ([-1, 1] range).
    pub r1_step: f32,
    /// Weight of PGGAN's drift term ε · D(x)².
    pub drift: f32,
    /// Generator weight averaging: ema ← β·ema + (1−β)·G per step.
    pub ema_beta: f32,
    pub seed: u64,
    /// Minutes between checkpoints and sample grids.
    pub checkpoint_minutes: f64,
}

impl Default for TrainOptions {
    fn default() -> Self {
        Self {
            config: PgganConfig::default(),
            minutes: 30.0,
            batch: vec![64, 64, 64, 32, 32, 16, 8],
            learning_rate: 1e-3,
            r1_gamma: 10.0,
            r1_step: 0.02,
            drift: 1e-3,
            ema_beta: 0.999,
            seed: 1,
            checkpoint_minutes: 2.0,
        }
    }
}

/// Where training stands; saved with every checkpoint.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Progress {
    pub options: TrainOptions,
    /// Minutes of training done so far (across resumptions).
    pub minutes_done: f64,
    pub steps: u64,
    pub images_shown: u64,
    pub stage: Stage,
    pub last_losses: (f32, f32),
}

/// Fraction of the budget each level gets: fade-in and stabilisation halves; bigger levels
/// cost more per image, so they get more time.
fn schedule(levels: usize, fraction: f64) -> Stage {
    let weights: Vec<f64> = (0..levels).map(|l| 1.0 + l as f64).collect();
    let total: f64 = weights.iter().sum();
    let mut start = 0.0;
    for (level, w) in weights.iter().enumerate() {
        let span = w / total;
        if fraction < start + span || level + 1 == levels {
            let local = ((fraction - start) / span).clamp(0.0, 1.0);
            // Level 0 has nothing to fade from.
            let alpha = if level == 0 { 1.0 } else { (local * 2.0).min(1.0) as f32 };
            return Stage { level, alpha };
        }
        start += span;
    }
    Stage { level: levels - 1, alpha: 1.0 }
}

/// Real images at the stage's resolution, blended between levels during fade-in as PGGAN does
/// (so real and fake images go through the same transition).
fn real_at_stage(images: Tensor<4>, full: usize, stage: Stage) -> Tensor<4> {
    let target = stage.resolution();
    let factor = full / target;
    let x = if factor > 1 { avg_pool2d(images, AvgPoolOptions::new([factor, factor])) } else { images };
    if stage.alpha < 1.0 && stage.level > 0 {
        let [b, c, h, w] = x.dims();
        let coarse = avg_pool2d(x.clone(), AvgPoolOptions::new([2, 2]));
        let coarse = coarse.reshape([b, c, h / 2, 1, w / 2, 1]).repeat_dim(3, 2).repeat_dim(5, 2).reshape([b, c, h, w]);
        coarse * (1.0 - stage.alpha) + x * stage.alpha
    } else {
        x
    }
}

/// Collects parameter tensors by id (for the generator's moving average).
struct Collect(std::collections::HashMap<ParamId, Tensor<1>>);

impl ModuleVisitor for Collect {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let t = param.val().inner();
        let n = t.shape().num_elements();
        self.0.insert(param.id, t.reshape([n]));
    }
}

struct Blend<'a> {
    current: &'a std::collections::HashMap<ParamId, Tensor<1>>,
    beta: f32,
}

impl ModuleMapper for Blend<'_> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let id = param.id;
        let beta = self.beta;
        match self.current.get(&id) {
            Some(now) => {
                let now = now.clone();
                param.map(move |ema| {
                    let dims = ema.dims();
                    (ema * beta + now.reshape(dims) * (1.0 - beta)).detach()
                })
            }
            None => param,
        }
    }
}

fn check_finite(value: f32, what: &str) -> Result<()> {
    if value.is_finite() {
        Ok(())
    } else {
        Err(Error::Diverged(format!("{what} became {value}")))
    }
}

/// Files of a training run: `<out>` (the averaged generator, the deliverable) and
/// `<out>.ckpt/` (everything needed to resume).
pub struct RunFiles {
    pub generator: PathBuf,
    pub checkpoint: PathBuf,
}

impl RunFiles {
    pub fn new(out: &Path) -> Self {
        let mut checkpoint = out.as_os_str().to_owned();
        checkpoint.push(".ckpt");
        Self { generator: out.to_path_buf(), checkpoint: PathBuf::from(checkpoint) }
    }
}

/// Trains (or resumes) on `corpus`, writing checkpoints, sample grids and the final averaged
/// generator. `log` receives one line per report.
pub fn train(
    corpus: &Corpus,
    device: &Device,
    options: TrainOptions,
    files: &RunFiles,
    resume: Option<&Path>,
    mut log: impl FnMut(&str),
) -> Result<Progress> {
    options.config.validate().map_err(Error::Invalid)?;
    if corpus.resolution() != options.config.resolution || corpus.aspect() != options.config.aspect {
        return Err(Error::Invalid(format!(
            "corpus textures are {}x{}, the generator makes {}x{}",
            corpus.width(),
            corpus.resolution(),
            options.config.resolution * options.config.aspect,
            options.config.resolution
        )));
    }
    let ad = device.clone().autodiff();
    ad.seed(options.seed);
    let config = options.config.clone();
    let mut generator = Generator::new(&config, &ad);
    let mut discriminator = Discriminator::new(&config, &ad);
    let mut average = Generator::new(&config, device);
    let adam = AdamConfig::new().with_beta_1(0.0).with_beta_2(0.99).with_epsilon(1e-8);
    let mut opt_g = adam.init();
    let mut opt_d = adam.init();
    let mut progress = Progress {
        options: options.clone(),
        minutes_done: 0.0,
        steps: 0,
        images_shown: 0,
        stage: Stage { level: 0, alpha: 1.0 },
        last_losses: (0.0, 0.0),
    };
    if let Some(dir) = resume {
        let state = weights::load_checkpoint(dir, &config, &ad, device)?;
        generator = state.generator;
        discriminator = state.discriminator;
        average = state.average;
        opt_g = opt_g.load(dir.join("optim_g.bin")).map_err(|e| Error::model(dir.join("optim_g.bin").display().to_string(), e.to_string()))?;
        opt_d = opt_d.load(dir.join("optim_d.bin")).map_err(|e| Error::model(dir.join("optim_d.bin").display().to_string(), e.to_string()))?;
        progress = state.progress;
        progress.options.minutes = options.minutes;
        log(&format!("resumed at {:.1} min, step {}, level {} alpha {:.2}", progress.minutes_done, progress.steps, progress.stage.level, progress.stage.alpha));
    } else {
        // The average starts equal to the generator.
        let mut collect = Collect(Default::default());
        generator.visit(&mut collect);
        average = average.map(&mut Blend { current: &collect.0, beta: 0.0 });
    }
    let mut rng = SplitMix64::new(options.seed ^ progress.steps);
    let fixed_latents: Tensor<2> = Tensor::random([16, config.latent], Distribution::Normal(0.0, 1.0), device);
    let started = now_ms();
    let done_before = progress.minutes_done;
    let mut last_checkpoint = now_ms();
    let mut last_report = now_ms();
    let lr = options.learning_rate;
    let full = config.resolution;
    loop {
        let minutes = done_before + (now_ms() - started) / 60_000.0;
        if minutes >= options.minutes {
            break;
        }
        let stage = schedule(config.levels(), minutes / options.minutes);
        let batch = *options.batch.get(stage.level).or(options.batch.last()).unwrap_or(&8);
        let real = corpus.batch(batch, &mut rng, &ad)?;
        let real = real_at_stage(real, full, stage);

        // Discriminator step.
        let z = Tensor::random([batch, config.latent], Distribution::Normal(0.0, 1.0), &ad);
        let fake = generator.forward(z, stage).detach();
        let d_real = discriminator.forward(real.clone(), stage);
        let d_fake = discriminator.forward(fake, stage);
        let u = Tensor::random(real.dims(), Distribution::Normal(0.0, 1.0), &ad);
        let d_nudged = discriminator.forward(real + u * options.r1_step, stage);
        let r1 = ((d_nudged - d_real.clone()) / options.r1_step).powi_scalar(2).mean();
        let loss_d = softplus(d_fake, 1.0).mean() + softplus(-d_real.clone(), 1.0).mean()
            + r1 * (options.r1_gamma / 2.0)
            + d_real.powi_scalar(2).mean() * options.drift;
        let grads = GradientsParams::from_grads(loss_d.backward(), &discriminator);
        discriminator = opt_d.step(lr, discriminator, grads);

        // Generator step.
        let z = Tensor::random([batch, config.latent], Distribution::Normal(0.0, 1.0), &ad);
        let loss_g = softplus(-discriminator.forward(generator.forward(z, stage), stage), 1.0).mean();
        let grads = GradientsParams::from_grads(loss_g.backward(), &generator);
        generator = opt_g.step(lr, generator, grads);

        let mut collect = Collect(Default::default());
        generator.visit(&mut collect);
        average = average.map(&mut Blend { current: &collect.0, beta: options.ema_beta });
        progress.steps += 1;
        progress.images_shown += batch as u64;
        progress.stage = stage;

        let report_due = now_ms() - last_report > 20_000.0;
        let checkpoint_due = now_ms() - last_checkpoint > options.checkpoint_minutes * 60_000.0;
        if report_due || checkpoint_due {
            let (ld, lg) = (scalar(loss_d)?, scalar(loss_g)?);
            progress.last_losses = (ld, lg);
            progress.minutes_done = done_before + (now_ms() - started) / 60_000.0;
            log(&format!(
                "{:6.1} min  step {:6}  images {:8}  {}x{} alpha {:.2}  loss_d {:.4}  loss_g {:.4}",
                progress.minutes_done,
                progress.steps,
                progress.images_shown,
                stage.resolution(),
                stage.resolution(),
                stage.alpha,
                ld,
                lg
            ));
            // A NaN stops training; the last checkpoint on disk is the last good state.
            check_finite(ld, "the discriminator loss")?;
            check_finite(lg, "the generator loss")?;
            last_report = now_ms();
        }
        if checkpoint_due {
            save_all(files, &generator, &discriminator, &average, &opt_g, &opt_d, &progress, &fixed_latents)?;
            log(&format!("checkpoint written to {}", files.checkpoint.display()));
            last_checkpoint = now_ms();
        }
    }
    progress.minutes_done = done_before + (now_ms() - started) / 60_000.0;
    progress.stage = schedule(config.levels(), 1.0);
    save_all(files, &generator, &discriminator, &average, &opt_g, &opt_d, &progress, &fixed_latents)?;
    log(&format!("done: {} steps, {} images, {:.1} min", progress.steps, progress.images_shown, progress.minutes_done));
    Ok(progress)
}

fn scalar(t: Tensor<1>) -> Result<f32> {
    let (v, _) = crate::device::read_floats_blocking(t.detach())?;
    Ok(v[0])
}

#[allow(clippy::too_many_arguments)]
fn save_all(
    files: &RunFiles,
    generator: &Generator,
    discriminator: &Discriminator,
    average: &Generator,
    opt_g: &burn::optim::ModuleOptimizer,
    opt_d: &burn::optim::ModuleOptimizer,
    progress: &Progress,
    fixed_latents: &Tensor<2>,
) -> Result<()> {
    let dir = &files.checkpoint;
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    weights::save_checkpoint(dir, generator, discriminator, average, progress)?;
    opt_g.save(dir.join("optim_g.bin")).map_err(|e| Error::model(dir.join("optim_g.bin").display().to_string(), e.to_string()))?;
    opt_d.save(dir.join("optim_d.bin")).map_err(|e| Error::model(dir.join("optim_d.bin").display().to_string(), e.to_string()))?;
    // Only a fully grown generator is a usable texture model.
    let grown = progress.stage.level + 1 == generator.config().levels() && progress.stage.alpha >= 1.0;
    let samples = average.forward(fixed_latents.clone(), progress.stage);
    super::images::save_grid(samples, 4, &dir.join(format!("samples_{:07}.png", progress.steps)))?;
    if grown {
        weights::save_generator(average, &files.generator)?;
    }
    Ok(())
}

/// A deterministic batch of latents for evaluation and grids.
pub fn latents(count: usize, latent: usize, seed: u64, device: &Device) -> Tensor<2> {
    let mut rng = SplitMix64::new(seed);
    let values: Vec<f32> = (0..count * latent).map(|_| rng.normal()).collect();
    Tensor::from_data(TensorData::new(values, [count, latent]), device)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_grows_through_every_level_and_ends_fully_grown() {
        let levels = 7;
        let mut seen = vec![false; levels];
        let mut last = (0, 1.0f32);
        for i in 0..=1000 {
            let s = schedule(levels, i as f64 / 1000.0);
            assert!(s.level >= last.0, "levels never shrink");
            seen[s.level] = true;
            last = (s.level, s.alpha);
        }
        assert!(seen.iter().all(|&s| s));
        assert_eq!(schedule(levels, 1.0), Stage { level: levels - 1, alpha: 1.0 });
        assert!(schedule(levels, 0.3).alpha <= 1.0);
    }
}
