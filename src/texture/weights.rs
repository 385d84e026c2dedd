//! Generator files and training checkpoints, in burn's burnpack format.
//!
//! A generator file is a burnpack record of [`Generator`] (f16 storage, widened to f32 on load)
//! whose metadata entry `pggan_config` holds the JSON of its [`PgganConfig`]; tensor names
//! follow the module tree (`input.weight` `[latent, 16·C0]`, `blocks.N.conv1.weight`
//! `[C_out, C_in, 3, 3]`, `blocks.N.to_rgb.weight` `[3, C, 1, 1]`, biases `[C]`), weights
//! stored unscaled (the equalised-LR constant √(2/fan_in) is applied at run time). Anyone with
//! another UV generator of this architecture can write such a file and use it by putting it in
//! the models folder as `texture_gan.bpk` (the CLI's `--models`, the page's `models/`).

use std::path::Path;

use burn::module::Module;
use burn::store::ModuleSnapshot;
use burn::tensor::Device;

use super::pggan::{Generator, PgganConfig};
#[cfg(not(target_arch = "wasm32"))]
use super::pggan::Discriminator;
#[cfg(not(target_arch = "wasm32"))]
use super::train::Progress;
use crate::error::{Error, Result};
use crate::io::burnpack;

const CONFIG_KEY: &str = "pggan_config";

/// Reads a generator (or checkpoint) record into a freshly built module.
fn from_bytes<M: Module + ModuleSnapshot>(module: M, bytes: Vec<u8>, name: &str) -> Result<M> {
    burnpack::read(module, bytes, name, "the file does not fit this generator")
}

/// The configuration stored in a generator file's metadata.
pub fn generator_config(bytes: &[u8], name: &str) -> Result<PgganConfig> {
    let json = burnpack::metadata(bytes, CONFIG_KEY, "ganfit texture generator", name)?;
    serde_json::from_str(&json).map_err(|e| Error::model(name, format!("bad {CONFIG_KEY}: {e}")))
}

/// Loads a generator file (native path or fetched bytes).
pub fn load_generator(bytes: Vec<u8>, device: &Device, name: &str) -> Result<Generator> {
    let config = generator_config(&bytes, name)?;
    config.validate().map_err(|e| Error::model(name, e))?;
    Ok(from_bytes(Generator::new(&config, device), bytes, name)?.no_grad())
}

pub fn generator_bytes(generator: &Generator) -> Result<Vec<u8>> {
    let config = serde_json::to_string(generator.config()).map_err(|e| Error::Invalid(e.to_string()))?;
    burnpack::write(generator, true, &[(CONFIG_KEY, config)], "generator")
}

/// Writes atomically (temp file + rename), so an interrupted run never leaves a torn file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".partial");
    std::fs::write(&tmp, bytes).map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}

pub fn save_generator(generator: &Generator, path: &Path) -> Result<()> {
    write_atomic(path, &generator_bytes(generator)?)
}

#[cfg(not(target_arch = "wasm32"))]
pub struct Checkpoint {
    pub generator: Generator,
    pub discriminator: Discriminator,
    pub average: Generator,
    pub progress: Progress,
}

#[cfg(not(target_arch = "wasm32"))]
pub fn save_checkpoint(dir: &Path, generator: &Generator, discriminator: &Discriminator, average: &Generator, progress: &Progress) -> Result<()> {
    let config = serde_json::to_string(generator.config()).map_err(|e| Error::Invalid(e.to_string()))?;
    let meta = [(CONFIG_KEY, config)];
    write_atomic(&dir.join("generator.bpk"), &burnpack::write(generator, false, &meta, "generator")?)?;
    write_atomic(&dir.join("discriminator.bpk"), &burnpack::write(discriminator, false, &meta, "discriminator")?)?;
    write_atomic(&dir.join("average.bpk"), &burnpack::write(average, false, &meta, "average")?)?;
    let json = serde_json::to_vec_pretty(progress).map_err(|e| Error::Invalid(e.to_string()))?;
    write_atomic(&dir.join("progress.json"), &json)
}

/// Loads a checkpoint written by [`save_checkpoint`]; the configuration must match.
#[cfg(not(target_arch = "wasm32"))]
pub fn load_checkpoint(dir: &Path, config: &PgganConfig, train_device: &Device, device: &Device) -> Result<Checkpoint> {
    let read = |name: &str| {
        let path = dir.join(name);
        std::fs::read(&path).map_err(|e| Error::io(&path, e))
    };
    let progress_path = dir.join("progress.json");
    let progress: Progress = serde_json::from_slice(&read("progress.json")?)
        .map_err(|e| Error::model(progress_path.display().to_string(), e.to_string()))?;
    if &progress.options.config != config {
        return Err(Error::model(
            progress_path.display().to_string(),
            format!("checkpoint was trained with {:?}, not {:?}", progress.options.config, config),
        ));
    }
    let name = |f: &str| dir.join(f).display().to_string();
    Ok(Checkpoint {
        generator: from_bytes(Generator::new(config, train_device), read("generator.bpk")?, &name("generator.bpk"))?,
        discriminator: from_bytes(Discriminator::new(config, train_device), read("discriminator.bpk")?, &name("discriminator.bpk"))?,
        average: from_bytes(Generator::new(config, device), read("average.bpk")?, &name("average.bpk"))?,
        progress,
    })
}
