//! `ganfit texture ...`: build the UV corpus, fit the PCA model, train the GAN, evaluate them.

use std::path::PathBuf;

use burn::tensor::{Tensor, TensorData};
use clap::Subcommand;
use ganfit::eval::swd::{FloatImage, multiscale_swd};
use ganfit::face_model::{FaceModel, RegionSelection};
use ganfit::fit::models::{TEXTURE_GAN, TEXTURE_PCA, TextureChoice, default_dir};
use ganfit::nets::FaceNets;
use ganfit::texture::corpus::{Corpus, Split};
use ganfit::texture::model::{PcaTexture, TextureModel};
use ganfit::texture::pggan::PgganConfig;
use ganfit::texture::train::{RunFiles, TrainOptions, latents, train};
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
        #[arg(long, value_enum, default_value_t = Backend::Cpu)]
        device: Backend,
        #[arg(long)]
        models: Option<PathBuf>,
    },
    /// A compact copy of the corpus (JPEG textures; the training split only, unless --full)
    Pack {
        #[arg(long)]
        corpus: PathBuf,
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = 85)]
        quality: u8,
        /// Downsample to this texture height (a power of two below the corpus's).
        #[arg(long)]
        resolution: Option<usize>,
        /// Keep everything: the held-out split and the masks (a smaller corpus for PCA and
        /// evaluation rather than a training-only copy).
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
        /// R1 weight γ (smaller for small images: StyleGAN2-ADA's heuristic is 2·10⁻⁴·pixels/batch).
        #[arg(long)]
        r1_gamma: Option<f32>,
        /// Decay of the generator's weight average per step (lower for short runs, so the
        /// average forgets the previous growth level).
        #[arg(long)]
        ema_beta: Option<f32>,
    },
    /// SWD and reconstruction error of the GAN and PCA models on the held-out corpus split.
    Eval {
        #[arg(long)]
        corpus: PathBuf,
        #[arg(long)]
        gan: Option<PathBuf>,
        #[arg(long)]
        pca: Option<PathBuf>,
        /// Held-out textures to reconstruct (latent optimisation is slow).
        #[arg(long, default_value_t = 24)]
        reconstruct: usize,
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
            eprintln!("unwrapping {} on {name}", photos.display());
            let mut options = BuildOptions {
                resolution,
                ..BuildOptions::default()
            };
            if let Some(working) = working_resolution {
                options.fit.resolution = working;
                options.fit.validate()?;
            }
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
            quality,
            max,
            resolution,
            full,
        } => {
            let mut index = ganfit::texture::corpus::read_index(&corpus)?;
            if !full {
                index
                    .entries
                    .retain(|e| !ganfit::texture::corpus::is_held_out(&e.id));
            }
            if let Some(n) = max {
                index.entries.truncate(n);
            }
            index.rejected.clear();
            let source_resolution = index.resolution;
            if let Some(r) = resolution {
                if !r.is_power_of_two() || r < 8 || r > index.resolution {
                    return Err(Error::Invalid(format!(
                        "--resolution {r}: a power of two from 8 to the corpus's {}",
                        index.resolution
                    )));
                }
                index.resolution = r;
            }
            std::fs::create_dir_all(&out).map_err(|e| Error::io(&out, e))?;
            for e in &index.entries {
                let src = corpus.join(format!("{}.png", e.id));
                let mut img = image::open(&src)
                    .map_err(|err| Error::Image(format!("{}: {err}", src.display())))?
                    .to_rgb8();
                if index.resolution != source_resolution {
                    let r = index.resolution as u32;
                    img = image::imageops::resize(
                        &img,
                        r * index.aspect as u32,
                        r,
                        image::imageops::FilterType::Triangle,
                    );
                }
                if full {
                    let src = corpus.join(format!("{}_mask.png", e.id));
                    let mut mask = image::open(&src)
                        .map_err(|err| Error::Image(format!("{}: {err}", src.display())))?
                        .to_luma8();
                    if index.resolution != source_resolution {
                        let r = index.resolution as u32;
                        mask = image::imageops::resize(
                            &mask,
                            r * index.aspect as u32,
                            r,
                            image::imageops::FilterType::Triangle,
                        );
                    }
                    let dst = out.join(format!("{}_mask.png", e.id));
                    mask.save(&dst)
                        .map_err(|err| Error::Image(format!("{}: {err}", dst.display())))?;
                }
                let dst = out.join(format!("{}.jpg", e.id));
                let file = std::fs::File::create(&dst).map_err(|err| Error::io(&dst, err))?;
                image::codecs::jpeg::JpegEncoder::new_with_quality(
                    std::io::BufWriter::new(file),
                    quality,
                )
                .encode_image(&img)
                .map_err(|err| Error::Image(format!("{}: {err}", dst.display())))?;
            }
            let json = serde_json::to_vec(&index).map_err(|e| Error::Invalid(e.to_string()))?;
            std::fs::write(out.join("index.json"), json).map_err(|e| Error::io(&out, e))?;
            println!("packed textures: {}", index.entries.len());
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
            device,
            grids,
        } => evaluate(&corpus, gan, pca, reconstruct, device, grids),
    }
}

