//! The corpus builder (`ganfit texture unwrap`): photo → geometry and camera (the fitter's first
//! stage) → lighting → UV albedo with a confidence mask → mirror fill → push-pull fill.
//!
//! A photo is rejected, with the reason recorded in the index, when it cannot be decoded, has
//! no face, is seen from beyond ±60° of yaw, fits its landmarks badly (RMS error above 6% of the
//! crop), or shows less than 30% of the face area.

use std::path::{Path, PathBuf};

use image::{GrayImage, RgbImage};

use crate::error::{Error, Result};
use crate::face_model::FaceModel;
use crate::fit::unwrap::{UvSampler, push_pull_fill, unwrap};
use crate::fit::{Control, FitOptions, Session};
use crate::nets::FaceNets;
use crate::texture::corpus::{Entry, Index};

#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// UV map height (the width follows the face model's atlas).
    pub resolution: usize,
    /// The geometry stage's settings (resolution, landmark iterations, rates).
    pub fit: FitOptions,
    /// Iterations of the lighting estimate.
    pub lighting_iterations: usize,
    pub max_landmark_error: f32,
    pub min_coverage: f32,
    pub max_yaw_degrees: f32,
    /// Photos unwrapped at once, each on its own thread (the fits are independent).
    pub jobs: usize,
}

impl Default for BuildOptions {
    fn default() -> Self {
        let fit = FitOptions {
            resolution: 128,
            landmark_iterations: 120,
            report_every: 120,
            ..FitOptions::default()
        };
        Self {
            resolution: 256,
            fit,
            lighting_iterations: 20,
            max_landmark_error: 0.06,
            // Of the face area's texels (`FaceArea::Full`: ears and the sides of the head
            // included), a frontal UTKFace crop, cut at the forehead and the chin, sees 18–20 %
            // with confidence over 0.3 (measured; texels past the photo's border do not count,
            // which before they did at 26–34 %): a third below that is a face mostly out of
            // the photo or turned away.
            min_coverage: 0.12,
            max_yaw_degrees: 60.0,
            jobs: 1,
        }
    }
}

/// For each texel, the texel holding the mirror image of its surface point (x → −x on the mean
/// face), where one lies within 4 mm.
pub fn mirror_map(face: &FaceModel, sampler: &UvSampler) -> Vec<Option<u32>> {
    let points: Vec<Option<[f32; 3]>> = (0..sampler.texels.len())
        .map(|i| sampler.point(face, face.mean_positions(), i))
        .collect();
    let cell = 4.0f32;
    let key = |p: [f32; 3]| {
        (
            (p[0] / cell).floor() as i32,
            (p[1] / cell).floor() as i32,
            (p[2] / cell).floor() as i32,
        )
    };
    let mut grid: std::collections::HashMap<(i32, i32, i32), Vec<u32>> =
        std::collections::HashMap::new();
    for (i, p) in points.iter().enumerate() {
        if let Some(p) = p {
            grid.entry(key(*p)).or_default().push(i as u32);
        }
    }
    points
        .iter()
        .map(|p| {
            let p = (*p)?;
            let q = [-p[0], p[1], p[2]];
            let (kx, ky, kz) = key(q);
            let mut best: Option<(f32, u32)> = None;
            for dx in -1..=1 {
                for dy in -1..=1 {
                    for dz in -1..=1 {
                        for &j in grid.get(&(kx + dx, ky + dy, kz + dz)).into_iter().flatten() {
                            let o = points[j as usize].expect("listed");
                            let d = (o[0] - q[0]).powi(2)
                                + (o[1] - q[1]).powi(2)
                                + (o[2] - q[2]).powi(2);
                            if best.is_none_or(|(bd, _)| d < bd) {
                                best = Some((d, j));
                            }
                        }
                    }
                }
            }
            best.filter(|(d, _)| *d < cell * cell).map(|(_, j)| j)
        })
        .collect()
}

