//! `ganfit texture ...`: build the UV corpus, fit the PCA model, train the GAN, evaluate them.

use std::path::PathBuf;

use clap::Subcommand;
use ganfit::device::block_on;
use ganfit::eval::swd::FloatImage;
use ganfit::eval::texture::{
    TextureEvalOptions, corpus_face_tiles, downsampling, face_tiles, finite_mean,
    mean_texture_model, paired_bootstrap, score, swd_over_seeds, uv_map_at,
};
use ganfit::face_model::{FaceModel, RegionSelection};
use ganfit::fit::models::{TEXTURE_GAN, TEXTURE_PCA, TextureChoice, default_dir};
use ganfit::nets::FaceNets;
use ganfit::texture::corpus::{Corpus, Split, masked_mean};
use ganfit::texture::model::{PcaTexture, TextureModel};
use ganfit::texture::pggan::PgganConfig;
use ganfit::texture::train::{RunFiles, TrainOptions, r1_gamma_heuristic, train};
use ganfit::texture::{pca, weights};
use ganfit::texture_corpus::{BuildOptions, build, contact_sheet, rejections_by_reason};
use ganfit::{Error, Result};

use crate::common::Backend;

/// The generator/discriminator widths (`PgganConfig`), for training and benchmarks.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ChannelArgs {
    /// Channels of the coarsest blocks.
    #[arg(long)]
    pub channels: Option<usize>,
    /// Levels (from 4×4) that keep the coarsest blocks' channels; each level above halves them.
    #[arg(long)]
    pub full_channel_levels: Option<usize>,
    /// The fewest channels of any block.
    #[arg(long)]
    pub min_channels: Option<usize>,
}

impl ChannelArgs {
    pub fn apply(&self, mut config: PgganConfig) -> PgganConfig {
        config.base_channels = self.channels.unwrap_or(config.base_channels);
        config.full_channel_levels = self
            .full_channel_levels
            .unwrap_or(config.full_channel_levels);
        config.min_channels = self.min_channels.unwrap_or(config.min_channels);
        config
    }
}

