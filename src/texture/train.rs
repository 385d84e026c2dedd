//! Training the UV texture GAN (native only): progressive growth on a time budget, resumable,
//! with sample grids and NaN protection.
//!
//! Loss: the non-saturating logistic GAN loss with an R1 penalty on real images (Mescheder et
//! al. 2018) and PGGAN's small drift term. burn's autodiff is first-order, so R1's
//! E‖∇D(x)‖² is estimated by a central difference along a Gaussian direction u:
//! E_u[((D(x + hu) − D(x − hu)) / 2h)²] = ‖∇D(x)‖² + O(h²), which needs first-order gradients
//! only.
//!
//! The discriminator sees textures only where their photos saw them (see
//! [`DISCRIMINATOR_INPUTS`]): a real texture through its own mask, a fake through the mask of a
//! real one of the same batch; both through the same kind of differentiable augmentation
//! ([`super::augment`]) when it is on.

use std::path::{Path, PathBuf};

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::activation::softplus;
use burn::tensor::module::avg_pool2d;
use burn::tensor::ops::AvgPoolOptions;
use burn::tensor::{Device, Distribution, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use super::augment::Augment;
use super::corpus::Corpus;
use super::pggan::{
    DISCRIMINATOR_INPUTS, Discriminator, Generator, PgganConfig, Stage, discriminator_input,
};
use super::weights;
use crate::error::{Error, Result};
use crate::io::{burnpack, write_atomic};
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
    /// The R1 penalty is applied every this many steps, scaled up by the same factor (lazy
    /// regularisation, Karras et al. 2020): on the CPU it saves a third of the discriminator's
    /// work on the other steps.
    #[serde(default = "one")]
    pub r1_interval: usize,
    /// Weight of PGGAN's drift term ε · D(x)².
    pub drift: f32,
    /// Generator weight averaging: ema ← β·ema + (1−β)·G per step.
    pub ema_beta: f32,
    /// Ramp-up of the average: its half-life is at most this fraction of the images shown so
    /// far (StyleGAN2-ADA's 0.05), so early on it follows the generator instead of holding the
    /// random start; 0 turns the ramp off.
    #[serde(default = "ema_rampup")]
    pub ema_rampup: f32,
    /// Differentiable augmentation (translation, cutout) of what the discriminator sees.
    #[serde(default = "yes")]
    pub augment: bool,
    /// Colour augmentation too (DiffAugment's brightness, saturation, contrast). Off by
    /// default: it lets the generator's colours drift within the augmented range, and colour
    /// is what a texture prior is for (a 100-minute CPU run with it collapsed to green
    /// textures; see `masked_training_learns_the_colour_the_masks_show` for the mechanism).
    #[serde(default)]
    pub augment_colour: bool,
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
            r1_gamma: r1_gamma_heuristic(&PgganConfig::default(), 8),
            r1_step: 0.02,
            r1_interval: 4,
            drift: 1e-3,
            ema_beta: 0.999,
            ema_rampup: ema_rampup(),
            augment: true,
            augment_colour: false,
            seed: 1,
            checkpoint_minutes: 2.0,
        }
    }
}

fn one() -> usize {
    1
}

fn yes() -> bool {
    true
}

fn ema_rampup() -> f32 {
    0.05
}

/// StyleGAN2-ADA's R1 weight for a final image of the config's size and a batch: 2·10⁻⁴ per
/// texel per image in the batch.
pub fn r1_gamma_heuristic(config: &PgganConfig, batch: usize) -> f32 {
    2e-4 * (config.resolution * config.resolution * config.aspect) as f32 / batch.max(1) as f32
}

/// The average's decay for a step of `batch` images after `images_shown`: `beta`, or less while
/// the ramp-up caps its half-life.
pub fn ema_beta_at(beta: f32, rampup: f32, images_shown: u64, batch: usize) -> f32 {
    if rampup <= 0.0 {
        return beta;
    }
    let half_life = (rampup as f64 * images_shown as f64).max(batch as f64);
    beta.min(0.5f64.powf(batch as f64 / half_life) as f32)
}

