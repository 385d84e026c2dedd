//! What the commands share: the device flag, the models folder, model loading and timing.

use std::io::Read;
use std::path::{Path, PathBuf};

use clap::ValueEnum;
use ganfit::device::{self, Device};
use ganfit::fit::FitOptions;
use ganfit::fit::Models;
use ganfit::fit::models::TextureChoice;
use ganfit::util::clock::now_ms;
use ganfit::{Error, Result};

/// Where a command computes.
#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum Backend {
    /// A hardware GPU through wgpu when there is one, else the CPU backend (a software Vulkan
    /// adapter such as lavapipe is far slower than the CPU backend on the same cores).
    Auto,
    /// burn's Flex CPU backend.
    Cpu,
    /// wgpu on the best native adapter, whatever it is.
    Gpu,
}

impl Backend {
    /// Opens the device; the name says what was chosen (and, for `auto`, why).
    pub fn open(self) -> Result<(Device, String)> {
        let cpu = || (device::cpu(), "cpu (flex)".to_string());
        match self {
            Backend::Cpu => Ok(cpu()),
            Backend::Gpu => device::gpu().map(|(d, info)| (d, format!("wgpu: {info}"))),
            Backend::Auto => Ok(match device::gpu() {
                Ok((d, info)) if !info.is_software() => (d, format!("wgpu: {info}")),
                Ok((_, info)) => {
                    let (d, name) = cpu();
                    (
                        d,
                        format!("{name}; the only GPU adapter, {info}, is a software one"),
                    )
                }
                Err(e) => {
                    let (d, name) = cpu();
                    (d, format!("{name}; no GPU ({e})"))
                }
            }),
        }
    }
}

/// The models folder: `--models`, else `$GANFIT_MODELS`, else `models`.
pub fn models_dir(arg: Option<PathBuf>) -> PathBuf {
    arg.unwrap_or_else(ganfit::fit::models::default_dir)
}

/// Fit options from `--options FILE` (see [`FitOptions::from_json`]), else the defaults.
pub fn read_options(path: Option<&Path>) -> Result<FitOptions> {
    let Some(path) = path else {
        return Ok(FitOptions::default());
    };
    // Bounded: `--options /dev/zero` must not read until memory runs out.
    let limit = ganfit::fit::options::MAX_OPTIONS_BYTES as u64 + 1;
    let mut text = String::new();
    std::fs::File::open(path)
        .and_then(|file| file.take(limit).read_to_string(&mut text))
        .map_err(|e| Error::io(path, e))?;
    FitOptions::from_json(&text).map_err(|e| match e {
        Error::Invalid(reason) => Error::Invalid(format!("{}: {reason}", path.display())),
        other => other,
    })
}

/// Loads the models for fitting on `device` (autodiff) with `texture`, or else the folder's
/// preferred texture model ([`TextureChoice::preferred_in`]).
pub fn load_models(dir: &Path, device: &Device, texture: Option<TextureChoice>) -> Result<Models> {
    Models::load(
        dir,
        device,
        texture.unwrap_or_else(|| TextureChoice::preferred_in(dir)),
    )
}

/// Mean milliseconds of `f` over `repeat` runs after one warm-up (shader compilation,
/// allocations), synchronised with the device: natively the work is queued lazily.
pub fn time_ms(device: &Device, repeat: usize, mut f: impl FnMut() -> Result<()>) -> Result<f64> {
    f()?;
    device
        .sync()
        .map_err(|e| ganfit::Error::Execution(format!("{e:?}")))?;
    let start = now_ms();
    for _ in 0..repeat {
        f()?;
    }
    device
        .sync()
        .map_err(|e| ganfit::Error::Execution(format!("{e:?}")))?;
    Ok((now_ms() - start) / repeat.max(1) as f64)
}

/// The devices a benchmark runs on (`default` when none is named), opened, each announced with
/// a `# name` line; one that cannot be opened is reported and left out.
pub fn open_devices(devices: Vec<Backend>, default: &[Backend]) -> Vec<(Backend, Device)> {
    let devices = if devices.is_empty() {
        default.to_vec()
    } else {
        devices
    };
    devices
        .into_iter()
        .filter_map(|backend| match backend.open() {
            Ok((device, name)) => {
                println!("# {name}");
                Some((backend, device))
            }
            Err(e) => {
                println!("# {backend:?}: skipped ({e})");
                None
            }
        })
        .collect()
}