#[derive(Subcommand)]
pub enum TextureCommand {
    /// Print the texture model a fit uses when none is named (`pca` or `gan`), given the models
    /// folder: what `scripts/models.sh` writes into the web app's manifest.
    Default {
        /// Model folder (default: $GANFIT_MODELS or ./models).
        #[arg(long)]
        models: Option<PathBuf>,
    },
    /// Unwrap photos into UV textures with confidence masks (the GAN's corpus).
    Unwrap {
        #[arg(long)]
        photos: PathBuf,
        #[arg(long)]
        out: PathBuf,
        /// At most this many photos (in sorted order).
        #[arg(long)]
        limit: Option<usize>,
        /// Take every n-th photo of the sorted list.
        #[arg(long, default_value_t = 1)]
        every: usize,
        /// UV map height (the width follows the model's 2:1 atlas).
        #[arg(long, default_value_t = 256)]
        resolution: usize,
        /// Side of the working crop the geometry is fitted and the colours are read at
        /// [default: 128].
        #[arg(long)]
        working_resolution: Option<usize>,
        /// Photos unwrapped at once, one thread each [default: the machine's cores].
        #[arg(long)]
        jobs: Option<usize>,
        #[arg(long, value_enum, default_value_t = Backend::Cpu)]
        device: Backend,
        #[arg(long)]
        models: Option<PathBuf>,
    },
    /// A smaller copy of the corpus, lossless, masks kept (the training split only, unless
    /// --full): downsampled for a coarse model, or cut to --max entries.
    Pack {
        #[arg(long)]
        corpus: PathBuf,
        #[arg(long)]
        out: PathBuf,
        /// Downsample to this texture height (a power of two at most the corpus's).
        #[arg(long)]
        resolution: Option<usize>,
        /// Keep the held-out split too (a copy for evaluation rather than for training).
        #[arg(long)]
        full: bool,
        #[arg(long)]
        max: Option<usize>,
    },
    /// A contact sheet of corpus textures and masks.
    Sheet {
        #[arg(long)]
        corpus: PathBuf,
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = 16)]
        count: usize,
    },
    /// Fit the masked-PCA texture model (the linear baseline).
    Pca {
        #[arg(long)]
        corpus: PathBuf,
        #[arg(long)]
        out: Option<PathBuf>,
        #[arg(long, default_value_t = 80)]
        components: usize,
        #[arg(long, default_value_t = 800)]
        max_textures: usize,
    },
    /// Train the progressive GAN (resumable).
    Train {
        #[arg(long)]
        corpus: PathBuf,
        #[arg(long)]
        out: Option<PathBuf>,
        #[arg(long, default_value_t = 30.0)]
        minutes: f64,
        #[arg(long)]
        resume: Option<PathBuf>,
        #[arg(long, value_enum, default_value_t = Backend::Auto)]
        device: Backend,
        /// Batch sizes per level, comma separated (4×4 first; the last repeats).
        #[arg(long)]
        batch: Option<String>,
        #[command(flatten)]
        channels: ChannelArgs,
        /// Apply the R1 penalty every this many steps (lazy regularisation).
        #[arg(long)]
        r1_interval: Option<usize>,
        /// R1 weight γ [default: StyleGAN2-ADA's heuristic, 2·10⁻⁴ · texels / final batch].
        #[arg(long)]
        r1_gamma: Option<f32>,
        /// Train without the differentiable augmentation (for ablation).
        #[arg(long)]
        no_augment: bool,
        /// Augment colour too (brightness, saturation, contrast; off by default).
        #[arg(long)]
        augment_colour: bool,
        /// Decay of the generator's weight average per step (lower for short runs, so the
        /// average forgets the previous growth level).
        #[arg(long)]
        ema_beta: Option<f32>,
    },
    /// The GAN, PCA and mean-texture models on the held-out split (by identity): completion
    /// and reconstruction L1, SWD over seeds, paired bootstrap intervals for GAN − PCA.
    Eval {
        #[arg(long)]
        corpus: PathBuf,
        #[arg(long)]
        gan: Option<PathBuf>,
        #[arg(long)]
        pca: Option<PathBuf>,
        /// Held-out textures to reconstruct and complete (latent fitting is slow).
        #[arg(long, default_value_t = 100)]
        reconstruct: usize,
        /// Compare at this texture height (the corpus is box-filtered to it as it is read;
        /// default: the corpus's).
        #[arg(long)]
        resolution: Option<usize>,
        /// Model samples per SWD seed.
        #[arg(long, default_value_t = 500)]
        swd_samples: usize,
        #[arg(long, default_value_t = 3)]
        swd_seeds: usize,
        /// Latent fitting steps.
        #[arg(long, default_value_t = 150)]
        steps: usize,
        /// Random starts of which the best is optimised (GAN).
        #[arg(long, default_value_t = 8)]
        starts: usize,
        #[arg(long, value_enum, default_value_t = Backend::Cpu)]
        device: Backend,
        /// Where to write the sample and nearest-neighbour grids.
        #[arg(long)]
        grids: Option<PathBuf>,
    },
}