/// What the discriminator sees of textures `[B, 3, H, W]` through masks `[B, 1, H, W]`,
/// augmented by `augment` (colour on the texture; translation and cutout on texture and mask
/// alike; the position channels stay put).
fn seen_through(images: Tensor<4>, masks: Tensor<4>, augment: Option<&Augment>) -> Tensor<4> {
    let Some(augment) = augment else {
        return discriminator_input(images, masks);
    };
    let input = discriminator_input(augment.colour(images, masks.clone()), masks);
    let [b, c, h, w] = input.dims();
    let texels = augment.geometry(input.clone().slice([0..b, 0..4, 0..h, 0..w]));
    Tensor::cat(vec![texels, input.slice([0..b, 4..c, 0..h, 0..w])], 1)
}

/// Where training stands; saved with every checkpoint.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainingProgress {
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
            let alpha = if level == 0 {
                1.0
            } else {
                (local * 2.0).min(1.0) as f32
            };
            return Stage { level, alpha };
        }
        start += span;
    }
    Stage {
        level: levels - 1,
        alpha: 1.0,
    }
}

/// Real images at the stage's resolution, blended between levels during fade-in as PGGAN does
/// (so real and fake images go through the same transition).
fn real_at_stage(images: Tensor<4>, full: usize, stage: Stage) -> Tensor<4> {
    let target = stage.resolution();
    let factor = full / target;
    let x = if factor > 1 {
        avg_pool2d(images, AvgPoolOptions::new([factor, factor]))
    } else {
        images
    };
    if stage.alpha < 1.0 && stage.level > 0 {
        let [b, c, h, w] = x.dims();
        let coarse = avg_pool2d(x.clone(), AvgPoolOptions::new([2, 2]));
        let coarse = coarse
            .reshape([b, c, h / 2, 1, w / 2, 1])
            .repeat_dim(3, 2)
            .repeat_dim(5, 2)
            .reshape([b, c, h, w]);
        coarse * (1.0 - stage.alpha) + x * stage.alpha
    } else {
        x
    }
}

/// The generator's parameter tensors in visiting order. The average is matched to them by
/// position, not by `ParamId`: a freshly built or reloaded average has ids of its own.
struct Collect(Vec<Tensor<1>>);

impl ModuleVisitor for Collect {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let t = param.val().inner();
        let n = t.shape().num_elements();
        self.0.push(t.reshape([n]));
    }
}

/// ema ← β·ema + (1−β)·current, parameter by parameter in visiting order.
struct Blend<'a> {
    current: &'a [Tensor<1>],
    next: usize,
    beta: f32,
}

impl ModuleMapper for Blend<'_> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let beta = self.beta;
        let now = self.current[self.next].clone();
        self.next += 1;
        param.map(move |ema| {
            let dims = ema.dims();
            (ema * beta + now.reshape(dims) * (1.0 - beta)).detach()
        })
    }
}

/// Moves `average` towards `generator` (same configuration) by `1 − beta`.
fn blend(average: Generator, generator: &Generator, beta: f32) -> Generator {
    let mut collect = Collect(Vec::new());
    generator.visit(&mut collect);
    average.map(&mut Blend {
        current: &collect.0,
        next: 0,
        beta,
    })
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
        Self {
            generator: out.to_path_buf(),
            checkpoint: PathBuf::from(checkpoint),
        }
    }
}

/// The networks and optimiser state of a training run, and one training step.
pub struct Trainer {
    pub generator: Generator,
    pub discriminator: Discriminator,
    /// The weight average of the generator (on the plain device): the deliverable.
    pub average: Generator,
    opt_g: ModuleOptimizer,
    opt_d: ModuleOptimizer,
    options: TrainOptions,
    /// The autodiff device the generator and discriminator train on.
    device: Device,
}

/// Both losses of a step (tensors: read them only when reporting, reading synchronises).
pub struct StepLosses {
    pub discriminator: Tensor<1>,
    pub generator: Tensor<1>,
}

impl Trainer {
    /// Fresh networks (seeded by `options.seed`) on `device`'s autodiff twin.
    pub fn new(options: TrainOptions, device: &Device) -> Result<Self> {
        options.config.validate().map_err(Error::Invalid)?;
        let ad = device.clone().autodiff();
        ad.seed(options.seed);
        let generator = Generator::new(&options.config, &ad);
        let discriminator = Discriminator::new(&options.config, &ad);
        // The average starts equal to the generator.
        let average = blend(Generator::new(&options.config, device), &generator, 0.0);
        let (opt_g, opt_d) = (adam().init(), adam().init());
        Ok(Self {
            generator,
            discriminator,
            average,
            opt_g,
            opt_d,
            options,
            device: ad,
        })
    }

