//! The evaluation data folders as the `eval` commands read them: AFLW2000-3D-style annotated
//! photos (`annotations.json`, `images/`) and verification pairs (`pairs.tsv`).

use std::path::Path;

use ganfit::{Error, Result};

pub struct Annotation {
    pub image: String,
    pub points: Vec<[f32; 2]>,
    pub yaw: f64,
}

pub fn annotations(data: &Path) -> Result<Vec<Annotation>> {
    let path = data.join("annotations.json");
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
    let entries: Vec<serde_json::Value> = serde_json::from_str(&text)
        .map_err(|e| Error::Invalid(format!("{}: {e}", path.display())))?;
    let mut out = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let image = entry.get("image").and_then(|v| v.as_str());
        let points: Option<Vec<[f32; 2]>> = entry
            .get("landmarks68_2d_reannotated")
            .and_then(|v| v.as_array())
            .map(|list| {
                list.iter()
                    .filter_map(|p| Some([p.get(0)?.as_f64()? as f32, p.get(1)?.as_f64()? as f32]))
                    .collect()
            });
        let yaw = entry.get("yaw").and_then(|v| v.as_f64());
        match (image, points, yaw) {
            (Some(image), Some(points), Some(yaw)) if points.len() == 68 => out.push(Annotation {
                image: image.to_string(),
                points,
                yaw,
            }),
            _ => {
                eprintln!("skip annotation {i}: needs image, 68 landmarks68_2d_reannotated and yaw")
            }
        }
    }
    Ok(out)
}

/// One annotated photo: its annotation, its landmarks in this crate's pixel convention, the image.
pub type AnnotatedImage = (Annotation, Vec<[f32; 2]>, image::RgbImage);

/// The first `limit` annotations of `data` (with `per_yaw_bin`: those of each yaw bin whose
/// place in their bin, from 0, lies in the range, a pose-balanced subset), each with its
/// landmarks in this crate's convention (pixel centres at +0.5; the data's centres are at
/// `pixel_centre`). The images are read later, one
/// at a time, with [`read_annotated`].
pub fn annotated_list(
    data: &Path,
    pixel_centre: f32,
    limit: Option<usize>,
    per_yaw_bin: Option<std::ops::Range<usize>>,
) -> Result<Vec<(Annotation, Vec<[f32; 2]>)>> {
    let mut list = annotations(data)?;
    if let Some(range) = per_yaw_bin {
        let mut seen = [0usize; 3];
        list.retain(|a| {
            let bin = ganfit::eval::landmarks::yaw_bin(a.yaw);
            seen[bin] += 1;
            range.contains(&(seen[bin] - 1))
        });
    }
    list.truncate(limit.unwrap_or(usize::MAX));
    let shift = 0.5 - pixel_centre;
    Ok(list
        .into_iter()
        .map(|a| {
            let truth = a
                .points
                .iter()
                .map(|p| [p[0] + shift, p[1] + shift])
                .collect();
            (a, truth)
        })
        .collect())
}

/// The decoded image of an annotation; `None` for one that cannot be read (reported here, to be
/// counted as skipped by the caller).
pub fn read_annotated(data: &Path, annotation: &Annotation) -> Option<image::RgbImage> {
    ganfit::io::image::read(data.join("images").join(&annotation.image))
        .inspect_err(|e| eprintln!("skip {}: {e}", annotation.image))
        .ok()
}

/// [`annotated_list`] with each image decoded as the iteration reaches it.
pub fn annotated_images(
    data: &Path,
    pixel_centre: f32,
    limit: Option<usize>,
    per_yaw_bin: Option<std::ops::Range<usize>>,
) -> Result<impl Iterator<Item = Option<AnnotatedImage>> + '_> {
    let list = annotated_list(data, pixel_centre, limit, per_yaw_bin)?;
    Ok(list.into_iter().map(move |(a, truth)| {
        let image = read_annotated(data, &a)?;
        Some((a, truth, image))
    }))
}

pub fn pairs(data: &Path) -> Result<Vec<(String, String, bool)>> {
    let path = data.join("pairs.tsv");
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let fields: Vec<&str> = line.split('\t').map(str::trim).collect();
        match fields.as_slice() {
            [a, b, same] if *same == "1" || *same == "0" => {
                out.push((a.to_string(), b.to_string(), *same == "1"))
            }
            _ if i == 0 => {} // header
            _ => eprintln!(
                "skip pairs.tsv line {}: expected image_a, image_b, 0/1",
                i + 1
            ),
        }
    }
    Ok(out)
}

/// The pairs, or with `limit` N the first N/2 same and N/2 different ones in file order.
pub fn pairs_limited(data: &Path, limit: Option<usize>) -> Result<Vec<(String, String, bool)>> {
    let mut list = pairs(data)?;
    if let Some(n) = limit {
        let (same, different): (Vec<_>, Vec<_>) = list.into_iter().partition(|p| p.2);
        list = same
            .into_iter()
            .take(n.div_ceil(2))
            .chain(different.into_iter().take(n / 2))
            .collect();
    }
    Ok(list)
}