pub fn run(what: TextureCommand) -> Result<()> {
    match what {
        TextureCommand::Default { models } => {
            println!(
                "{}",
                TextureChoice::preferred_in(&crate::common::models_dir(models)).name()
            );
            Ok(())
        }
        TextureCommand::Unwrap {
            photos,
            out,
            limit,
            every,
            resolution,
            working_resolution,
            jobs,
            device,
            models,
        } => {
            let (device, name) = device.open()?;
            let device = device.autodiff();
            let dir = models.unwrap_or_else(default_dir);
            let face = FaceModel::load(
                dir.join(ganfit::fit::models::FACE_MODEL),
                &device,
                RegionSelection::default(),
            )?;
            let nets = FaceNets::load(&dir, &device)?;
            let jobs = jobs.unwrap_or_else(|| {
                std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
            });
            let mut options = BuildOptions {
                resolution,
                jobs,
                ..BuildOptions::default()
            };
            if let Some(working) = working_resolution {
                options.fit.resolution = working;
                options.fit.validate()?;
            }
            eprintln!("unwrapping {} on {name}, {jobs} at once", photos.display());
            let started = std::time::Instant::now();
            let index = build(&face, &nets, &photos, &out, &options, every, limit, |l| {
                eprintln!("{l}")
            })?;
            let total = index.entries.len() + index.rejected.len();
            println!("corpus photos: {total}");
            println!("corpus kept: {}", index.entries.len());
            println!(
                "corpus rejection rate: {:.1} %",
                100.0 * index.rejected.len() as f64 / total.max(1) as f64
            );
            for (reason, count) in rejections_by_reason(&index) {
                println!("corpus rejected ({reason}): {count}");
            }
            println!(
                "corpus unwrap time (this run): {:.1} min",
                started.elapsed().as_secs_f64() / 60.0
            );
            Ok(())
        }
        TextureCommand::Pack {
            corpus,
            out,
            max,
            resolution,
            full,
        } => {
            let split = if full { Split::All } else { Split::Train };
            let packed = Corpus::open_at(&corpus, split, resolution)?;
            let count = max.unwrap_or(usize::MAX).min(packed.len());
            packed.write(&out, count)?;
            println!("packed textures: {count}");
            Ok(())
        }
        TextureCommand::Sheet { corpus, out, count } => {
            contact_sheet(&corpus, count)?
                .save(&out)
                .map_err(|e| Error::Image(format!("{}: {e}", out.display())))?;
            println!("contact sheet: {}", out.display());
            Ok(())
        }
        TextureCommand::Pca {
            corpus,
            out,
            components,
            max_textures,
        } => {
            let corpus = Corpus::open(&corpus, Split::Train)?;
            let device = ganfit::device::cpu();
            let start = ganfit::util::clock::now_ms();
            let model = pca::fit(
                &corpus,
                pca::PcaOptions {
                    components,
                    max_textures,
                    ..Default::default()
                },
                &device,
                |l| eprintln!("{l}"),
            )?;
            let out = out.unwrap_or_else(|| default_dir().join(TEXTURE_PCA));
            ganfit::io::write_atomic(&out, &model.to_bytes()?)?;
            println!("pca components: {}", model.components());
            println!(
                "pca time: {:.1} s",
                (ganfit::util::clock::now_ms() - start) / 1000.0
            );
            println!("pca file: {}", out.display());
            Ok(())
        }
        TextureCommand::Train {
            corpus,
            out,
            minutes,
            resume,
            device,
            batch,
            channels,
            r1_interval,
            r1_gamma,
            no_augment,
            augment_colour,
            ema_beta,
        } => {
            let corpus = Corpus::open(&corpus, Split::Train)?;
            let (device, name) = device.open()?;
            let config = channels.apply(PgganConfig {
                resolution: corpus.resolution(),
                aspect: corpus.aspect(),
                ..PgganConfig::default()
            });
            let mut options = TrainOptions {
                config,
                minutes,
                ..TrainOptions::default()
            };
            options.augment = !no_augment;
            options.augment_colour = augment_colour;
            if let Some(interval) = r1_interval {
                options.r1_interval = interval.max(1);
            }
            if let Some(gamma) = r1_gamma {
                if !(gamma >= 0.0 && gamma.is_finite()) {
                    return Err(Error::Invalid(format!(
                        "--r1-gamma {gamma}: expected a finite γ ≥ 0"
                    )));
                }
                options.r1_gamma = gamma;
            }
            if let Some(beta) = ema_beta {
                if !(0.0..1.0).contains(&beta) {
                    return Err(Error::Invalid(format!(
                        "--ema-beta {beta}: expected 0 ≤ β < 1"
                    )));
                }
                options.ema_beta = beta;
            }
            if let Some(b) = batch {
                options.batch = b
                    .split(',')
                    .map(|s| {
                        s.trim()
                            .parse()
                            .map_err(|_| Error::Invalid(format!("bad batch list {b}")))
                    })
                    .collect::<Result<_>>()?;
            }
            if r1_gamma.is_none() {
                let last = options.batch.last().copied().unwrap_or(8);
                options.r1_gamma = r1_gamma_heuristic(&options.config, last);
            }
            let out = out.unwrap_or_else(|| default_dir().join(TEXTURE_GAN));
            eprintln!(
                "training on {name}: {} textures ({}x{})",
                corpus.len(),
                corpus.width(),
                corpus.resolution()
            );
            let progress = train(
                &corpus,
                &device,
                options,
                &RunFiles::new(&out),
                resume.as_deref(),
                |l| eprintln!("{l}"),
            )?;
            println!("gan steps: {}", progress.steps);
            println!("gan images shown: {}", progress.images_shown);
            println!("gan training time: {:.1} min", progress.minutes_done);
            println!("gan file: {}", out.display());
            Ok(())
        }
        TextureCommand::Eval {
            corpus,
            gan,
            pca,
            reconstruct,
            resolution,
            swd_samples,
            swd_seeds,
            steps,
            starts,
            device,
            grids,
        } => {
            let mut options = TextureEvalOptions::default();
            options.fit.steps = steps;
            options.fit.starts = starts.max(1);
            let plan = EvalPlan {
                reconstruct,
                resolution,
                swd_samples: swd_samples.max(1),
                swd_seeds: swd_seeds.max(1),
                options,
            };
            evaluate(&corpus, gan, pca, plan, device, grids)
        }
    }
}

