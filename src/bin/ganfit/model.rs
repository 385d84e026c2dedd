//! `ganfit model ...`: convert ICT-FaceKit into the face model file, describe it, export the
//! mean face for a look in Blender or three.js.

use std::path::{Path, PathBuf};

use clap::Subcommand;
use ganfit::device;
use ganfit::face_model::format::Precision;
use ganfit::face_model::{self, FaceArea, FaceModel, ModelFile, Region, RegionSelection, ict};
use ganfit::io;
use ganfit::{Error, Result};

#[derive(Subcommand)]
pub enum Model {
    /// Convert ICT-FaceKit (archive or upstream checkout) into the face model file.
    Convert {
        /// `ict-facekit.tar.xz`, or a clone of the upstream repository at the pinned commit
        /// [default: $GANFIT_DATA/ict-facekit.tar.xz, GANFIT_DATA defaulting to ../shared/data].
        #[arg(long)]
        source: Option<PathBuf>,
        /// Output file [default: $GANFIT_MODELS/face_model.gfm, GANFIT_MODELS defaulting to models].
        #[arg(long)]
        out: Option<PathBuf>,
        /// Store the bases as f32 instead of f16 (twice the size).
        #[arg(long)]
        f32: bool,
    },
    /// Describe a face model file: counts per region, bases, storage error, provenance.
    Info {
        /// The model file [default: $GANFIT_MODELS/face_model.gfm].
        path: Option<PathBuf>,
        /// Fail unless the file was written by this build's converter (for `make models`).
        #[arg(long)]
        check: bool,
    },
    /// Write the mean face as OBJ + MTL + PNG and as GLB, with a uv check texture.
    Export {
        /// The model file [default: $GANFIT_MODELS/face_model.gfm].
        #[arg(long)]
        model: Option<PathBuf>,
        /// Output folder.
        #[arg(long)]
        out: PathBuf,
        /// Include eyeballs and eye sockets.
        #[arg(long)]
        eyes: bool,
        /// Include the mouth socket, gums, tongue and teeth.
        #[arg(long)]
        mouth: bool,
        /// Height of the texture in pixels (its width is one height per atlas slot).
        #[arg(long, default_value_t = 1024)]
        texture_size: u32,
    },
}

fn env_dir(var: &str, fallback: &str) -> PathBuf {
    std::env::var_os(var)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(fallback))
}

fn default_model() -> PathBuf {
    env_dir("GANFIT_MODELS", "models").join(face_model::DEFAULT_FILE_NAME)
}

pub fn run(what: Model) -> Result<()> {
    match what {
        Model::Convert { source, out, f32 } => convert(source, out, f32),
        Model::Info { path, check } => info(&path.unwrap_or_else(default_model), check),
        Model::Export {
            model,
            out,
            eyes,
            mouth,
            texture_size,
        } => export(
            &model.unwrap_or_else(default_model),
            &out,
            RegionSelection {
                eyes,
                mouth_interior: mouth,
            },
            texture_size,
        ),
    }
}

fn megabytes(bytes: usize) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

fn convert(source: Option<PathBuf>, out: Option<PathBuf>, f32: bool) -> Result<()> {
    let source = source
        .unwrap_or_else(|| env_dir("GANFIT_DATA", "../shared/data").join("ict-facekit.tar.xz"));
    let out = out.unwrap_or_else(default_model);
    let precision = if f32 { Precision::F32 } else { Precision::F16 };
    println!("source: {}", source.display());
    let report = ict::convert_to_file(&ict::IctSource::from_path(&source), &out, precision)?;
    let e = &report.storage.max_error;
    println!("wrote: {} ({})", out.display(), megabytes(report.bytes));
    println!("bases: {}", report.storage.bases);
    println!(
        "max vertex error of storage: mean {:.2e} mm, identity {:.2e} mm, expression {:.2e} mm",
        e.mean_mm, e.identity_mm, e.expression_mm
    );
    println!(
        "winding: {}",
        if report.flipped_winding {
            "reversed to face outwards"
        } else {
            "ICT's own (counter-clockwise from outside)"
        }
    );
    println!(
        "conversion time: {:.1} s (reading and parsing {:.1} s)",
        report.seconds, report.read_seconds
    );
    Ok(())
}

