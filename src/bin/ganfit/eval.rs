//! `ganfit eval ...`: accuracy of the face networks on a data folder, one `name: value unit`
//! line per metric. Unreadable images are skipped with a reason on stderr, never fatal.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clap::Subcommand;
use ganfit::eval::landmarks::{NmeAccumulator, YAW_BINS};
use ganfit::eval::verification::{self, VerificationReport};
use ganfit::fit::models::TextureChoice;
use ganfit::nets::FaceNets;
use ganfit::util::clock::now_ms;
use ganfit::{Error, Result, device};

use crate::common::Backend;
use crate::common::models_dir;
use crate::eval_data::{annotated_images, pairs_limited};

#[derive(Subcommand)]
pub enum Eval {
    /// 68-point NME on an AFLW2000-3D-style folder (`annotations.json`, `images/`).
    Landmarks {
        #[arg(long)]
        data: PathBuf,
        #[arg(long)]
        models: Option<PathBuf>,
        #[arg(long, value_enum, default_value_t = Backend::Cpu)]
        device: Backend,
        /// Where the annotation puts the centre of the top-left pixel (AFLW2000-3D and
        /// OpenCV-style tools: 0; 300-W `.pts`: 1; this crate: 0.5).
        #[arg(long, default_value_t = 0.0)]
        annotation_pixel_centre: f32,
        /// Evaluate only the first N images.
        #[arg(long)]
        limit: Option<usize>,
        #[command(flatten)]
        fitted: FittedArgs,
    },
    /// Verification with the identity networks (MobileFaceNet, face-api's ResNet, faceres) on a
    /// folder with `pairs.tsv` and `images/`.
    Identity {
        #[arg(long)]
        data: PathBuf,
        #[arg(long)]
        models: Option<PathBuf>,
        #[arg(long, value_enum, default_value_t = Backend::Cpu)]
        device: Backend,
        /// Evaluate only N pairs: the first N/2 same and N/2 different ones.
        #[arg(long)]
        limit: Option<usize>,
        #[command(flatten)]
        fitted: FittedArgs,
    },
    /// Shape error of fits to synthetic faces rendered from random model parameters (known
    /// ground truth), against the mean face as the baseline.
    Synthetic {
        #[arg(long)]
        models: Option<PathBuf>,
        #[arg(long, value_enum, default_value_t = Backend::Cpu)]
        device: Backend,
        #[arg(long, default_value_t = 10)]
        count: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Render size of each synthetic photo (pixels).
        #[arg(long, default_value_t = 384)]
        size: usize,
        /// Three views of each synthetic person, fitted with shared identity.
        #[arg(long)]
        same_person: bool,
        /// Landmark-stage iterations (default: the fitter's).
        #[arg(long)]
        landmark_iterations: Option<usize>,
        /// Full-stage iterations (default: the fitter's).
        #[arg(long)]
        iterations: Option<usize>,
        /// Keep the synthetic photos in this folder.
        #[arg(long)]
        save: Option<PathBuf>,
        /// Fit options as JSON (`FitOptions`, snake_case; missing fields take their defaults).
        #[arg(long)]
        options: Option<PathBuf>,
        /// Texture model of the fits and of the synthetic faces' textures (default: PCA when
        /// its file exists, else the GAN).
        #[arg(long, value_enum)]
        texture: Option<TextureChoice>,
    },
}

/// Evaluate whole fits instead of the networks alone.
#[derive(clap::Args)]
pub struct FittedArgs {
    /// Fit each photo and evaluate the fitted model (slow: one whole fit per image).
    #[arg(long)]
    fitted: bool,
    /// Landmark-stage iterations of each fit (default: the fitter's).
    #[arg(long)]
    landmark_iterations: Option<usize>,
    /// Full-stage iterations of each fit (default: the fitter's).
    #[arg(long)]
    iterations: Option<usize>,
    /// Fit options as JSON (`FitOptions`, snake_case; missing fields take their defaults).
    #[arg(long)]
    options: Option<PathBuf>,
    /// Texture model of each fit (default: PCA when its file exists, else the GAN).
    #[arg(long, value_enum)]
    texture: Option<TextureChoice>,
}