/// The unwrapped texture and mask of one photo, or why it was rejected.
pub async fn unwrap_photo(
    face: &FaceModel,
    nets: &FaceNets,
    sampler: &UvSampler,
    mirror: &[Option<u32>],
    photo: &RgbImage,
    options: &BuildOptions,
) -> Result<std::result::Result<(RgbImage, GrayImage, f32, f32, f32), String>> {
    let mut quiet = |_: &crate::fit::Progress| Control::Continue;
    let mut session = match Session::prepare(
        face,
        nets,
        std::slice::from_ref(photo),
        0,
        1,
        &options.fit,
        &mut quiet,
    )
    .await
    {
        Ok(s) => s,
        Err(e) if e.is_no_face() => return Ok(Err("no face".into())),
        // Most often a profile: skip the photo rather than end the whole build.
        Err(Error::MeshRejected(flag)) => {
            return Ok(Err(format!("face mesh refused the face (flag {flag:.2})")));
        }
        Err(e) => return Err(e),
    };
    // A face the mesh refused has the keypoint-posed canonical face for landmarks: its pose is
    // coarse (several degrees off), which would smear the texture across the UV map.
    if let Some(flag) = session.targets[0].analysis.mesh_rejected {
        return Ok(Err(format!(
            "face mesh refused the face (flag {flag:.2}): landmarks too coarse to unwrap"
        )));
    }
    session
        .landmark_stage(face, &options.fit, &mut quiet)
        .await?;
    let landmark_error = session
        .log
        .last()
        .map(|e| (e.losses.landmarks / options.fit.weights.landmarks).sqrt())
        .unwrap_or(f32::INFINITY);
    session
        .lighting_stage(face, options.lighting_iterations, &options.fit, &mut quiet)
        .await?;
    let params = session.params.read().await?;
    let p = &params[0];
    let yaw = p.angles[1].to_degrees();
    if yaw.abs() > options.max_yaw_degrees {
        return Ok(Err(format!("yaw {yaw:.0}°")));
    }
    if !(landmark_error <= options.max_landmark_error) {
        return Ok(Err(format!(
            "landmark RMS error {:.1}% of the crop",
            100.0 * landmark_error
        )));
    }
    let shape_tensor = face.vertices(
        session.params.identity.value.clone(),
        session.params.expression.value.clone(),
    )?;
    let (shape, _) = crate::device::read_floats(shape_tensor).await?;
    let shape: Vec<[f32; 3]> = shape.chunks_exact(3).map(|c| [c[0], c[1], c[2]]).collect();
    let target = &session.targets[0];
    let u = unwrap(face, sampler, &shape, p, target)?;
    let coverage = u.coverage(sampler, 0.3);
    if coverage < options.min_coverage {
        return Ok(Err(format!("face area seen {:.0}%", 100.0 * coverage)));
    }
    let (w, h) = (u.width, u.height);
    let n = w * h;
    let mut colours = u.albedo.clone();
    let mut weights = u.confidence.clone();
    for i in 0..n {
        if weights[i] < 0.3
            && let Some(j) = mirror[i]
        {
            let c = u.confidence[j as usize];
            if c > weights[i] {
                colours[i] = u.albedo[j as usize];
                weights[i] = c;
            }
        }
    }
    push_pull_fill(&mut colours, &weights, w, h);
    let texture = RgbImage::from_fn(w as u32, h as u32, |x, y| {
        let c = colours[y as usize * w + x as usize];
        image::Rgb(c.map(|v| (v.clamp(0.0, 1.0) * 255.0).round() as u8))
    });
    let mask = GrayImage::from_fn(w as u32, h as u32, |x, y| {
        image::Luma([(u.confidence[y as usize * w + x as usize] * 255.0).round() as u8])
    });
    Ok(Ok((
        texture,
        mask,
        coverage,
        landmark_error * options.fit.resolution as f32,
        yaw,
    )))
}

/// Builds (or extends: existing entries are kept) a corpus from the photos of `photos_dir`.
/// `every`: take every n-th photo of the sorted list (a spread sample of a large folder).
/// The photo set's `identities.tsv` (file name, tab, person; a header line), looked for in the
/// photo folder and its parent (CelebA-wild keeps it beside `images/`). Empty when there is none.
pub fn read_identities(photos_dir: &Path) -> Result<std::collections::HashMap<String, String>> {
    let candidates = [
        Some(photos_dir.join("identities.tsv")),
        photos_dir.parent().map(|p| p.join("identities.tsv")),
    ];
    let Some(path) = candidates.into_iter().flatten().find(|p| p.is_file()) else {
        return Ok(Default::default());
    };
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
    let mut map = std::collections::HashMap::new();
    for (number, line) in text.lines().enumerate().skip(1) {
        if line.trim().is_empty() {
            continue;
        }
        let Some((file, person)) = line.split_once('\t') else {
            return Err(Error::Invalid(format!(
                "{} line {}: expected `file<TAB>identity`",
                path.display(),
                number + 1
            )));
        };
        map.insert(file.trim().to_string(), person.trim().to_string());
    }
    Ok(map)
}