    /// Networks and optimiser state from a checkpoint folder written by [`Trainer::save`].
    pub fn resume(
        options: TrainOptions,
        dir: &Path,
        device: &Device,
    ) -> Result<(Self, TrainingProgress)> {
        options.config.validate().map_err(Error::Invalid)?;
        let ad = device.clone().autodiff();
        let state = load_checkpoint(dir, &options.config, &ad, device)?;
        let load = |file: &str| {
            let path = dir.join(file);
            adam()
                .init()
                .load(path.clone())
                .map_err(|e| Error::model(path.display().to_string(), e.to_string()))
        };
        let trainer = Self {
            generator: state.generator,
            discriminator: state.discriminator,
            average: state.average,
            opt_g: load("optim_g.bin")?,
            opt_d: load("optim_d.bin")?,
            options,
            device: ad,
        };
        Ok((trainer, state.progress))
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// One discriminator step and one generator step on `real` textures `[B, 3, R, aR]` with
    /// their `masks` `[B, 1, R, aR]` (both at `stage`'s resolution, on the autodiff device),
    /// then the weight average. `step` (the running step count) decides whether this step
    /// carries the lazy R1 penalty and seeds the augmentation.
    pub fn step(
        &mut self,
        real: Tensor<4>,
        masks: Tensor<4>,
        stage: Stage,
        step: u64,
    ) -> StepLosses {
        let options = &self.options;
        let [batch, _, h, w] = real.dims();
        let latent = options.config.latent;
        let lr = options.learning_rate;
        let mut rng =
            SplitMix64::new(options.seed ^ (step + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let mut augment = || {
            options
                .augment
                .then(|| Augment::draw(batch, h, w, options.augment_colour, &mut rng))
        };

        let z = Tensor::random(
            [batch, latent],
            Distribution::Normal(0.0, 1.0),
            &self.device,
        );
        let fake = self.generator.forward(z, stage).detach();
        let real_seen = seen_through(real.clone(), masks.clone(), augment().as_ref());
        let fake_seen = seen_through(fake, masks.clone(), augment().as_ref());
        let d_real = self.discriminator.forward(real_seen, stage);
        let d_fake = self.discriminator.forward(fake_seen, stage);
        let mut loss_d = softplus(d_fake, 1.0).mean()
            + softplus(-d_real.clone(), 1.0).mean()
            + d_real.powi_scalar(2).mean() * options.drift;
        let interval = options.r1_interval.max(1);
        if step.is_multiple_of(interval as u64) {
            // On the unaugmented real input, along a direction in its texture channels.
            let input = discriminator_input(real, masks.clone());
            let u = Tensor::random(
                [batch, 3, h, w],
                Distribution::Normal(0.0, 1.0),
                &self.device,
            );
            let u = Tensor::cat(
                vec![
                    u,
                    Tensor::zeros([batch, DISCRIMINATOR_INPUTS - 3, h, w], &self.device),
                ],
                1,
            ) * options.r1_step;
            let d_plus = self.discriminator.forward(input.clone() + u.clone(), stage);
            let d_minus = self.discriminator.forward(input - u, stage);
            let r1 = ((d_plus - d_minus) / (2.0 * options.r1_step))
                .powi_scalar(2)
                .mean();
            loss_d = loss_d + r1 * (options.r1_gamma / 2.0 * interval as f32);
        }
        let grads = GradientsParams::from_grads(loss_d.backward(), &self.discriminator);
        self.discriminator = self.opt_d.step(lr, self.discriminator.clone(), grads);

        let z = Tensor::random(
            [batch, latent],
            Distribution::Normal(0.0, 1.0),
            &self.device,
        );
        let fake_seen = seen_through(self.generator.forward(z, stage), masks, augment().as_ref());
        let loss_g = softplus(-self.discriminator.forward(fake_seen, stage), 1.0).mean();
        let grads = GradientsParams::from_grads(loss_g.backward(), &self.generator);
        self.generator = self.opt_g.step(lr, self.generator.clone(), grads);

        let beta = ema_beta_at(
            options.ema_beta,
            options.ema_rampup,
            step * batch as u64,
            batch,
        );
        self.average = blend(self.average.clone(), &self.generator, beta);
        StepLosses {
            discriminator: loss_d.detach(),
            generator: loss_g.detach(),
        }
    }

    /// Writes the checkpoint folder, a sample grid of the average at `progress.stage`, and —
    /// once fully grown — the generator file.
    pub fn save(
        &self,
        files: &RunFiles,
        progress: &TrainingProgress,
        fixed_latents: &Tensor<2>,
    ) -> Result<()> {
        let dir = &files.checkpoint;
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        save_checkpoint(
            dir,
            &self.generator,
            &self.discriminator,
            &self.average,
            progress,
        )?;
        let save = |opt: &ModuleOptimizer, file: &str| {
            let path = dir.join(file);
            opt.save(path.clone())
                .map_err(|e| Error::model(path.display().to_string(), e.to_string()))
        };
        save(&self.opt_g, "optim_g.bin")?;
        save(&self.opt_d, "optim_d.bin")?;
        // Only a fully grown generator is a usable texture model.
        let grown =
            progress.stage.level + 1 == self.options.config.levels() && progress.stage.alpha >= 1.0;
        let samples = self.average.forward(fixed_latents.clone(), progress.stage);
        super::images::save_grid(
            samples,
            4,
            &dir.join(format!("samples_{:07}.png", progress.steps)),
        )?;
        if grown {
            weights::save_generator(&self.average, &files.generator)?;
        }
        Ok(())
    }
}

/// PGGAN's Adam: no momentum, fast second-moment decay.
fn adam() -> AdamConfig {
    AdamConfig::new()
        .with_beta_1(0.0)
        .with_beta_2(0.99)
        .with_epsilon(1e-8)
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
) -> Result<TrainingProgress> {
    options.config.validate().map_err(Error::Invalid)?;
    if corpus.resolution() != options.config.resolution || corpus.aspect() != options.config.aspect
    {
        return Err(Error::Invalid(format!(
            "corpus textures are {}x{}, the generator makes {}x{}",
            corpus.width(),
            corpus.resolution(),
            options.config.resolution * options.config.aspect,
            options.config.resolution
        )));
    }
    let config = options.config.clone();
    let (mut trainer, mut progress) = match resume {
        Some(dir) => {
            let (trainer, mut progress) = Trainer::resume(options.clone(), dir, device)?;
            progress.options.minutes = options.minutes;
            log(&format!(
                "resumed at {:.1} min, step {}, level {} alpha {:.2}",
                progress.minutes_done, progress.steps, progress.stage.level, progress.stage.alpha
            ));
            (trainer, progress)
        }
        None => {
            let progress = TrainingProgress {
                options: options.clone(),
                minutes_done: 0.0,
                steps: 0,
                images_shown: 0,
                stage: Stage {
                    level: 0,
                    alpha: 1.0,
                },
                last_losses: (0.0, 0.0),
            };
            (Trainer::new(options.clone(), device)?, progress)
        }
    };
    let ad = trainer.device().clone();
    let mut rng = SplitMix64::new(options.seed ^ progress.steps);
    let fixed_latents = latents(16, config.latent, options.seed, device);
    let started = now_ms();
    let done_before = progress.minutes_done;
    let mut last_checkpoint = now_ms();
    let mut last_report = now_ms();
    let full = config.resolution;
    loop {
        let minutes = done_before + (now_ms() - started) / 60_000.0;
        if minutes >= options.minutes {
            break;
        }
        let stage = schedule(config.levels(), minutes / options.minutes);
        let batch = *options
            .batch
            .get(stage.level)
            .or(options.batch.last())
            .unwrap_or(&8);
        let (real, masks) = corpus.batch(batch, &mut rng, &ad)?;
        let real = real_at_stage(real, full, stage);
        let masks = real_at_stage(masks, full, stage);
        let losses = trainer.step(real, masks, stage, progress.steps);
        progress.steps += 1;
        progress.images_shown += batch as u64;
        progress.stage = stage;

        let report_due = now_ms() - last_report > 20_000.0;
        let checkpoint_due = now_ms() - last_checkpoint > options.checkpoint_minutes * 60_000.0;
        if report_due || checkpoint_due {
            let (ld, lg) = (scalar(losses.discriminator)?, scalar(losses.generator)?);
            progress.last_losses = (ld, lg);
            progress.minutes_done = done_before + (now_ms() - started) / 60_000.0;
            log(&format!(
                "{:6.1} min  step {:6}  images {:8}  {}x{} alpha {:.2}  loss_d {:.4}  loss_g {:.4}",
                progress.minutes_done,
                progress.steps,
                progress.images_shown,
                stage.resolution() * config.aspect,
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
            trainer.save(files, &progress, &fixed_latents)?;
            log(&format!(
                "checkpoint written to {}",
                files.checkpoint.display()
            ));
            last_checkpoint = now_ms();
        }
    }
    progress.minutes_done = done_before + (now_ms() - started) / 60_000.0;
    progress.stage = schedule(config.levels(), 1.0);
    trainer.save(files, &progress, &fixed_latents)?;
    log(&format!(
        "done: {} steps, {} images, {:.1} min",
        progress.steps, progress.images_shown, progress.minutes_done
    ));
    Ok(progress)
}

fn scalar(t: Tensor<1>) -> Result<f32> {
    let (v, _) = crate::device::read_floats_blocking(t.detach())?;
    Ok(v[0])
}

/// A deterministic batch of latents for evaluation and grids.
pub fn latents(count: usize, latent: usize, seed: u64, device: &Device) -> Tensor<2> {
    let mut rng = SplitMix64::new(seed);
    let values: Vec<f32> = (0..count * latent).map(|_| rng.normal()).collect();
    Tensor::from_data(TensorData::new(values, [count, latent]), device)
}

/// A training run's state on disk: the three networks and where training stands.
pub struct Checkpoint {
    pub generator: Generator,
    pub discriminator: Discriminator,
    pub average: Generator,
    pub progress: TrainingProgress,
}

pub fn save_checkpoint(
    dir: &Path,
    generator: &Generator,
    discriminator: &Discriminator,
    average: &Generator,
    progress: &TrainingProgress,
) -> Result<()> {
    let config =
        serde_json::to_string(generator.config()).map_err(|e| Error::Invalid(e.to_string()))?;
    let meta = [(weights::CONFIG_KEY, config)];
    write_atomic(
        &dir.join("generator.bpk"),
        &burnpack::write(generator, false, &meta, "generator")?,
    )?;
    write_atomic(
        &dir.join("discriminator.bpk"),
        &burnpack::write(discriminator, false, &meta, "discriminator")?,
    )?;
    write_atomic(
        &dir.join("average.bpk"),
        &burnpack::write(average, false, &meta, "average")?,
    )?;
    let json = serde_json::to_vec_pretty(progress).map_err(|e| Error::Invalid(e.to_string()))?;
    write_atomic(&dir.join("progress.json"), &json)
}

/// Loads a checkpoint written by [`save_checkpoint`]; the configuration must match.
pub fn load_checkpoint(
    dir: &Path,
    config: &PgganConfig,
    train_device: &Device,
    device: &Device,
) -> Result<Checkpoint> {
    let read = |name: &str| {
        let path = dir.join(name);
        std::fs::read(&path).map_err(|e| Error::io(&path, e))
    };
    let progress_path = dir.join("progress.json");
    let progress: TrainingProgress = serde_json::from_slice(&read("progress.json")?)
        .map_err(|e| Error::model(progress_path.display().to_string(), e.to_string()))?;
    if &progress.options.config != config {
        return Err(Error::model(
            progress_path.display().to_string(),
            format!(
                "checkpoint was trained with {:?}, not {:?}",
                progress.options.config, config
            ),
        ));
    }
    let name = |f: &str| dir.join(f).display().to_string();
    Ok(Checkpoint {
        generator: weights::from_bytes(
            Generator::new(config, train_device),
            read("generator.bpk")?,
            &name("generator.bpk"),
        )?,
        discriminator: weights::from_bytes(
            Discriminator::new(config, train_device),
            read("discriminator.bpk")?,
            &name("discriminator.bpk"),
        )?,
        average: weights::from_bytes(
            Generator::new(config, device),
            read("average.bpk")?,
            &name("average.bpk"),
        )?,
        progress,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A generator and discriminator small enough for unit tests.
    fn tiny() -> PgganConfig {
        PgganConfig {
            latent: 16,
            resolution: 8,
            aspect: 2,
            base_channels: 8,
            full_channel_levels: 2,
            min_channels: 4,
        }
    }

    #[test]
    fn the_discriminator_sees_nothing_of_what_the_masks_hide() {
        // Two batches that differ only where the masks are 0 look the same to the
        // discriminator, augmented (same draw) or not.
        let config = tiny();
        let device = crate::device::cpu();
        let d = Discriminator::new(&config, &device);
        let mut rng = SplitMix64::new(5);
        let texels = 8 * 16;
        let mask: Vec<f32> = (0..2 * texels)
            .map(|i| if i % 16 < 9 { rng.uniform() } else { 0.0 })
            .collect();
        let a: Vec<f32> = (0..2 * 3 * texels)
            .map(|_| rng.uniform() * 2.0 - 1.0)
            .collect();
        // NCHW: value i is image i / (3·texels), texel i % texels.
        let b: Vec<f32> = a
            .iter()
            .enumerate()
            .map(|(i, &v)| {
                let texel = (i / (3 * texels)) * texels + i % texels;
                if mask[texel] == 0.0 { -v } else { v }
            })
            .collect();
        let tensor =
            |v: Vec<f32>, c| Tensor::<4>::from_data(TensorData::new(v, [2, c, 8, 16]), &device);
        let masks = tensor(mask, 1);
        let augment = Augment::draw(2, 8, 16, true, &mut SplitMix64::new(8));
        let stage = Stage::full(&config);
        for augment in [None, Some(&augment)] {
            let score = |v: Vec<f32>| {
                let input = seen_through(tensor(v, 3), masks.clone(), augment);
                crate::device::read_floats_blocking(d.forward(input, stage))
                    .unwrap()
                    .0
            };
            let (sa, sb) = (score(a.clone()), score(b.clone()));
            assert_ne!(a, b);
            for (x, y) in sa.iter().zip(&sb) {
                assert!((x - y).abs() < 1e-5, "{sa:?} {sb:?}");
            }
        }
    }

    #[test]
    fn the_average_ramps_up_and_gamma_follows_the_heuristic() {
        // Early on the average follows the generator closely; later it keeps its β.
        assert!(ema_beta_at(0.999, 0.05, 0, 16) <= 0.5);
        assert!(ema_beta_at(0.999, 0.05, 1_000, 16) < 0.9);
        assert_eq!(ema_beta_at(0.999, 0.05, 10_000_000, 16), 0.999);
        assert_eq!(ema_beta_at(0.999, 0.0, 0, 16), 0.999);
        let config = PgganConfig {
            resolution: 64,
            aspect: 2,
            ..PgganConfig::default()
        };
        assert!((r1_gamma_heuristic(&config, 16) - 0.1024).abs() < 1e-6);
    }

    #[test]
    fn the_weight_average_follows_the_generator() {
        let config = tiny();
        let device = crate::device::cpu();
        let z = latents(3, 16, 5, &device);
        let images = |g: &Generator| {
            crate::device::read_floats_blocking(g.forward(z.clone(), Stage::full(&config)))
                .unwrap()
                .0
        };
        let max_gap = |a: &[f32], b: &[f32]| {
            a.iter()
                .zip(b)
                .map(|(x, y)| (x - y).abs())
                .fold(0.0f32, f32::max)
        };
        let options = TrainOptions {
            config: config.clone(),
            ema_beta: 0.0,
            ..TrainOptions::default()
        };
        let mut trainer = Trainer::new(options, &device).unwrap();
        let initial = images(&trainer.average);
        let real = Tensor::<4>::random(
            [4, 3, 8, 16],
            Distribution::Uniform(-1.0, 1.0),
            trainer.device(),
        );
        let masks = Tensor::<4>::ones([4, 1, 8, 16], trainer.device());
        for step in 0..2 {
            trainer.step(real.clone(), masks.clone(), Stage::full(&config), step);
        }
        // β = 0: the average is the generator after every step, and so it has moved.
        let generator = images(&blend(
            Generator::new(&config, &device),
            &trainer.generator,
            0.0,
        ));
        let average = images(&trainer.average);
        assert!(
            max_gap(&average, &generator) < 1e-5,
            "average and generator differ by {}",
            max_gap(&average, &generator)
        );
        assert!(
            max_gap(&average, &initial) > 1e-4,
            "the average never moved"
        );
        // β near 1: it barely moves from where it was.
        let before = trainer.average.clone();
        let slow = blend(before.clone(), &trainer.generator, 0.999);
        assert!(max_gap(&images(&slow), &images(&before)) < max_gap(&generator, &initial));
    }

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
        assert_eq!(
            schedule(levels, 1.0),
            Stage {
                level: levels - 1,
                alpha: 1.0
            }
        );
        assert!(schedule(levels, 0.3).alpha <= 1.0);
    }
}