fn to_float_images(tensor: Tensor<4>) -> Result<Vec<FloatImage>> {
    // NHWC in [0, 1] → square crops of the face tile (the left square of the atlas), which is
    // what SWD compares (its pyramid is square).
    let [n, h, w, _] = tensor.dims();
    let (values, _) = ganfit::device::read_floats_blocking(tensor)?;
    Ok((0..n)
        .map(|i| {
            let mut data = Vec::with_capacity(h * h * 3);
            for y in 0..h {
                let row = (i * h + y) * w * 3;
                data.extend_from_slice(&values[row..row + h * 3]);
            }
            FloatImage { size: h, data }
        })
        .collect())
}

fn corpus_images(corpus: &Corpus, indices: &[usize]) -> Vec<FloatImage> {
    let (h, w) = (corpus.resolution(), corpus.width());
    indices
        .iter()
        .map(|&i| {
            let t = corpus.texture(i);
            let mut data = Vec::with_capacity(h * h * 3);
            for y in 0..h {
                data.extend_from_slice(&t[y * w * 3..y * w * 3 + h * 3]);
            }
            FloatImage { size: h, data }
        })
        .collect()
}

fn evaluate(
    corpus_dir: &std::path::Path,
    gan: Option<PathBuf>,
    pca_path: Option<PathBuf>,
    reconstruct: usize,
    backend: Backend,
    grids: Option<PathBuf>,
) -> Result<()> {
    let test = Corpus::open(corpus_dir, Split::Test)?;
    let (device, _) = backend.open()?;
    let (h, w) = (test.resolution(), test.width());
    println!("held-out textures: {}", test.len());
    let all: Vec<usize> = (0..test.len()).collect();
    let real = corpus_images(&test, &all);
    let gan = gan.unwrap_or_else(|| default_dir().join(TEXTURE_GAN));
    let pca_path = pca_path.unwrap_or_else(|| default_dir().join(TEXTURE_PCA));
    let mut models = Vec::new();
    if gan.exists() {
        let bytes = std::fs::read(&gan).map_err(|e| Error::io(&gan, e))?;
        models.push(TextureModel::Gan(weights::load_generator(
            bytes,
            &device,
            &gan.display().to_string(),
        )?));
    }
    if pca_path.exists() {
        let bytes = std::fs::read(&pca_path).map_err(|e| Error::io(&pca_path, e))?;
        models.push(TextureModel::Pca(PcaTexture::from_bytes(
            bytes,
            &device,
            &pca_path.display().to_string(),
        )?));
    }
    if models.is_empty() {
        return Err(Error::model(
            gan.display().to_string(),
            "neither a GAN nor a PCA texture model found",
        ));
    }
    let count = real.len().max(64);
    for model in &models {
        let name = model.name();
        let factor = downsampling(model, h, w)?;
        if factor > 1 {
            println!(
                "# the {name} model's {}x{} maps are compared box-filtered to the corpus's {w}x{h}",
                model.size().1,
                model.size().0
            );
        }
        // Samples: GAN latents ~ N(0, I); PCA coefficients ~ N(0, I) (unit variance by construction).
        let params = latents(count, model.parameters(), 17, &device);
        let samples = uv_map_at(model, params, factor)?;
        let fake = to_float_images(samples.clone())?;
        let (levels, mean) = multiscale_swd(&real, &fake, 16, 3);
        for (size, d) in levels {
            println!("swd {name} {size}px: {d:.2} x1e-3");
        }
        println!("swd {name} mean: {mean:.2} x1e-3");
        let l1 = reconstruction_l1(model, &test, reconstruct, &device)?;
        println!("reconstruction {name} l1 visible texels: {l1:.4}");
        if let Some(dir) = &grids {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
            let samples_nchw = samples
                .clone()
                .slice([0..16, 0..h, 0..w, 0..3])
                .permute([0, 3, 1, 2])
                * 2.0
                - 1.0;
            ganfit::texture::images::save_grid(
                samples_nchw,
                4,
                &dir.join(format!("samples_{name}.png")),
            )?;
            nearest_neighbour_grid(
                &fake[..8.min(fake.len())],
                &real,
                &test,
                &dir.join(format!("neighbours_{name}.png")),
            )?;
        }
    }
    Ok(())
}

