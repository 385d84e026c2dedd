//! `ganfit fit PHOTO... --out DIR`: the whole pipeline on photos, with every output file.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Args;
use ganfit::device::block_on;
use ganfit::fit::models::{TextureChoice, default_dir};
use ganfit::fit::{self, Control, FitOptions, FitResult, FitStage, Models};
use ganfit::{Error, Result};

use crate::common::Backend;

#[derive(Args)]
pub struct FitArgs {
    /// Photos (JPEG, PNG, WebP, BMP, PPM).
    #[arg(required = true)]
    pub photos: Vec<PathBuf>,
    /// Output folder (created).
    #[arg(long)]
    pub out: PathBuf,
    /// The photos show one person: share identity and texture.
    #[arg(long)]
    pub same_person: bool,
    /// Stage 2 iterations.
    #[arg(long)]
    pub iterations: Option<usize>,
    /// Stage 1 (landmark) iterations.
    #[arg(long)]
    pub landmark_iterations: Option<usize>,
    /// Stage 3 iterations: the identity network's terms on the texture, the light and the
    /// identity (0: the terms join stage 2 and move everything, as in GANFit).
    #[arg(long)]
    pub identity_iterations: Option<usize>,
    /// Leave the identity network's terms off (no stage 3; faster, and faceres.bpk is not
    /// needed).
    #[arg(long)]
    pub no_identity: bool,
    /// Working resolution, pixels.
    #[arg(long)]
    pub resolution: Option<usize>,
    /// Texture model (default: PCA when its file exists, else the GAN).
    #[arg(long, value_enum)]
    pub texture: Option<TextureChoice>,
    /// Keep the model's texture only (no photo blending).
    #[arg(long)]
    pub no_blend: bool,
    /// Blend the photo texture texel by texel by confidence alone (the earlier blend, with
    /// visible seams; for comparison).
    #[arg(long)]
    pub hard_blend: bool,
    #[arg(long, value_enum, default_value_t = Backend::Auto)]
    pub device: Backend,
    /// Model folder (default: $GANFIT_MODELS or ./models).
    #[arg(long)]
    pub models: Option<PathBuf>,
    /// Options as JSON (see `FitOptions`); flags override it.
    #[arg(long)]
    pub options: Option<PathBuf>,
    /// Which detected face to fit when a photo shows several: 0 the largest (the default),
    /// 1 the next by size, …
    #[arg(long)]
    pub face: Option<usize>,
    /// The detector and landmarks (default: MediaPipe's BlazeFace and face mesh).
    #[arg(long, value_enum)]
    pub eyes: Option<ganfit::nets::Eyes>,
    /// Write face.glb as an animatable head: the fitted identity with expression zeroed, the
    /// 53 expression blendshapes as morph targets named by their ARKit names, the fitted
    /// expression as their default weights.
    #[arg(long)]
    pub blendshapes: bool,
    /// With --blendshapes: store the displacements as f32 instead of 16-bit integers
    /// (KHR_mesh_quantization, about half the file), for glTF readers without that extension.
    #[arg(long, requires = "blendshapes")]
    pub float_morphs: bool,
    /// With --blendshapes: add the eyeballs, the eye sockets and the mouth interior (gums,
    /// tongue, teeth) from the face model file, with painted textures, so the head is not
    /// hollow when the mouth opens.
    #[arg(long, requires = "blendshapes")]
    pub interior: bool,
}

/// What face.glb holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GlbKind {
    /// The fitted head as it is.
    Static,
    /// The animatable head; `quantized` displacements or f32; with the `interior` regions
    /// read from the face model file.
    Blendshapes { quantized: bool, interior: bool },
}

impl FitArgs {
    pub fn glb_kind(&self) -> GlbKind {
        if self.blendshapes {
            GlbKind::Blendshapes {
                quantized: !self.float_morphs,
                interior: self.interior,
            }
        } else {
            GlbKind::Static
        }
    }
}

pub fn options_from(args: &FitArgs) -> Result<FitOptions> {
    let mut options = crate::common::read_options(args.options.as_deref())?;
    options.same_person |= args.same_person;
    if let Some(n) = args.iterations {
        options.iterations = n;
    }
    if let Some(n) = args.landmark_iterations {
        options.landmark_iterations = n;
    }
    if let Some(r) = args.resolution {
        options.resolution = r;
    }
    if let Some(n) = args.identity_iterations {
        options.identity_iterations = n;
    }
    if args.no_identity {
        options.weights = options.weights.without_identity_network();
    }
    options.blend_photo_texture &= !args.no_blend;
    options.seamless_blend &= !args.hard_blend;
    if let Some(face) = args.face {
        options.face = face;
    }
    if args.eyes.is_some() {
        options.eyes = args.eyes;
    }
    options.validate()?;
    Ok(options)
}