/// What `ganfit texture eval` measures.
struct EvalPlan {
    reconstruct: usize,
    resolution: Option<usize>,
    swd_samples: usize,
    swd_seeds: usize,
    options: TextureEvalOptions,
}

/// The texture models to compare, named: the GAN and PCA files that exist, then the mean.
fn texture_models(
    gan: Option<PathBuf>,
    pca: Option<PathBuf>,
    device: &burn::tensor::Device,
) -> Result<Vec<(&'static str, TextureModel)>> {
    let gan = gan.unwrap_or_else(|| default_dir().join(TEXTURE_GAN));
    let pca = pca.unwrap_or_else(|| default_dir().join(TEXTURE_PCA));
    let mut models = Vec::new();
    if gan.exists() {
        let bytes = std::fs::read(&gan).map_err(|e| Error::io(&gan, e))?;
        let name = gan.display().to_string();
        models.push((
            "gan",
            TextureModel::Gan(weights::load_generator(bytes, device, &name)?),
        ));
    }
    if pca.exists() {
        let bytes = std::fs::read(&pca).map_err(|e| Error::io(&pca, e))?;
        let name = pca.display().to_string();
        models.push((
            "pca",
            TextureModel::Pca(PcaTexture::from_bytes(bytes, device, &name)?),
        ));
    }
    if models.is_empty() {
        return Err(Error::model(
            gan.display().to_string(),
            "neither a GAN nor a PCA texture model found",
        ));
    }
    Ok(models)
}