impl FittedArgs {
    fn options(&self) -> Result<ganfit::fit::FitOptions> {
        let mut options = crate::common::read_options(self.options.as_deref())?;
        if let Some(n) = self.landmark_iterations {
            options.landmark_iterations = n;
        }
        if let Some(n) = self.iterations {
            options.iterations = n;
        }
        Ok(options)
    }
}

fn fit_models(
    models: Option<PathBuf>,
    backend: Backend,
    texture: Option<TextureChoice>,
) -> Result<ganfit::fit::Models> {
    let (device, name) = backend.open()?;
    println!("# device: {name}");
    let models = crate::common::load_models(&models_dir(models), &device.autodiff(), texture)?;
    println!("# texture model: {}", models.texture.name());
    Ok(models)
}

pub fn run(what: Eval) -> Result<()> {
    match what {
        Eval::Landmarks {
            data,
            models,
            device,
            annotation_pixel_centre,
            limit,
            fitted,
        } if fitted.fitted => crate::eval_fit::landmarks(
            &fit_models(models, device, fitted.texture)?,
            &data,
            annotation_pixel_centre,
            limit,
            &fitted.options()?,
        ),
        Eval::Identity {
            data,
            models,
            device,
            limit,
            fitted,
        } if fitted.fitted => crate::eval_fit::identity(
            &fit_models(models, device, fitted.texture)?,
            &data,
            limit,
            &fitted.options()?,
        ),
        Eval::Landmarks {
            data,
            models,
            device,
            annotation_pixel_centre,
            limit,
            ..
        } => landmarks(
            &data,
            &models_dir(models),
            device,
            annotation_pixel_centre,
            limit,
        ),
        Eval::Identity {
            data,
            models,
            device,
            limit,
            ..
        } => identity(&data, &models_dir(models), device, limit),
        Eval::Synthetic {
            models,
            device,
            count,
            seed,
            size,
            same_person,
            landmark_iterations,
            iterations,
            save,
            options,
            texture,
        } => {
            let models = fit_models(models, device, texture)?;
            let mut options = crate::common::read_options(options.as_deref())?;
            if let Some(n) = landmark_iterations {
                options.landmark_iterations = n;
            }
            if let Some(n) = iterations {
                options.iterations = n;
            }
            crate::eval_fit::synthetic(
                &models,
                count,
                seed,
                &options,
                same_person,
                size,
                save.as_deref(),
            )
        }
    }
}

fn load(models: &Path, backend: Backend) -> Result<FaceNets> {
    let (device, name) = backend.open()?;
    println!("# device: {name}");
    FaceNets::load(models, &device)
}

fn landmarks(
    data: &Path,
    models: &Path,
    backend: Backend,
    pixel_centre: f32,
    limit: Option<usize>,
) -> Result<()> {
    let nets = load(models, backend)?;
    let mut acc = NmeAccumulator::default();
    let (mut offset, mut offset_count) = ([0f64; 2], 0usize);
    let mut multiple = 0usize;
    let start = now_ms();
    let mut images = 0usize;
    for item in annotated_images(data, pixel_centre, limit)? {
        images += 1;
        let Some((a, truth, image)) = item else {
            acc.add_skipped();
            continue;
        };
        let result = device::block_on(async {
            let detections = nets.detect(&image).await?;
            let face = *detections.largest()?;
            Ok::<_, Error>((
                nets.landmarks68(&image, &face).await?,
                detections.faces.len(),
            ))
        });
        match result {
            Ok((points, found)) => {
                multiple += (found > 1) as usize;
                acc.add(&points, &truth, a.yaw);
                for (p, t) in points.iter().zip(&truth) {
                    offset[0] += (p[0] - t[0]) as f64;
                    offset[1] += (p[1] - t[1]) as f64;
                    offset_count += 1;
                }
            }
            Err(Error::NoFace) => acc.add_failure(a.yaw),
            Err(e) => {
                eprintln!("skip {}: {e}", a.image);
                acc.add_skipped();
            }
        }
    }
    let r = acc.report();
    println!("images: {images} images");
    println!("evaluated: {} images", r.evaluated);
    println!("detection failures: {} images", r.failures);
    println!("skipped: {} images", r.skipped);
    println!("several faces detected (largest used): {multiple} images");
    println!("nme mean: {:.3} %", 100.0 * r.mean);
    println!(
        "nme balanced (mean of yaw bins): {:.3} %",
        100.0 * r.balanced
    );
    for ((label, mean, count, failures), _) in r.bins.iter().zip(YAW_BINS) {
        println!("nme yaw {label}: {:.3} %", 100.0 * mean);
        println!("evaluated yaw {label}: {count} images");
        println!("detection failures yaw {label}: {failures} images");
    }
    let n = offset_count.max(1) as f64;
    println!("mean signed error x: {:.3} px", offset[0] / n);
    println!("mean signed error y: {:.3} px", offset[1] / n);
    println!(
        "time per image: {:.0} ms",
        (now_ms() - start) / images.max(1) as f64
    );
    Ok(())
}

