//! Generator files, in burn's burnpack format.
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
use crate::error::{Error, Result};
use crate::io::burnpack;

pub(crate) const CONFIG_KEY: &str = "pggan_config";

/// Reads a generator (or training checkpoint) record into a freshly built module.
pub(crate) fn from_bytes<M: Module + ModuleSnapshot>(
    module: M,
    bytes: Vec<u8>,
    name: &str,
) -> Result<M> {
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
    // The metadata sizes what gets allocated: refuse one the file cannot hold.
    let needed = config.generator_weights().saturating_mul(2);
    if needed > bytes.len() as u64 {
        return Err(Error::model(
            name,
            format!(
                "{CONFIG_KEY} describes {} weights, more than the {}-byte file holds",
                config.generator_weights(),
                bytes.len()
            ),
        ));
    }
    Ok(from_bytes(Generator::new(&config, device), bytes, name)?.no_grad())
}

pub fn generator_bytes(generator: &Generator) -> Result<Vec<u8>> {
    let config =
        serde_json::to_string(generator.config()).map_err(|e| Error::Invalid(e.to_string()))?;
    burnpack::write(generator, true, &[(CONFIG_KEY, config)], "generator")
}

pub fn save_generator(generator: &Generator, path: &Path) -> Result<()> {
    crate::io::write_atomic(path, &generator_bytes(generator)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generator_metadata_cannot_claim_more_than_the_file_holds() {
        let device = crate::device::cpu();
        let small = PgganConfig {
            latent: 8,
            resolution: 8,
            aspect: 2,
            base_channels: 4,
            full_channel_levels: 1,
            min_channels: 2,
        };
        let generator = Generator::new(&small, &device);
        let bytes = generator_bytes(&generator).unwrap();
        assert!(load_generator(bytes, &device, "small").is_ok());
        let huge = PgganConfig {
            latent: 4096,
            resolution: 1024,
            base_channels: 4096,
            ..small.clone()
        };
        let json = serde_json::to_string(&huge).unwrap();
        let lying = burnpack::write(&generator, true, &[(CONFIG_KEY, json)], "generator").unwrap();
        let err = load_generator(lying, &device, "lying").unwrap_err();
        assert!(err.to_string().contains("more than the"), "{err}");
        let absurd = PgganConfig {
            resolution: 1 << 20,
            ..small
        };
        assert!(absurd.validate().is_err());
    }
}