fn evaluate(
    corpus_dir: &std::path::Path,
    gan: Option<PathBuf>,
    pca: Option<PathBuf>,
    plan: EvalPlan,
    backend: Backend,
    grids: Option<PathBuf>,
) -> Result<()> {
    let test = Corpus::open_at(corpus_dir, Split::Test, plan.resolution)?;
    let (device, _) = backend.open()?;
    let (h, w) = (test.resolution(), test.width());
    let people: std::collections::HashSet<&str> = test
        .entries
        .iter()
        .map(|e| e.identity.as_deref().unwrap_or(&e.source))
        .collect();
    println!(
        "held-out textures: {} ({} people or files; {w}x{h})",
        test.len(),
        people.len()
    );
    let all: Vec<usize> = (0..test.len()).collect();
    let real = corpus_face_tiles(&test, &all);
    let mut models = texture_models(gan, pca, &device)?;
    let (mean, averaged) = masked_mean(corpus_dir, Split::Train, Some(h))?;
    println!("# mean texture: the confidence-weighted mean of {averaged} training textures");
    models.push(("mean", mean_texture_model(mean, h, test.aspect(), &device)));
    let count = plan.reconstruct.min(test.len());
    let scored: Vec<usize> = (0..count).collect();
    let options = &plan.options;
    println!(
        "# {count} textures fitted ({} steps, best of {} starts for the GAN), {} blocks of {}² \
         texels hidden in each; SWD: {} samples x {} seeds against the {} held-out textures",
        options.fit.steps,
        options.fit.starts,
        options.blocks,
        ((h as f32 * options.block_fraction).round() as usize).max(1),
        plan.swd_samples,
        plan.swd_seeds,
        test.len()
    );
    let mut all_scores = Vec::new();
    for (name, model) in &models {
        let factor = downsampling(model, h, w)?;
        if factor > 1 {
            println!(
                "# the {name} model's {}x{} maps are compared box-filtered to {w}x{h}",
                model.size().1,
                model.size().0
            );
        }
        let started = std::time::Instant::now();
        let swd = block_on(swd_over_seeds(
            model,
            &real,
            factor,
            plan.swd_samples,
            plan.swd_seeds,
            &device,
        ))?;
        for (size, m, sd) in &swd.levels {
            println!("swd {name} {size}px: {m:.2} ± {sd:.2} x1e-3");
        }
        println!(
            "swd {name} mean: {:.2} ± {:.2} x1e-3",
            swd.mean.0, swd.mean.1
        );
        let scores = block_on(score(model, &test, &scored, options, &device))?;
        println!(
            "reconstruction {name} l1 visible texels: {:.4}",
            finite_mean(&scores.reconstruction)
        );
        println!(
            "completion {name} l1 hidden texels: {:.4}",
            finite_mean(&scores.completion)
        );
        println!("# {name}: {:.1} s", started.elapsed().as_secs_f64());
        if let Some(dir) = grids.as_ref().filter(|_| *name != "mean") {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
            let params = ganfit::texture::train::latents(16, model.parameters(), 17, &device);
            let samples = uv_map_at(model, params, factor)?;
            let fake = block_on(face_tiles(samples.clone()))?;
            ganfit::texture::images::save_grid(
                samples.permute([0, 3, 1, 2]) * 2.0 - 1.0,
                4,
                &dir.join(format!("samples_{name}.png")),
            )?;
            nearest_neighbour_grid(
                &fake[..8],
                &real,
                &dir.join(format!("neighbours_{name}.png")),
            )?;
        }
        all_scores.push(scores);
    }
    // GAN − PCA where both are there, and each model against the mean.
    let position = |n: &str| models.iter().position(|(name, _)| *name == n);
    let mean = models.len() - 1;
    let mut pairs: Vec<(usize, usize)> = (0..mean).map(|m| (m, mean)).collect();
    if let (Some(g), Some(p)) = (position("gan"), position("pca")) {
        pairs.insert(0, (g, p));
    }
    for (a, b) in pairs {
        let (sa, sb) = (&all_scores[a], &all_scores[b]);
        for (what, da, db) in [
            ("reconstruction", &sa.reconstruction, &sb.reconstruction),
            ("completion", &sa.completion, &sb.completion),
        ] {
            if let Some(d) = paired_bootstrap(da, db, 2000, 9) {
                println!(
                    "{what} {} - {} l1: {:+.4} [{:+.4}, {:+.4}] (paired bootstrap 95 %, {} \
                     textures)",
                    models[a].0, models[b].0, d.mean, d.low, d.high, d.pairs
                );
            }
        }
    }
    Ok(())
}

/// Each generated sample beside its nearest corpus texture (L2 on 32×32 thumbnails).
fn nearest_neighbour_grid(
    fake: &[FloatImage],
    real: &[FloatImage],
    path: &std::path::Path,
) -> Result<()> {
    let thumb = |img: &FloatImage| -> Vec<f32> {
        let s = img.size;
        let f = s / 32;
        (0..32 * 32 * 3)
            .map(|k| {
                let (p, c) = (k / 3, k % 3);
                let (x, y) = ((p % 32) * f, (p / 32) * f);
                img.data[(y * s + x) * 3 + c]
            })
            .collect()
    };
    let real_thumbs: Vec<Vec<f32>> = real.iter().map(thumb).collect();
    let to_rgb = |img: &FloatImage| {
        image::RgbImage::from_fn(img.size as u32, img.size as u32, |x, y| {
            let o = (y as usize * img.size + x as usize) * 3;
            image::Rgb([0, 1, 2].map(|c| (img.data[o + c].clamp(0.0, 1.0) * 255.0) as u8))
        })
    };
    let mut tiles = Vec::new();
    for f in fake {
        let t = thumb(f);
        let best = real_thumbs
            .iter()
            .enumerate()
            .map(|(i, r)| {
                (
                    i,
                    r.iter()
                        .zip(&t)
                        .map(|(a, b)| (a - b) * (a - b))
                        .sum::<f32>(),
                )
            })
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(i, _)| i)
            .unwrap_or(0);
        tiles.push(to_rgb(f));
        tiles.push(to_rgb(&real[best]));
    }
    ganfit::texture::images::grid(&tiles, 4)
        .save(path)
        .map_err(|e| Error::Image(format!("{}: {e}", path.display())))
}