fn info(path: &Path, check: bool) -> Result<()> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let label = path.display().to_string();
    let file = ModelFile::parse(&bytes, &label)?;
    let h = &file.header;
    if check && h.converter != ict::converter_id() {
        return Err(Error::model(
            label,
            format!(
                "written by {:?}, this build converts with {:?}: convert again",
                h.converter,
                ict::converter_id()
            ),
        ));
    }
    let s = &h.source;
    println!(
        "file: {} ({}, format v{})",
        path.display(),
        megabytes(bytes.len()),
        face_model::format::VERSION
    );
    println!(
        "source: {} {} @ {}",
        s.name,
        s.repository,
        s.commit.chars().take(12).collect::<String>()
    );
    println!("licence: {}, {}", s.license, s.copyright);
    println!(
        "source files: {} checksummed (sha256){}",
        s.files.len(),
        s.archive_sha256
            .as_ref()
            .map(|a| format!(", archive {a}"))
            .unwrap_or_default()
    );
    println!("converter: {}", h.converter);
    println!("unit: mm (ICT's cm x 10); axes x to the subject's left, y up, z out of the face");
    println!(
        "vertices: {}, triangles: {}, uvs: {}",
        h.num_vertices, h.num_triangles, h.num_uvs
    );
    println!(
        "{:<18} {:>14} {:>10} {:>10}",
        "region", "ICT vertices", "vertices", "triangles"
    );
    for r in &h.regions {
        let range = format!("{}..{}", r.vertices.start, r.vertices.end);
        println!(
            "{:<18} {:>14} {:>10} {:>10}",
            r.region.ict_name(),
            range,
            r.vertices.len(),
            r.triangles.len()
        );
    }
    for a in &h.face_areas {
        println!(
            "face area {:<8} vertices {}..{} ({})",
            format!("{:?}", a.area).to_lowercase(),
            a.vertices.start,
            a.vertices.end,
            a.vertices.len()
        );
    }
    let e = &h.storage.max_error;
    println!(
        "identity basis: {} modes x {} vertices x 3, {}, max vertex error {:.2e} mm",
        h.identity_names.len(),
        h.num_vertices,
        h.storage.bases,
        e.identity_mm
    );
    println!(
        "expression basis: {} blendshapes x {} vertices x 3, {}, max vertex error {:.2e} mm",
        h.expression_names.len(),
        h.num_vertices,
        h.storage.bases,
        e.expression_mm
    );
    println!("mean: f32, max vertex error {:.2e} mm", e.mean_mm);
    let lengths: Vec<usize> = h.landmarks.contour.iter().map(Vec::len).collect();
    println!(
        "landmarks: 68 (Multi-PIE); jaw contour candidates per jaw point {}-{}",
        lengths.iter().min().unwrap_or(&0),
        lengths.iter().max().unwrap_or(&0)
    );
    let device = device::cpu();
    for (name, selection) in [
        ("face + head/neck (default)", RegionSelection::default()),
        (
            "+ eyes",
            RegionSelection {
                eyes: true,
                mouth_interior: false,
            },
        ),
        ("+ eyes + mouth interior", RegionSelection::all()),
    ] {
        // A file may lack the optional regions (eyes, mouth interior): say so, and go on.
        let m = match FaceModel::from_file(&file, &device, selection) {
            Ok(m) => m,
            Err(e) => {
                println!("selection {name}: not available ({e})");
                continue;
            }
        };
        let slots: Vec<&str> = m
            .uv_atlas()
            .slots
            .iter()
            .map(|s| s.material.as_str())
            .collect();
        println!(
            "selection {name}: {} shape vertices, {} render vertices, {} triangles, uv atlas {}:1 [{}], narrow face mask {} vertices",
            m.num_shape_vertices(),
            m.num_render_vertices(),
            m.triangles().len(),
            m.uv_atlas().aspect(),
            slots.join(", "),
            m.shape_face_mask(FaceArea::Narrow)
                .iter()
                .filter(|&&x| x)
                .count()
        );
    }
    Ok(())
}

/// A texture for checking the uv layout by eye: each atlas slot in its own colour, the
/// narrow face area brighter, a grid every 1/16 of a slot, and the slot's top-left corner
/// marked in red (it must sit at the top left of each island's tile when the uvs are right).
fn uv_check_texture(model: &FaceModel, height: u32) -> image::RgbImage {
    let slots = model.uv_atlas().aspect() as u32;
    let width = height * slots;
    let mask = model.uv_face_mask(FaceArea::Narrow, width as usize, height as usize);
    let palette = [
        [214, 170, 140],
        [120, 150, 200],
        [200, 90, 110],
        [230, 230, 210],
        [240, 240, 240],
        [90, 130, 90],
    ];
    image::RgbImage::from_fn(width, height, |x, y| {
        let slot = (x / height) as usize;
        let (u, v) = (x % height, y);
        let cell = (height / 16).max(1);
        if u < cell && v < cell {
            return image::Rgb([230, 20, 20]);
        }
        if u % cell == 0 || v % cell == 0 {
            return image::Rgb([40, 40, 40]);
        }
        let base = palette[slot % palette.len()];
        let lift = 0.7 + 0.3 * mask[(y * width + x) as usize];
        image::Rgb(base.map(|c| (c as f32 * lift).round() as u8))
    })
}

fn export(
    model_path: &Path,
    out: &Path,
    selection: RegionSelection,
    texture_size: u32,
) -> Result<()> {
    let model = FaceModel::load(model_path, &device::cpu(), selection)?;
    let mesh = model.mesh_data(model.mean_positions().to_vec())?;
    let texture = uv_check_texture(&model, texture_size);
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    let name = "mean_face";
    let obj = io::obj::write(&mesh, name, Some(&format!("{name}.png")))?;
    let files: [(String, Vec<u8>); 4] = [
        (format!("{name}.obj"), obj.obj.into_bytes()),
        (format!("{name}.mtl"), obj.mtl.into_bytes()),
        (format!("{name}.png"), io::png_bytes(&texture)?),
        (
            format!("{name}.glb"),
            io::glb::write(&mesh, Some(&texture), name)?,
        ),
    ];
    for (file, bytes) in files {
        let path = out.join(file);
        std::fs::write(&path, &bytes).map_err(|e| Error::io(&path, e))?;
        println!("wrote: {} ({})", path.display(), megabytes(bytes.len()));
    }
    let regions: Vec<&str> = selection
        .regions()
        .iter()
        .map(|r: &Region| r.ict_name())
        .collect();
    println!(
        "regions: {}; {} vertices, {} triangles; positions in metres",
        regions.join(", "),
        mesh.positions.len(),
        mesh.triangles.len()
    );
    Ok(())
}
