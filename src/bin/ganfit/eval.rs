//! `ganfit eval ...`: accuracy of the face networks on a data folder, one `name: value unit`
//! line per metric. Unreadable images are skipped with a reason on stderr, never fatal.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clap::Subcommand;
use ganfit::eval::landmarks::{MeshSample, NmeAccumulator, YAW_BINS, derive_mesh_68, nme, yaw_bin};
use ganfit::eval::verification::{self, VerificationReport};
use ganfit::fit::models::TextureChoice;
use ganfit::nets::{Eyes, FaceNets};
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
        /// Evaluate only the first N images of each yaw bin (0–30°, 30–60°, 60–90°): a
        /// pose-balanced subset for the slow `--fitted` runs.
        #[arg(long)]
        per_yaw_bin: Option<usize>,
        /// Skip the first N images of each yaw bin, those `--per-yaw-bin N` evaluates: a set
        /// of photos disjoint from them (for a calibration).
        #[arg(long, default_value_t = 0)]
        skip_per_yaw_bin: usize,
        /// The detector and landmarks to evaluate (default: what a fit uses, MediaPipe's when
        /// its records are present).
        #[arg(long, value_enum)]
        eyes: Option<Eyes>,
        /// With --fitted: write each photo's fitted, detected and annotated 68 points (pixels)
        /// as JSON lines to this file, for analysis. It copies the annotations: keep it out of
        /// the repository.
        #[arg(long, requires = "fitted")]
        points: Option<PathBuf>,
        #[command(flatten)]
        fitted: FittedArgs,
    },
    /// Derive the face mesh's 468 → 68 correspondence (`ganfit::nets::facemesh::MESH_68`) from
    /// an AFLW2000-3D-style folder: runs BlazeFace and the mesh on every photo, chooses each
    /// point's vertex pair on the even-numbered photos and reports the NME on the odd ones
    /// (held out), then prints the table chosen on all photos as Rust source.
    Mesh68 {
        #[arg(long)]
        data: PathBuf,
        #[arg(long)]
        models: Option<PathBuf>,
        #[arg(long, value_enum, default_value_t = Backend::Cpu)]
        device: Backend,
        #[arg(long, default_value_t = 0.0)]
        annotation_pixel_centre: f32,
        #[arg(long)]
        limit: Option<usize>,
    },
    /// Calibrate the face model's inner 51 landmarks against the detector on synthetic faces
    /// (known shape and camera; see `ganfit::eval::embedding`) and print the table
    /// `face_model::landmarks::CALIBRATED_INNER` holds.
    Embedding {
        #[arg(long)]
        models: Option<PathBuf>,
        #[arg(long, value_enum, default_value_t = Backend::Cpu)]
        device: Backend,
        /// Synthetic views with a detected face and mesh.
        #[arg(long, default_value_t = 200)]
        count: usize,
        #[arg(long, default_value_t = 7)]
        seed: u64,
        #[arg(long, default_value_t = 384)]
        size: usize,
        /// Views turned further than this (degrees of yaw) are drawn again.
        #[arg(long, default_value_t = 45.0)]
        max_yaw: f32,
        /// How far from the listed vertex a landmark may move, mm.
        #[arg(long, default_value_t = 8.0)]
        radius: f64,
        /// Instead, place every one of the face mesh's 468 points on the model (any vertex of
        /// the face region may take a point) and print `face_model::landmarks::MESH_VERTICES`,
        /// the dense landmark term's table.
        #[arg(long)]
        mesh: bool,
        /// Instead, place the 68 where annotators put them on fitted faces: FILE is what
        /// `eval landmarks --fitted --points FILE` writes (fits of annotated photos). Prints
        /// `face_model::landmarks::ANNOTATED_68`, the fitted landmarks' vertices.
        #[arg(long, conflicts_with = "mesh")]
        annotated: Option<PathBuf>,
        /// With --annotated: fits of other photos (the same kind of file) to check the table
        /// on, NME by yaw bin with the model's own 68 and with the table's.
        #[arg(long, requires = "annotated")]
        held_out: Option<PathBuf>,
    },
    /// Verification with the identity networks (face-api's ResNet, faceres) on a
    /// folder with `pairs.tsv` and `images/`.
    Identity {
        #[arg(long)]
        data: PathBuf,
        #[arg(long)]
        models: Option<PathBuf>,
        #[arg(long, value_enum, default_value_t = Backend::Cpu)]
        device: Backend,
        /// Evaluate only N pairs: the first N/2 same and N/2 different ones. With --fitted and
        /// a folder without pairs.tsv: the first N photos, judged by photo–render cosine only.
        #[arg(long)]
        limit: Option<usize>,
        /// With --fitted: keep each fitted image's descriptors in this file (JSON lines, one per
        /// image and fit options) and reuse them, so a long run resumes where it stopped and a
        /// larger --limit fits only the new images.
        #[arg(long, requires = "fitted")]
        cache: Option<PathBuf>,
        #[command(flatten)]
        fitted: FittedArgs,
    },
    /// The photo-texture blend: each photo fitted with the earlier per-texel blend and with the
    /// seamless one; face-area error of the final textured render and the seam measure.
    Blend {
        /// A folder of photos (or one with `images/`).
        #[arg(long)]
        data: PathBuf,
        #[arg(long)]
        models: Option<PathBuf>,
        #[arg(long, value_enum, default_value_t = Backend::Cpu)]
        device: Backend,
        #[arg(long)]
        limit: Option<usize>,
        /// Take every n-th photo of the sorted list.
        #[arg(long, default_value_t = 1)]
        every: usize,
        /// Keep both textures of each photo in this folder.
        #[arg(long)]
        save: Option<PathBuf>,
        /// Fit options as JSON (`FitOptions`, snake_case; missing fields take their defaults).
        #[arg(long)]
        options: Option<PathBuf>,
        #[arg(long, value_enum)]
        texture: Option<TextureChoice>,
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
    /// Photos fitted at once, one thread each (`eval identity` and `eval landmarks`); the
    /// numbers do not depend on it.
    #[arg(long, default_value_t = 1)]
    jobs: usize,
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

/// The places within each yaw bin that `--per-yaw-bin` and `--skip-per-yaw-bin` select.
fn yaw_bin_range(take: Option<usize>, skip: usize) -> Option<std::ops::Range<usize>> {
    match (take, skip) {
        (None, 0) => None,
        (take, skip) => Some(skip..take.map_or(usize::MAX, |n| skip.saturating_add(n))),
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
            per_yaw_bin,
            skip_per_yaw_bin,
            eyes,
            points,
            fitted,
        } if fitted.fitted => crate::eval_fit::landmarks(
            &fit_models(models, device, fitted.texture)?,
            &data,
            annotation_pixel_centre,
            limit,
            yaw_bin_range(per_yaw_bin, skip_per_yaw_bin),
            &{
                let options = fitted.options()?;
                ganfit::fit::FitOptions {
                    eyes: eyes.or(options.eyes),
                    ..options
                }
            },
            fitted.jobs,
            points.as_deref(),
        ),
        Eval::Identity {
            data,
            models,
            device,
            limit,
            cache,
            fitted,
        } if fitted.fitted => crate::eval_fit::identity(
            &fit_models(models.clone(), device, fitted.texture)?,
            &ganfit::io::models_digest(&models_dir(models))?,
            &data,
            limit,
            &fitted.options()?,
            cache.as_deref(),
            fitted.jobs,
        ),
        Eval::Landmarks {
            data,
            models,
            device,
            annotation_pixel_centre,
            limit,
            per_yaw_bin,
            skip_per_yaw_bin,
            eyes,
            ..
        } => landmarks(
            &data,
            &models_dir(models),
            device,
            annotation_pixel_centre,
            limit,
            yaw_bin_range(per_yaw_bin, skip_per_yaw_bin),
            eyes,
        ),
        Eval::Identity {
            data,
            models,
            device,
            limit,
            ..
        } => identity(&data, &models_dir(models), device, limit),
        Eval::Embedding {
            models,
            device,
            radius,
            annotated: Some(file),
            held_out,
            ..
        } => {
            let fits = crate::eval_fit::read_fitted_points(&file)?;
            let held_out = held_out
                .map(|f| crate::eval_fit::read_fitted_points(&f))
                .transpose()?;
            crate::eval_fit::annotated_embedding(
                &fit_models(models, device, None)?,
                &fits,
                held_out.as_deref(),
                radius,
            )
        }
        Eval::Embedding {
            models,
            device,
            count,
            seed,
            size,
            max_yaw,
            radius,
            mesh,
            annotated: None,
            ..
        } => crate::eval_fit::embedding(
            &fit_models(models, device, None)?,
            count,
            seed,
            size,
            max_yaw,
            radius,
            mesh,
        ),
        Eval::Mesh68 {
            data,
            models,
            device,
            annotation_pixel_centre,
            limit,
        } => mesh68(
            &data,
            &models_dir(models),
            device,
            annotation_pixel_centre,
            limit,
        ),
        Eval::Blend {
            data,
            models,
            device,
            limit,
            every,
            save,
            options,
            texture,
        } => crate::eval_fit::blend(
            &fit_models(models, device, texture)?,
            &data,
            limit,
            every,
            &crate::common::read_options(options.as_deref())?,
            save.as_deref(),
        ),
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
    per_yaw_bin: Option<std::ops::Range<usize>>,
    eyes: Option<Eyes>,
) -> Result<()> {
    let nets = load(models, backend)?;
    let eyes = eyes.unwrap_or(nets.eyes());
    println!("# eyes: {}", eyes.name());
    let mut acc = NmeAccumulator::default();
    let mut fallbacks = [0usize; 3];
    let (mut offset, mut offset_count) = ([0f64; 2], 0usize);
    let mut multiple = 0usize;
    let start = now_ms();
    let mut images = 0usize;
    for item in annotated_images(data, pixel_centre, limit, per_yaw_bin)? {
        images += 1;
        let Some((a, truth, image)) = item else {
            acc.add_skipped();
            continue;
        };
        match device::block_on(nets.analyse_with(&image, eyes)) {
            Ok(analysis) => {
                let points = analysis.points()?;
                multiple += (analysis.faces_found() > 1) as usize;
                if analysis.mesh_rejected.is_some() {
                    fallbacks[yaw_bin(a.yaw)] += 1;
                }
                acc.add(&points, &truth, a.yaw);
                eprintln!(
                    "{}: yaw {:.0}°, NME {:.2} %, detector score {:.2}{}",
                    a.image,
                    a.yaw,
                    100.0 * nme(&points, &truth).unwrap_or(f64::NAN),
                    analysis.face.score,
                    if analysis.mesh_rejected.is_some() {
                        " (mesh refused)"
                    } else {
                        ""
                    }
                );
                for (p, t) in points.iter().zip(&truth) {
                    offset[0] += (p[0] - t[0]) as f64;
                    offset[1] += (p[1] - t[1]) as f64;
                    offset_count += 1;
                }
            }
            Err(e) if e.is_no_face() => acc.add_failure(a.yaw),
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
    if eyes == Eyes::MediaPipe {
        // Faces BlazeFace found but the mesh refused: the keypoint-posed face stands in.
        for ((label, _), n) in YAW_BINS.iter().zip(fallbacks) {
            println!("mesh refused, keypoint-posed landmarks used, yaw {label}: {n} images");
        }
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

fn mesh68(
    data: &Path,
    models: &Path,
    backend: Backend,
    pixel_centre: f32,
    limit: Option<usize>,
) -> Result<()> {
    let nets = load(models, backend)?;
    let mut samples = Vec::new();
    let mut yaws = Vec::new();
    let mut missed = 0usize;
    for item in annotated_images(data, pixel_centre, limit, None)? {
        let Some((a, truth, image)) = item else {
            continue;
        };
        let mesh = device::block_on(async {
            let detections = nets.detect_with(&image, Eyes::MediaPipe).await?;
            nets.mesh(&image, detections.largest()?).await
        });
        match mesh {
            Ok(mesh) => {
                samples.push(MeshSample {
                    mesh: mesh.points,
                    truth,
                });
                yaws.push(a.yaw);
            }
            Err(Error::MeshRejected(_)) => missed += 1,
            Err(e) if e.is_no_face() => missed += 1,
            Err(e) => return Err(e),
        }
    }
    println!(
        "meshes: {} images ({missed} without a face or with the mesh's face flag below the gate)",
        samples.len()
    );
    let (even, odd): (Vec<_>, Vec<_>) = samples.iter().enumerate().partition(|(i, _)| i % 2 == 0);
    let pick = |set: &[(usize, &MeshSample)]| -> Vec<MeshSample> {
        set.iter()
            .map(|(_, s)| MeshSample {
                mesh: s.mesh.clone(),
                truth: s.truth.clone(),
            })
            .collect()
    };
    let half = derive_mesh_68(&pick(&even))
        .ok_or_else(|| Error::Invalid("no usable annotated photos".into()))?;
    let mut held_out = NmeAccumulator::default();
    for (i, s) in &odd {
        let points: Vec<[f32; 2]> = half
            .vertices
            .iter()
            .map(|[a, b]| {
                let (a, b) = (s.mesh[*a as usize], s.mesh[*b as usize]);
                [(a[0] + b[0]) / 2.0, (a[1] + b[1]) / 2.0]
            })
            .collect();
        held_out.add(&points, &s.truth, yaws[*i]);
    }
    let r = held_out.report();
    println!(
        "held-out nme (table from the even photos, error on the odd): mean {:.3} %, balanced {:.3} %, by yaw bin {}",
        100.0 * r.mean,
        100.0 * r.balanced,
        r.bins
            .iter()
            .map(|(label, mean, n, _)| format!("{label}: {:.3} % ({n})", 100.0 * mean))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let all = derive_mesh_68(&samples)
        .ok_or_else(|| Error::Invalid("no usable annotated photos".into()))?;
    println!(
        "// chosen on {} photos of {}",
        samples.len(),
        data.display()
    );
    println!("pub const MESH_68: [[u16; 2]; 68] = [");
    for (k, (v, e)) in all.vertices.iter().zip(all.errors).enumerate() {
        println!("    [{}, {}], // {k}: {:.2} %", v[0], v[1], 100.0 * e);
    }
    println!("];");
    Ok(())
}

/// The embeddings of one photo's largest face.
struct Embeddings {
    resnet: Vec<f32>,
    faceres: Vec<f32>,
}

fn embed(nets: &FaceNets, path: &Path) -> Result<Embeddings> {
    let image = ganfit::io::image::read(path)?;
    device::block_on(async {
        let analysis = nets.analyse(&image).await?;
        let resnet = nets
            .resnet()?
            .forward(nets.resnet_input(&image, &analysis)?)?;
        let faceres = nets
            .faceres()?
            .forward(nets.faceres_input(&image, &analysis))?;
        Ok(Embeddings {
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
            Err(e) if e.is_no_face() => {
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
    let (mut resnet, mut faceres) = (Vec::new(), Vec::new());
    for (a, b, same) in &list {
        if let (Some(Some(ea)), Some(Some(eb))) = (cache.get(a), cache.get(b)) {
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
    println!("pairs evaluated (both faces found): {} pairs", resnet.len());
    print_report("resnet", &verification::verify(&resnet, 0.01)?);
    print_report("faceres", &verification::verify(&faceres, 0.01)?);
    println!(
        "time per image: {:.0} ms",
        (now_ms() - start) / images.max(1) as f64
    );
    Ok(())
}