/// How many times larger than the corpus's textures the model's maps are (1, 2, 4, ...): models
/// are compared at the corpus's resolution, so a finer model is box-filtered down to it; a
/// coarser one is refused rather than judged on upsampled maps.
fn downsampling(model: &TextureModel, h: usize, w: usize) -> Result<usize> {
    let (mh, mw) = model.size();
    let factor = mh / h.max(1);
    if factor == 0 || mh != factor * h || mw != factor * w || !factor.is_power_of_two() {
        return Err(Error::Invalid(format!(
            "the {} model makes {mw}x{mh} textures; the corpus's {w}x{h} must be that size or smaller by a power of two (use `ganfit texture pack --full --resolution R`)",
            model.name()
        )));
    }
    Ok(factor)
}

/// The model's UV maps `[S, H, W, 3]`, box-filtered by `factor`.
fn uv_map_at(model: &TextureModel, params: Tensor<2>, factor: usize) -> Result<Tensor<4>> {
    let map = model.uv_map(params)?;
    if factor == 1 {
        return Ok(map);
    }
    let pooled = burn::tensor::module::avg_pool2d(
        map.permute([0, 3, 1, 2]),
        burn::tensor::ops::AvgPoolOptions::new([factor, factor]),
    );
    Ok(pooled.permute([0, 2, 3, 1]))
}

/// Fits each of the first `count` held-out textures through the model on its visible texels
/// (mask > 0.3): latent optimisation for the GAN, masked least squares (via the same gradient
/// descent) for PCA. Returns the mean L1 over visible texels.
fn reconstruction_l1(
    model: &TextureModel,
    test: &Corpus,
    count: usize,
    device: &burn::tensor::Device,
) -> Result<f32> {
    let ad = device.clone().autodiff();
    let (h, w) = (test.resolution(), test.width());
    let factor = downsampling(model, h, w)?;
    let count = count.min(test.len());
    let mut total = 0.0;
    let mut batches = 0;
    for start in (0..count).step_by(8) {
        let idx: Vec<usize> = (start..(start + 8).min(count)).collect();
        let b = idx.len();
        let target: Vec<f32> = idx.iter().flat_map(|&i| test.texture(i)).collect();
        let mask: Vec<f32> = idx
            .iter()
            .flat_map(|&i| {
                test.mask(i)
                    .into_iter()
                    .map(|m| if m > 0.3 { 1.0 } else { 0.0 })
            })
            .collect();
        let target = Tensor::<4>::from_data(TensorData::new(target, [b, h, w, 3]), &ad);
        let mask = Tensor::<4>::from_data(TensorData::new(mask, [b, h, w, 1]), &ad);
        let mut slot =
            ganfit::fit::adam::Slot::new(Tensor::zeros([b, model.parameters()], &ad), 0.05);
        let mut adam = ganfit::fit::adam::Adam::default();
        const STEPS: usize = 150;
        let mut last = 0.0;
        for step in 0..STEPS {
            let leaf = slot.leaf();
            let map = uv_map_at(model, leaf.clone(), factor)?;
            let l1 = ((map - target.clone()).abs() * mask.clone()).sum()
                / (mask.clone().sum() * 3.0 + 1.0);
            let grads = l1.clone().backward();
            // Only the last value is reported; reading synchronises with the device.
            if step + 1 == STEPS {
                last = ganfit::device::read_floats_blocking(l1.detach())?.0[0];
            }
            adam.begin_step();
            if let Some(g) = leaf.grad(&grads) {
                adam.update(&mut slot, g, |v| v);
            }
        }
        total += last;
        batches += 1;
    }
    Ok(total / batches.max(1) as f32)
}

/// Each generated sample beside its nearest corpus texture (L2 on 32×32 thumbnails).
fn nearest_neighbour_grid(
    fake: &[FloatImage],
    real: &[FloatImage],
    _test: &Corpus,
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