pub fn build(
    face: &FaceModel,
    nets: &FaceNets,
    photos_dir: &Path,
    out: &Path,
    options: &BuildOptions,
    every: usize,
    limit: Option<usize>,
    mut log: impl FnMut(&str),
) -> Result<Index> {
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    let aspect = face.uv_atlas().aspect();
    let mut index = crate::texture::corpus::read_index(out).unwrap_or(Index {
        resolution: options.resolution,
        aspect,
        entries: Vec::new(),
        rejected: Vec::new(),
    });
    if index.resolution != options.resolution || index.aspect != aspect {
        return Err(Error::Invalid(format!(
            "{} holds {}x{} textures, not {}x{}",
            out.display(),
            index.resolution * index.aspect,
            index.resolution,
            options.resolution * aspect,
            options.resolution
        )));
    }
    let done: std::collections::HashSet<String> = index
        .entries
        .iter()
        .map(|e| e.source.clone())
        .chain(index.rejected.iter().map(|r| r.0.clone()))
        .collect();
    let sampler = UvSampler::new(face, options.resolution * aspect, options.resolution);
    let mirror = mirror_map(face, &sampler);
    let mut files: Vec<PathBuf> = crate::io::image::photo_files(photos_dir)?
        .into_iter()
        .step_by(every.max(1))
        .collect();
    if let Some(n) = limit {
        files.truncate(n);
    }
    let prefix = photos_dir
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let identities = read_identities(photos_dir)?;
    let source_of = |path: &Path| {
        format!(
            "{prefix}/{}",
            path.strip_prefix(photos_dir).unwrap_or(path).display()
        )
    };
    let todo: Vec<&PathBuf> = files
        .iter()
        .filter(|p| !done.contains(&source_of(p)))
        .collect();
    let start = crate::util::clock::now_ms();
    let mut processed = 0usize;
    // Workers unwrap the photos; this thread numbers, saves and indexes them (ids follow the
    // order the photos finish in). An error here stops the workers after the photo they are on.
    crate::util::jobs::run(
        &todo,
        options.jobs,
        |path| match crate::io::image::read(path) {
            Err(e) => Ok(Err(format!("unreadable: {e}"))),
            Ok(photo) => crate::device::block_on(unwrap_photo(
                face, nets, &sampler, &mirror, &photo, options,
            )),
        },
        |path, outcome| -> Result<()> {
            let source = source_of(path);
            processed += 1;
            match outcome? {
                Ok((texture, mask, coverage, landmark_error, yaw)) => {
                    let id = format!("{:06}", index.entries.len() + index.rejected.len());
                    let save_err = |e: image::ImageError| Error::Image(format!("{id}: {e}"));
                    texture
                        .save(out.join(format!("{id}.png")))
                        .map_err(save_err)?;
                    mask.save(out.join(format!("{id}_mask.png")))
                        .map_err(save_err)?;
                    let identity = path
                        .file_name()
                        .and_then(|name| identities.get(name.to_string_lossy().as_ref()))
                        .map(|person| format!("{prefix}:{person}"));
                    index.entries.push(Entry {
                        id,
                        source,
                        coverage,
                        landmark_error,
                        yaw,
                        identity,
                    });
                }
                Err(reason) => index.rejected.push((source, reason)),
            }
            if processed.is_multiple_of(25) || processed == todo.len() {
                let json = serde_json::to_vec(&index).map_err(|e| Error::Invalid(e.to_string()))?;
                crate::io::write_atomic(&out.join("index.json"), &json)?;
                let elapsed = (crate::util::clock::now_ms() - start) / 1000.0;
                log(&format!(
                    "{} photos: {} kept, {} rejected, {:.2} s/photo",
                    index.entries.len() + index.rejected.len(),
                    index.entries.len(),
                    index.rejected.len(),
                    elapsed / processed as f64
                ));
            }
            Ok(())
        },
    )?;
    let json = serde_json::to_vec(&index).map_err(|e| Error::Invalid(e.to_string()))?;
    crate::io::write_atomic(&out.join("index.json"), &json)?;
    Ok(index)
}

/// Why photos were left out, by kind (the reason's words before its first number), most
/// frequent first.
pub fn rejections_by_reason(index: &Index) -> Vec<(String, usize)> {
    let mut counts: std::collections::BTreeMap<String, usize> = Default::default();
    for (_, reason) in &index.rejected {
        let kind = reason
            .split(|c: char| c.is_ascii_digit() || c == ':' || c == '(')
            .next()
            .unwrap_or("")
            .trim_end_matches(|c: char| c == '-' || c.is_whitespace())
            .trim()
            .to_string();
        *counts.entry(kind).or_default() += 1;
    }
    let mut counts: Vec<(String, usize)> = counts.into_iter().collect();
    counts.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    counts
}

/// A contact sheet: texture and mask of up to `count` entries, side by side.
pub fn contact_sheet(dir: &Path, count: usize) -> Result<RgbImage> {
    let index = crate::texture::corpus::read_index(dir)?;
    let mut tiles = Vec::new();
    for e in index.entries.iter().take(count) {
        let read = |p: PathBuf| {
            image::open(&p).map_err(|err| Error::Image(format!("{}: {err}", p.display())))
        };
        tiles.push(read(dir.join(format!("{}.png", e.id)))?.to_rgb8());
        tiles.push(read(dir.join(format!("{}_mask.png", e.id)))?.to_rgb8());
    }
    Ok(crate::texture::images::grid(&tiles, 8))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejections_are_counted_by_kind() {
        let rejected = [
            "yaw 72°",
            "no face",
            "yaw -65°",
            "landmark RMS error 7.1% of the crop",
            "face mesh refused the face (flag 0.12)",
            "unreadable: cannot decode the image: the file is empty",
            "yaw 61°",
        ];
        let index = Index {
            resolution: 8,
            aspect: 2,
            entries: Vec::new(),
            rejected: rejected
                .iter()
                .enumerate()
                .map(|(i, r)| (format!("p/{i}.jpg"), r.to_string()))
                .collect(),
        };
        assert_eq!(
            rejections_by_reason(&index),
            [
                ("yaw".to_string(), 3),
                ("face mesh refused the face".to_string(), 1),
                ("landmark RMS error".to_string(), 1),
                ("no face".to_string(), 1),
                ("unreadable".to_string(), 1),
            ]
        );
    }
}
