//! The `ganfit` command line: fitting, evaluation, benchmarks and model conversion.

mod bench;
mod bench_fit;
mod bench_gan;
mod common;
mod eval;
mod eval_data;
mod eval_fit;
mod fit;
mod model;
mod nets;
mod texture;
mod track;

use clap::{Parser, Subcommand};
use ganfit::device;
use ganfit::{Error, Result};

use crate::common::Backend;

#[derive(Parser)]
#[command(
    name = "ganfit",
    version,
    about = "3D face reconstruction from photos (GANFit-style), natively and on WebGPU"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Describe the available compute devices.
    Devices,
    /// Run the renderer self-test on a device: forward and every backward against the CPU
    /// reference, the gradient-scatter stress cases (run-to-run bitwise equality included) and
    /// pose recovery.
    Selftest {
        #[arg(long, value_enum, default_value_t = Backend::Gpu)]
        device: Backend,
    },
    /// Fit photos: writes face.obj/.mtl, texture.png, face.glb, params.json, overlay.png and
    /// losses.tsv into --out.
    Fit(fit::FitArgs),
    /// Track a fitted person through a folder of frames: each frame's expression (ARKit-named
    /// blendshape weights) and head pose, with the identity held, into --out/track.json.
    Track(track::TrackArgs),
    /// Benchmarks: print timings as `name: value unit` lines.
    Bench {
        #[command(subcommand)]
        what: bench::Bench,
    },
    /// The face model: convert ICT-FaceKit, describe the model file, export the mean face.
    Model {
        #[command(subcommand)]
        what: model::Model,
    },
    /// The pretrained face networks: conversion from the npm packages, running them on photos.
    Nets {
        #[command(subcommand)]
        what: nets::Nets,
    },
    /// UV textures: build the corpus, fit PCA, train and evaluate the GAN.
    Texture {
        #[command(subcommand)]
        what: texture::TextureCommand,
    },
    /// Accuracy of the face networks on a data folder: `name: value unit` lines.
    Eval {
        #[command(subcommand)]
        what: eval::Eval,
    },
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Devices => {
            println!(
                "cpu: flex, {} threads",
                std::thread::available_parallelism()
                    .map(|n| n.get())
                    .unwrap_or(1)
            );
            match device::gpu() {
                Ok((_, info)) => println!("gpu: {info}"),
                Err(e) => println!("gpu: unavailable ({e})"),
            }
            Ok(())
        }
        Command::Selftest { device } => {
            let (dev, name) = device.open()?;
            let dev = dev.autodiff();
            let reference = device::block_on(ganfit::render::selftest::compare_with_reference(
                &dev, 64, 64,
            ))?;
            let pose = device::block_on(ganfit::render::selftest::recover_pose(&dev, 48, 60))?;
            let gradients = device::block_on(
                ganfit::render::selftest::compare_gradients_with_reference(&dev, 64, 64),
            )?;
            let stress = device::block_on(ganfit::render::selftest::scatter_stress(&dev))?;
            println!("device: {name}");
            println!("reference id mismatches: {}", reference.id_mismatches);
            println!(
                "reference max colour error: {:.2e}",
                reference.max_color_error
            );
            println!(
                "reference max gradient error: {:.2e}",
                reference.max_gradient_error
            );
            println!(
                "pose loss: {:.3e} -> {:.3e}",
                pose.losses[0],
                pose.losses.last().copied().unwrap_or(f32::NAN)
            );
            println!(
                "pose parameter error: {:.4} -> {:.4}",
                pose.initial_error, pose.final_error
            );
            println!("pose time: {:.0} ms", pose.milliseconds);
            for case in gradients.cases.iter().chain(&stress.cases) {
                let verdict = if case.passed { "ok" } else { "FAILED" };
                println!("gradient {}: {verdict} ({})", case.name, case.detail);
            }
            if reference.passed() && pose.converged() && gradients.passed() && stress.passed() {
                println!("selftest: passed");
                Ok(())
            } else {
                Err(Error::Invalid("selftest failed".into()))
            }
        }
        Command::Bench { what } => bench::run(what),
        Command::Fit(args) => fit::run(args),
        Command::Track(args) => track::run(args),
        Command::Texture { what } => texture::run(what),
        Command::Model { what } => model::run(what),
        Command::Nets { what } => nets::run(what),
        Command::Eval { what } => eval::run(what),
    }
}

/// Mesa's Vulkan drivers probe for a Wayland display whenever wgpu enumerates adapters, and
/// libwayland prints "XDG_RUNTIME_DIR is invalid or not set" each time when the variable is unset
/// (servers, CI). The CLI opens no window: a private, empty runtime directory quiets the probe.
#[allow(unsafe_code)]
fn quiet_window_system_probes() {
    use std::os::unix::fs::PermissionsExt;
    if std::env::var_os("XDG_RUNTIME_DIR").is_some() {
        return;
    }
    let dir = std::env::temp_dir().join("ganfit-runtime");
    let private = std::fs::create_dir_all(&dir)
        .and_then(|()| std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)));
    if private.is_ok() {
        // SAFETY: called first thing in `main`, before any thread exists that could read the
        // environment concurrently.
        unsafe { std::env::set_var("XDG_RUNTIME_DIR", &dir) };
    }
}

fn main() {
    quiet_window_system_probes();
    let cli = Cli::parse();
    if let Err(e) = run(cli) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
