//! `ganfit track`: a fitted person's expression and head pose through a folder of frames.

use std::path::{Path, PathBuf};

use clap::Args;
use ganfit::device::block_on;
use ganfit::face_model::arkit_name;
use ganfit::fit::export;
use ganfit::fit::models::default_dir;
use ganfit::fit::track::{DEFAULT_ITERATIONS, FrameTrack, Tracker};
use ganfit::{Error, Result};
use serde::Serialize;

use crate::common::{Backend, read_options};

#[derive(Args, Debug)]
pub struct TrackArgs {
    /// A folder of frames (JPEG, PNG, WebP, BMP, PPM), tracked in file-name order.
    pub frames: PathBuf,
    /// The person: a fit's params.json (its first photo's identity is held).
    #[arg(long)]
    pub identity: PathBuf,
    /// Output folder (created): track.json, and track.glb (the person's animatable head with
    /// the frames as an animation of its blendshape weights and rotation; textured with the
    /// fit's texture.png when it lies beside params.json).
    #[arg(long)]
    pub out: PathBuf,
    /// Frames per second of the frames, for track.glb's animation.
    #[arg(long, default_value_t = 30.0)]
    pub fps: f32,
    /// Landmark iterations per frame.
    #[arg(long, default_value_t = DEFAULT_ITERATIONS)]
    pub iterations: usize,
    /// Options as JSON (see `FitOptions`): resolution, eyes, landmark rates.
    #[arg(long)]
    pub options: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = Backend::Auto)]
    pub device: Backend,
    /// Model folder (default: $GANFIT_MODELS or ./models).
    #[arg(long)]
    pub models: Option<PathBuf>,
}

/// What track.json holds.
#[derive(Serialize)]
struct TrackFile<'a> {
    /// The blendshapes' ARKit names, the order of every frame's `expression`.
    blendshapes: Vec<String>,
    frames: Vec<TrackedFrame<'a>>,
    /// Mean milliseconds per frame with a face, and the device.
    milliseconds_per_frame: f64,
    device: String,
}

#[derive(Serialize)]
struct TrackedFrame<'a> {
    file: String,
    #[serde(flatten)]
    track: &'a FrameTrack,
}

/// The frames of `dir`, sorted by name (photos only, by extension).
fn frame_files(dir: &Path) -> Result<Vec<PathBuf>> {
    ganfit::io::image::photo_files(dir).map_err(|_| {
        Error::Invalid(format!(
            "{}: no frames (JPEG, PNG, WebP, BMP or PPM files)",
            dir.display()
        ))
    })
}

/// The identity of a params.json's first photo.
fn identity_of(path: &Path) -> Result<Vec<f32>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let value: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| Error::Invalid(format!("{}: {e}", path.display())))?;
    let identity = value
        .pointer("/photos/0/params/identity")
        .and_then(|v| v.as_array())
        .ok_or_else(|| {
            Error::Invalid(format!(
                "{}: no photos[0].params.identity (expected a fit's params.json)",
                path.display()
            ))
        })?;
    identity
        .iter()
        .map(|v| {
            v.as_f64()
                .filter(|x| x.is_finite())
                .map(|x| x as f32)
                .ok_or_else(|| {
                    Error::Invalid(format!(
                        "{}: identity values must be numbers",
                        path.display()
                    ))
                })
        })
        .collect()
}

pub fn run(args: TrackArgs) -> Result<()> {
    let options = read_options(args.options.as_deref())?;
    let identity = identity_of(&args.identity)?;
    if !(args.fps.is_finite() && args.fps > 0.0) {
        return Err(Error::Invalid(format!(
            "--fps {}: a positive number is expected",
            args.fps
        )));
    }
    let files = frame_files(&args.frames)?;
    std::fs::create_dir_all(&args.out).map_err(|e| Error::io(&args.out, e))?;
    let (device, name) = args.device.open()?;
    let device = device.autodiff();
    let dir = args.models.clone().unwrap_or_else(default_dir);
    let models = crate::common::load_models(&dir, &device, None)?;
    let mut tracker = Tracker::new(&models, identity, args.iterations, &options)?;
    eprintln!("device: {name}; tracking {} frames", files.len());
    let mut tracks = Vec::with_capacity(files.len());
    for file in &files {
        let frame = ganfit::io::image::read(file)?;
        let track = block_on(tracker.frame(&models, &frame))?;
        let name = file.file_name().unwrap_or_default().to_string_lossy();
        match track.landmark_loss {
            Some(loss) => eprintln!(
                "{name}: yaw {:.1}°, landmark loss {loss:.5}, {:.0} ms",
                track.angles[1].to_degrees(),
                track.milliseconds
            ),
            None => eprintln!("{name}: {}", track.warnings.join("; ")),
        }
        tracks.push((name.into_owned(), track));
    }
    let found: Vec<f64> = tracks
        .iter()
        .filter(|(_, t)| t.face_found)
        .map(|(_, t)| t.milliseconds)
        .collect();
    let per_frame = found.iter().sum::<f64>() / found.len().max(1) as f64;
    let file = TrackFile {
        blendshapes: models
            .face
            .expression_names()
            .iter()
            .map(|n| arkit_name(n))
            .collect(),
        frames: tracks
            .iter()
            .map(|(file, track)| TrackedFrame {
                file: file.clone(),
                track,
            })
            .collect(),
        milliseconds_per_frame: per_frame,
        device: name.to_string(),
    };
    let json = serde_json::to_string_pretty(&file).map_err(|e| Error::Invalid(e.to_string()))?;
    let path = args.out.join("track.json");
    std::fs::write(&path, json).map_err(|e| Error::io(&path, e))?;
    // The fit's texture, when it lies beside its params.json (and fits the model's atlas).
    let texture_path = args.identity.with_file_name(export::TEXTURE_FILE);
    let texture = if texture_path.exists() {
        Some(ganfit::io::image::read(&texture_path)?)
    } else {
        None
    };
    let frames: Vec<FrameTrack> = tracks.iter().map(|(_, t)| t.clone()).collect();
    let glb = block_on(export::tracked_glb(
        &models.face,
        tracker.identity(),
        texture.as_ref(),
        &frames,
        args.fps,
    ))?;
    let glb_path = args.out.join("track.glb");
    std::fs::write(&glb_path, glb).map_err(|e| Error::io(&glb_path, e))?;
    println!(
        "tracked {} of {} frames, {per_frame:.0} ms per frame on {name}: {}",
        found.len(),
        tracks.len(),
        path.display()
    );
    Ok(())
}