/// The embeddings of one photo's largest face.
struct Embeddings {
    mobilefacenet: Vec<f32>,
    resnet: Vec<f32>,
    faceres: Vec<f32>,
}

fn embed(nets: &FaceNets, path: &Path) -> Result<Embeddings> {
    let image = ganfit::io::image::read(path)?;
    device::block_on(async {
        let analysis = nets.analyse(&image).await?;
        let mobile = nets
            .mobilefacenet
            .forward(nets.mobilefacenet_input(&image, &analysis))?;
        let resnet = nets
            .resnet()?
            .forward(nets.resnet_input(&image, &analysis)?)?;
        let faceres = nets
            .faceres()?
            .forward(nets.faceres_input(&image, &analysis))?;
        Ok(Embeddings {
            mobilefacenet: device::read_floats(mobile.embedding).await?.0,
            resnet: device::read_floats(resnet.embedding).await?.0,
            faceres: device::read_floats(faceres.embedding).await?.0,
        })
    })
}

fn print_report(name: &str, r: &VerificationReport) {
    println!("{name} accuracy: {:.2} %", 100.0 * r.accuracy);
    println!("{name} best threshold: {:.4} cosine", r.threshold);
    println!("{name} roc auc: {:.4}", r.auc);
    println!(
        "{name} tar at far {:.0}%: {:.2} %",
        100.0 * r.far,
        100.0 * r.tar
    );
}

fn identity(data: &Path, models: &Path, backend: Backend, limit: Option<usize>) -> Result<()> {
    let nets = load(models, backend)?;
    let list = pairs_limited(data, limit)?;
    let start = now_ms();
    let mut cache: BTreeMap<String, Option<Embeddings>> = BTreeMap::new();
    let mut no_face = 0usize;
    for name in list.iter().flat_map(|(a, b, _)| [a, b]) {
        if cache.contains_key(name) {
            continue;
        }
        let result = embed(&nets, &data.join("images").join(name));
        let entry = match result {
            Ok(e) => Some(e),
            Err(Error::NoFace) => {
                no_face += 1;
                eprintln!("no face: {name}");
                None
            }
            Err(e) => {
                eprintln!("skip {name}: {e}");
                None
            }
        };
        cache.insert(name.clone(), entry);
    }
    let images = cache.len();
    let (mut mobile, mut resnet, mut faceres) = (Vec::new(), Vec::new(), Vec::new());
    for (a, b, same) in &list {
        if let (Some(Some(ea)), Some(Some(eb))) = (cache.get(a), cache.get(b)) {
            mobile.push((
                verification::cosine(&ea.mobilefacenet, &eb.mobilefacenet),
                *same,
            ));
            resnet.push((verification::cosine(&ea.resnet, &eb.resnet), *same));
            faceres.push((verification::cosine(&ea.faceres, &eb.faceres), *same));
        }
    }
    println!("images: {images} images");
    println!("images without a detected face: {no_face} images");
    println!(
        "images skipped (unreadable or other error): {} images",
        cache.values().filter(|e| e.is_none()).count() - no_face
    );
    println!("pairs: {} pairs", list.len());
    println!("pairs evaluated (both faces found): {} pairs", mobile.len());
    print_report("mobilefacenet", &verification::verify(&mobile, 0.01)?);
    print_report("resnet", &verification::verify(&resnet, 0.01)?);
    print_report("faceres", &verification::verify(&faceres, 0.01)?);
    println!(
        "time per image: {:.0} ms",
        (now_ms() - start) / images.max(1) as f64
    );
    Ok(())
}