/// Makes `out` and checks that files can be written there, before a fit spends minutes.
fn check_output_folder(out: &Path) -> Result<()> {
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    let probe = out.join(".ganfit-write-check");
    std::fs::write(&probe, b"").map_err(|e| Error::io(&probe, e))?;
    std::fs::remove_file(&probe).map_err(|e| Error::io(&probe, e))
}

fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).map_err(|e| Error::io(path, e))
}

/// Writes every output of `result` into `out`; `models_dir` holds the face model file (read
/// again for an avatar with the interior regions).
pub fn write_outputs(
    models: &Models,
    models_dir: &Path,
    result: &FitResult,
    photos: &[image::RgbImage],
    out: &Path,
    glb: GlbKind,
) -> Result<()> {
    use ganfit::fit::export::{self, MESH_NAME, TEXTURE_FILE};
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    let files = export::exports(&models.face, result)?;
    write(
        &out.join(format!("{MESH_NAME}.obj")),
        files.obj.obj.as_bytes(),
    )?;
    write(
        &out.join(format!("{MESH_NAME}.mtl")),
        files.obj.mtl.as_bytes(),
    )?;
    if let Some(png) = &files.texture_png {
        write(&out.join(TEXTURE_FILE), png)?;
    }
    let glb = match glb {
        GlbKind::Blendshapes {
            quantized,
            interior: false,
        } => block_on(export::blendshape_glb(&models.face, result, quantized))?,
        GlbKind::Blendshapes {
            quantized,
            interior: true,
        } => {
            let file = ganfit::io::read_model_file(models_dir, ganfit::fit::models::FACE_MODEL)?;
            block_on(export::avatar_glb(
                &models.face,
                &file,
                &export::RigParams::of(result)?,
                result.texture.as_ref(),
                quantized,
            ))?
        }
        GlbKind::Static => files.glb,
    };
    write(&out.join(format!("{MESH_NAME}.glb")), &glb)?;
    write(&out.join("params.json"), files.params_json.as_bytes())?;
    for photo_fit in &result.photos {
        let (i, photo) = (photo_fit.index, &photos[photo_fit.index]);
        if let Some((render, _)) = &photo_fit.render {
            let alpha = &photo_fit.overlay_alpha;
            let overlay = fit::overlay::compose(photo, &photo_fit.photo.crop, render, alpha, 0.85);
            let name = if photos.len() == 1 {
                "overlay.png".to_string()
            } else {
                format!("overlay_{i}.png")
            };
            overlay
                .save(out.join(&name))
                .map_err(|e| Error::Image(format!("{name}: {e}")))?;
        }
    }
    write(&out.join("losses.tsv"), files.losses_tsv.as_bytes())
}

pub fn run(args: FitArgs) -> Result<()> {
    let options = options_from(&args)?;
    check_output_folder(&args.out)?;
    let mut budget = ganfit::io::image::PixelBudget::default();
    let photos = args
        .photos
        .iter()
        .map(|path| {
            let photo = ganfit::io::image::read(path)?;
            budget.take(&photo).map(|()| photo)
        })
        .collect::<Result<Vec<_>>>()?;
    let (device, name) = args.device.open()?;
    let device = device.autodiff();
    let dir = args.models.clone().unwrap_or_else(default_dir);
    let models = crate::common::load_models(&dir, &device, args.texture)?;
    eprintln!("device: {name}");
    eprintln!(
        "fitting {} photo(s) with the {} texture model",
        photos.len(),
        models.texture.name()
    );
    let mut stderr = std::io::stderr();
    let result = block_on(fit::fit(&models, &photos, &options, &mut |p| {
        if let Some(l) = &p.losses {
            let terms: Vec<String> = l
                .named()
                .iter()
                .map(|(name, value)| format!("{name} {value:.4}"))
                .collect();
            let _ = writeln!(
                stderr,
                "{:?} {:4}/{:<4} {}  {:.1} s",
                p.stage,
                p.iteration,
                p.iterations,
                terms.join(" "),
                p.elapsed_ms / 1000.0
            );
        } else if p.stage == FitStage::Preparing {
            // Photos are numbered from 0, as in warnings, results and overlay file names.
            let _ = writeln!(
                stderr,
                "preparing photo {} (photos 0 to {})",
                p.iteration,
                p.iterations.saturating_sub(1)
            );
        }
        Control::Continue
    }))?;
    for w in &result.warnings {
        eprintln!("warning: {w}");
    }
    write_outputs(&models, &dir, &result, &photos, &args.out, args.glb_kind())?;
    if let Some(check) = &result.texture_check {
        println!(
            "texture: face-area L1 to the photo {:.4} (model texture {:.4}), seam {}, {} seen \
             texels left to the model as not skin",
            check.final_photo_l1,
            check.model_photo_l1,
            check.seam.map_or("-".into(), |s| format!("{s:.2}")),
            check.rejected_texels
        );
    }
    println!(
        "fit: {:.1} s, outputs in {}",
        result.milliseconds / 1000.0,
        args.out.display()
    );
    Ok(())
}
