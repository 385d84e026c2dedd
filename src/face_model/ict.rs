//! The converter: ICT-FaceKit's original files → one face model file.
//!
//! Input is either ICT-FaceKit's files packed as `.tar.xz` (the project's data folder holds
//! `ict-facekit.tar.xz`) or a clone of the upstream repository checked out at
//! [`UPSTREAM_COMMIT`]. Every file the converter reads must match the SHA-256 in
//! `models/ict-facekit.sha256` (the files of that commit), so a wrong, truncated or edited
//! source fails with the name of the file and what differs.
//!
//! What it takes from each file:
//! - `README.md`: the region tables (vertex and polygon ranges), the face areas, the 68
//!   landmark indices and the jawline lists (cross-checked against `vertex_indices.json`).
//! - `FaceXModel/vertex_indices.json`: the expression names, in the order ICT's own loader
//!   uses; the landmark list to cross-check.
//! - `generic_neutral_mesh.obj`: mean, polygons (quads split along their shorter diagonal),
//!   texture coordinates, materials.
//! - `identity000–099.obj`, the 53 expression OBJs: positions only, as differences to the
//!   neutral mesh.
//! - `LICENSE`: the copyright line carried into the model file.
//!
//! ICT's transparent overlay meshes (lacrimal fluid, eye blend, eye occlusion, eyelashes;
//! vertices from 24591) are left out: they are made for Unreal's shaders and would draw as
//! grey sheets over the eyes in an opaque rasterizer. PupilDilate and cheekRaiser OBJs are not
//! in ICT's expression list and are left out too.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufReader, Read, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::time::Instant;

use sha2::{Digest, Sha256};

use super::format::{
    self, Header, MaterialInfo, ModelContents, Precision, SourceInfo, StorageError, StorageInfo,
};
use super::landmarks::{self, LandmarkData};
use super::regions::{FaceArea, FaceAreaSpan, Region, RegionSpan};
use crate::error::{Error, Result};
use crate::io::hex;
use crate::io::obj::{self, ObjMesh};

/// The upstream repository and the commit whose files the checksums pin.
pub const UPSTREAM_REPOSITORY: &str = "https://github.com/ICT-VGL/ICT-FaceKit";
pub const UPSTREAM_COMMIT: &str = "da5f95a607f5e6b37755b38d3385d7f2853732e5";
/// SHA-256 of every source file the converter reads, `sha256sum` format.
pub const MANIFEST: &str = include_str!("../../models/ict-facekit.sha256");
/// Bumped when the converter's output changes for the same input, so that `make models`
/// knows a file written by an older converter is stale.
pub const CONVERTER_REVISION: u32 = 3;

/// ICT's files are in centimetres.
const MM_PER_CM: f64 = 10.0;
const NEUTRAL: &str = "FaceXModel/generic_neutral_mesh.obj";
const CONFIG: &str = "FaceXModel/vertex_indices.json";
const README: &str = "README.md";
const LICENSE: &str = "LICENSE";
const NUM_IDENTITY: usize = 100;

/// The converter's description in the model header.
pub fn converter_id() -> String {
    format!(
        "ganfit {} ict converter r{CONVERTER_REVISION}",
        env!("CARGO_PKG_VERSION")
    )
}

/// What a conversion measured, for the command line and the notes.
#[derive(Debug, Clone)]
pub struct Report {
    pub seconds: f64,
    pub read_seconds: f64,
    pub storage: StorageInfo,
    pub bytes: usize,
    /// Whether ICT's polygons had to be reversed to face outwards.
    pub flipped_winding: bool,
}

fn manifest() -> BTreeMap<&'static str, &'static str> {
    MANIFEST
        .lines()
        .filter_map(|l| l.split_once("  "))
        .map(|(hash, path)| (path.trim(), hash.trim()))
        .collect()
}

/// A source file's bytes, checked against the manifest.
struct SourceFile {
    bytes: Vec<u8>,
    sha256: String,
}

/// Every manifest file of a source, each verified.
struct Sources {
    label: String,
    archive_sha256: Option<String>,
    files: HashMap<String, SourceFile>,
}

impl Sources {
    fn label_of(&self, file: &str) -> String {
        format!("{}: {file}", self.label)
    }

    fn bytes(&self, file: &str) -> &[u8] {
        &self.files[file].bytes
    }

    fn text(&self, file: &str) -> Result<&str> {
        std::str::from_utf8(self.bytes(file))
            .map_err(|e| Error::model(self.label_of(file), format!("not UTF-8 text: {e}")))
    }
}

/// The manifest path an archive entry stands for: entries may be stored as `./path` or under
/// one top folder (`ICT-FaceKit-<commit>/path`, as GitHub's archives have them).
fn manifest_key<'m>(entry: &Path, wanted: &BTreeMap<&'m str, &'m str>) -> Option<&'m str> {
    let text = entry.to_string_lossy().replace('\\', "/");
    let text = text.trim_start_matches("./");
    let candidates = [Some(text), text.split_once('/').map(|(_, rest)| rest)];
    candidates
        .into_iter()
        .flatten()
        .find_map(|c| wanted.get_key_value(c).map(|(k, _)| *k))
}

fn verify(label: &str, path: &str, bytes: Vec<u8>, expected: &str) -> Result<SourceFile> {
    let sha256 = hex(&Sha256::digest(&bytes));
    if sha256 != expected {
        return Err(Error::model(
            format!("{label}: {path}"),
            format!(
                "SHA-256 {sha256} differs from {expected} of ICT-FaceKit commit {}: the file is corrupt, truncated or of another version ({} bytes)",
                &UPSTREAM_COMMIT[..10],
                bytes.len()
            ),
        ));
    }
    Ok(SourceFile { bytes, sha256 })
}

fn missing_error(
    label: &str,
    found: &HashMap<String, SourceFile>,
    wanted: &BTreeMap<&str, &str>,
    what: &str,
) -> Result<()> {
    let missing: Vec<&str> = wanted
        .keys()
        .filter(|k| !found.contains_key(**k))
        .copied()
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let more = if missing.len() > 1 {
        format!(
            " and {} more of the {} expected files",
            missing.len() - 1,
            wanted.len()
        )
    } else {
        String::new()
    };
    Err(Error::model(
        label,
        format!("{what}: {}{more} missing", missing[0]),
    ))
}

/// A `Write` that hands 1 MiB chunks to another thread.
struct ChunkWriter {
    sender: SyncSender<Vec<u8>>,
    buffer: Vec<u8>,
}

const CHUNK: usize = 1 << 20;

impl Write for ChunkWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buffer.extend_from_slice(data);
        if self.buffer.len() >= CHUNK {
            self.flush()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if !self.buffer.is_empty() {
            let chunk = std::mem::replace(&mut self.buffer, Vec::with_capacity(CHUNK));
            self.sender.send(chunk).map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::BrokenPipe, "reader stopped")
            })?;
        }
        Ok(())
    }
}

/// The `Read` end of a [`ChunkWriter`].
struct ChunkReader {
    receiver: Receiver<Vec<u8>>,
    chunk: Vec<u8>,
    at: usize,
}

impl Read for ChunkReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.at == self.chunk.len() {
            match self.receiver.recv() {
                Ok(chunk) => {
                    self.chunk = chunk;
                    self.at = 0;
                }
                Err(_) => return Ok(0),
            }
        }
        let n = out.len().min(self.chunk.len() - self.at);
        out[..n].copy_from_slice(&self.chunk[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// A `Read` that hashes what passes through it.
struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(out)?;
        self.hasher.update(&out[..n]);
        Ok(n)
    }
}

/// Reads the manifest's files out of a `.tar.xz`, decompressing on a second thread while this
/// one unpacks and hashes.
fn read_archive(path: &Path, wanted: &BTreeMap<&str, &str>) -> Result<Sources> {
    let label = path.display().to_string();
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let (sender, receiver) = sync_channel::<Vec<u8>>(8);
    let decompress = std::thread::spawn(move || {
        let mut input = BufReader::new(HashingReader {
            inner: file,
            hasher: Sha256::new(),
        });
        let mut writer = ChunkWriter {
            sender,
            buffer: Vec::with_capacity(CHUNK),
        };
        let result = lzma_rs::xz_decompress(&mut input, &mut writer)
            .map_err(|e| e.to_string())
            .and_then(|()| writer.flush().map_err(|e| e.to_string()));
        // Hash whatever follows the xz stream too: the archive's checksum is of the file.
        let mut rest = Vec::new();
        let _ = input.read_to_end(&mut rest);
        result.map(|()| hex(&input.into_inner().hasher.finalize()))
    });
    let mut files = HashMap::new();
    let unpacked = (|| -> std::result::Result<(), Error> {
        let mut archive = tar::Archive::new(ChunkReader {
            receiver,
            chunk: Vec::new(),
            at: 0,
        });
        let tar_error = |e: std::io::Error| {
            Error::model(
                &label,
                format!("not a readable tar archive inside the xz stream: {e}"),
            )
        };
        for entry in archive.entries().map_err(tar_error)? {
            let mut entry = entry.map_err(tar_error)?;
            let entry_path = entry.path().map_err(tar_error)?.into_owned();
            let Some(key) = manifest_key(&entry_path, wanted) else {
                continue;
            };
            let mut bytes = Vec::with_capacity(entry.size() as usize);
            entry.read_to_end(&mut bytes).map_err(tar_error)?;
            files.insert(key.to_string(), verify(&label, key, bytes, wanted[key])?);
        }
        Ok(())
    })();
    // A failed decompression explains a failed unpack: report it first.
    let archive_sha256 = match decompress.join() {
        Ok(Ok(sha)) => sha,
        Ok(Err(e)) => {
            return Err(Error::model(
                &label,
                format!(
                    "cannot decompress: {e} (the archive is truncated or corrupt, or not an .xz file)"
                ),
            ));
        }
        Err(_) => return Err(Error::model(&label, "the decompression thread panicked")),
    };
    unpacked?;
    missing_error(&label, &files, wanted, "not the ICT-FaceKit archive")?;
    Ok(Sources {
        label,
        archive_sha256: Some(archive_sha256),
        files,
    })
}

/// Reads the manifest's files from a clone of the upstream repository.
fn read_directory(root: &Path, wanted: &BTreeMap<&str, &str>) -> Result<Sources> {
    let label = root.display().to_string();
    let mut files = HashMap::new();
    for (&key, &expected) in wanted {
        let path = root.join(key);
        match std::fs::read(&path) {
            Ok(bytes) => {
                files.insert(key.to_string(), verify(&label, key, bytes, expected)?);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(path, e)),
        }
    }
    missing_error(
        &label,
        &files,
        wanted,
        &format!(
            "not an ICT-FaceKit checkout at commit {}",
            &UPSTREAM_COMMIT[..10]
        ),
    )?;
    Ok(Sources {
        label,
        archive_sha256: None,
        files,
    })
}

/// The comma-separated integers on the first line after the line that starts with `key`.
fn readme_list(readme: &str, key: &str) -> Option<Vec<u32>> {
    let mut lines = readme
        .lines()
        .skip_while(|l| !l.trim_start().starts_with(key))
        .skip(1);
    let line = lines.find(|l| !l.trim().is_empty())?;
    line.split(',').map(|x| x.trim().parse().ok()).collect()
}

/// `[a:b]` (inclusive) → a..b+1.
fn inclusive_range(cell: &str) -> Option<Range<u32>> {
    let (a, b) = cell
        .trim()
        .strip_prefix('[')?
        .strip_suffix(']')?
        .split_once(':')?;
    let (a, b): (u32, u32) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
    (a <= b).then_some(a..b + 1)
}

/// Rows `| #n | name | [v0:v1] | [p0:p1] | #v | #p |` of the README's geometry tables.
fn readme_geometry_rows(readme: &str) -> Vec<(String, Range<u32>, Range<u32>)> {
    readme
        .lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            if cells.len() < 8 || !cells[1].starts_with('#') {
                return None;
            }
            let (vertices, polygons) = (inclusive_range(cells[3])?, inclusive_range(cells[4])?);
            let (nv, np): (u32, u32) = (cells[5].parse().ok()?, cells[6].parse().ok()?);
            (vertices.len() as u32 == nv && polygons.len() as u32 == np)
                .then(|| (cells[2].to_string(), vertices, polygons))
        })
        .collect()
}

/// The README facts the model needs, cross-checked.
struct ReadmeFacts {
    regions: Vec<(Region, Range<u32>, Range<u32>)>,
    areas: Vec<(FaceArea, Range<u32>)>,
    landmarks: LandmarkData,
    /// ICT's own jaw vertices (0–16): the frontal outline, where the contour lines start.
    outline_jaw: Vec<u32>,
}

fn readme_facts(readme: &str, config: &serde_json::Value, label: &str) -> Result<ReadmeFacts> {
    let bad = |reason: String| Error::model(label, reason);
    let rows = readme_geometry_rows(readme);
    let row = |name: &str| {
        rows.iter()
            .find(|(n, _, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v, p)| (v.clone(), p.clone()))
            .ok_or_else(|| {
                bad(format!(
                    "README.md: no row for {name:?} in its geometry tables"
                ))
            })
    };
    let regions = Region::ALL
        .into_iter()
        .map(|r| row(r.ict_name()).map(|(v, p)| (r, v, p)))
        .collect::<Result<Vec<_>>>()?;
    // Regions follow each other without gaps, in ICT's order.
    for pair in regions.windows(2) {
        if pair[0].1.end != pair[1].1.start || pair[0].2.end != pair[1].2.start {
            return Err(bad(format!(
                "README.md: regions {:?} and {:?} do not follow each other",
                pair[0].0, pair[1].0
            )));
        }
    }
    let areas = FaceArea::ALL
        .into_iter()
        .map(|a| row(a.ict_name()).map(|(v, _)| (a, v)))
        .collect::<Result<Vec<_>>>()?;
    let config_landmarks: Option<Vec<u32>> = config
        .get("idx_to_landmark_verts")
        .and_then(|v| v.as_array())
        .and_then(|a| a.iter().map(|x| x.as_u64().map(|i| i as u32)).collect());
    // The README is the documented source; vertex_indices.json holds the same 68 indices and
    // stands in when the README lacks them.
    let multipie68 = match (
        readme_list(readme, "Multi-PIE 68 point facial landmarks"),
        config_landmarks,
    ) {
        (Some(r), Some(c)) if r != c => {
            return Err(bad(
                "README.md and vertex_indices.json disagree on the 68 landmark indices".into(),
            ));
        }
        (Some(r), _) => r,
        (None, Some(c)) => c,
        (None, None) => {
            return Err(bad(
                "neither README.md nor vertex_indices.json lists the 68 landmark indices".into(),
            ));
        }
    };
    // Every point where the detector puts it (see `CALIBRATED_INNER` and `SURFACE_JAW`); ICT's
    // own jaw stays the start of the contour lines.
    let outline_jaw = multipie68[..landmarks::JAW.min(multipie68.len())].to_vec();
    let mut multipie68 = multipie68;
    if multipie68.len() == 68 {
        multipie68[..landmarks::JAW].copy_from_slice(&landmarks::SURFACE_JAW);
        multipie68[landmarks::JAW..].copy_from_slice(&landmarks::CALIBRATED_INNER);
    }
    let list = |key: &str| {
        readme_list(readme, key)
            .ok_or_else(|| bad(format!("README.md: no index list after {key:?}")))
    };
    let landmarks = LandmarkData {
        multipie68,
        jawline_right: list("Right jawline")?,
        jawline_left: list("Left jawline")?,
        jawline_right_extended: list("Right extended jawline")?,
        jawline_left_extended: list("Left extended jawline")?,
        contour: vec![vec![0]; landmarks::JAW],
    };
    landmarks.check(regions[0].1.end).map_err(|r| {
        bad(format!(
            "README.md: {r} (landmarks must lie in the Face region)"
        ))
    })?;
    for (short, long, side) in [
        (
            &landmarks.jawline_right,
            &landmarks.jawline_right_extended,
            "right",
        ),
        (
            &landmarks.jawline_left,
            &landmarks.jawline_left_extended,
            "left",
        ),
    ] {
        let mut rest = long.iter();
        if !short.iter().all(|v| rest.any(|w| w == v)) {
            return Err(bad(format!(
                "README.md: the {side} jawline is not an ordered subset of the {side} extended jawline"
            )));
        }
    }
    Ok(ReadmeFacts {
        regions,
        areas,
        landmarks,
        outline_jaw,
    })
}

fn copyright_line(license: &str) -> Option<String> {
    license
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("Copyright"))
        .map(str::to_string)
}

/// Triangles of one polygon: a quad split along its shorter diagonal (the better-shaped
/// pair), larger polygons as fans.
fn triangulate(corners: &[usize], positions: &[[f64; 3]]) -> Vec<[usize; 3]> {
    if corners.len() == 4 {
        let d = |a: usize, b: usize| {
            (0..3)
                .map(|k| (positions[corners[a]][k] - positions[corners[b]][k]).powi(2))
                .sum::<f64>()
        };
        if d(0, 2) <= d(1, 3) {
            vec![[0, 1, 2], [0, 2, 3]]
        } else {
            vec![[0, 1, 3], [1, 2, 3]]
        }
    } else {
        (1..corners.len() - 1).map(|i| [0, i, i + 1]).collect()
    }
}

/// Reads positions of a morph target OBJ (mm), checking the vertex count.
fn target_positions(sources: &Sources, file: &str, expected: usize) -> Result<Vec<[f64; 3]>> {
    let label = sources.label_of(file);
    let mesh = obj::parse(sources.bytes(file), &label, obj::Read::Positions)?;
    if mesh.positions.len() != expected {
        return Err(Error::model(
            label,
            format!(
                "{} vertices, the neutral mesh has {expected}",
                mesh.positions.len()
            ),
        ));
    }
    Ok(mesh
        .positions
        .iter()
        .map(|p| p.map(|c| c * MM_PER_CM))
        .collect())
}

/// Differences `[modes * kept * 3]` of morph targets to the neutral mesh, computed on the
/// machine's cores (parsing the OBJ text is most of a conversion's time).
fn deltas(
    sources: &Sources,
    files: &[String],
    neutral: &[[f64; 3]],
    total: usize,
    kept: usize,
) -> Result<Vec<f64>> {
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(files.len().max(1));
    let per_worker = files.len().div_ceil(workers);
    let parts: Vec<Result<Vec<f64>>> = std::thread::scope(|scope| {
        let handles: Vec<_> = files
            .chunks(per_worker.max(1))
            .map(|chunk| {
                scope.spawn(move || {
                    let mut out = Vec::with_capacity(chunk.len() * kept * 3);
                    for file in chunk {
                        let target = target_positions(sources, file, total)?;
                        for v in 0..kept {
                            out.extend((0..3).map(|k| target[v][k] - neutral[v][k]));
                        }
                    }
                    Ok(out)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(Error::Invalid("an OBJ parsing thread panicked".into()))
                })
            })
            .collect()
    });
    let mut out = Vec::with_capacity(files.len() * kept * 3);
    for part in parts {
        out.extend(part?);
    }
    Ok(out)
}

/// Builds the model contents from verified sources.
fn build(sources: &Sources) -> Result<(ModelContents, bool)> {
    let config: serde_json::Value = serde_json::from_slice(sources.bytes(CONFIG))
        .map_err(|e| Error::model(sources.label_of(CONFIG), format!("not valid JSON: {e}")))?;
    let expression_names: Vec<String> = config
        .get("expressions")
        .and_then(|v| v.as_array())
        .and_then(|a| a.iter().map(|x| x.as_str().map(str::to_string)).collect())
        .ok_or_else(|| {
            Error::model(sources.label_of(CONFIG), "no \"expressions\" list of names")
        })?;
    let facts = readme_facts(sources.text(README)?, &config, &sources.label_of(README))?;
    let copyright = copyright_line(sources.text(LICENSE)?)
        .ok_or_else(|| Error::model(sources.label_of(LICENSE), "no copyright line"))?;

    let neutral_label = sources.label_of(NEUTRAL);
    let neutral: ObjMesh = obj::parse(
        sources.bytes(NEUTRAL),
        &neutral_label,
        obj::Read::Everything,
    )?;
    let total = neutral.positions.len();
    let (last_region, last_vertices, last_polygons) = facts.regions.last().expect("nine regions");
    let (kept, kept_polygons) = (last_vertices.end as usize, last_polygons.end as usize);
    if total < kept || neutral.polygons.len() < kept_polygons {
        return Err(Error::model(
            &neutral_label,
            format!(
                "{total} vertices and {} polygons, but the README's {last_region:?} region ends at vertex {kept} and polygon {kept_polygons}",
                neutral.polygons.len()
            ),
        ));
    }
    let mean: Vec<[f64; 3]> = neutral
        .positions
        .iter()
        .map(|p| p.map(|c| c * MM_PER_CM))
        .collect();

    // Triangles in polygon order, so each region's triangles stay contiguous.
    let mut triangles: Vec<[u32; 3]> = Vec::new();
    let mut triangle_uvs: Vec<[u32; 3]> = Vec::new();
    let mut triangle_materials = Vec::new();
    let mut region_spans = Vec::new();
    let mut material_tiles: Vec<Option<(f64, f64)>> = vec![None; neutral.materials.len()];
    for (region, vertices, polygons) in &facts.regions {
        let first = triangles.len() as u32;
        for p in polygons.start as usize..polygons.end as usize {
            let polygon = &neutral.polygons[p];
            let at = |reason: String| {
                Error::model(
                    &neutral_label,
                    format!("polygon {p} ({region:?}): {reason}"),
                )
            };
            let material = polygon.material.ok_or_else(|| at("no material".into()))?;
            let mut positions = Vec::new();
            let mut uvs = Vec::new();
            for c in &polygon.corners {
                let uv =
                    c.uv.ok_or_else(|| at("a corner without texture coordinates".into()))?;
                if c.position as usize >= kept
                    || !(vertices.contains(&c.position) || facts.regions[0].1.contains(&c.position))
                {
                    return Err(at(format!(
                        "uses vertex {}, outside its region and the Face region",
                        c.position
                    )));
                }
                positions.push(c.position as usize);
                uvs.push(uv);
                let u = neutral.uvs[uv as usize][0];
                let range = material_tiles[material as usize].get_or_insert((u, u));
                *range = (range.0.min(u), range.1.max(u));
            }
            for [a, b, c] in triangulate(&positions, &mean) {
                triangles.push([a, b, c].map(|i| positions[i] as u32));
                triangle_uvs.push([a, b, c].map(|i| uvs[i]));
                triangle_materials.push(material as u8);
            }
        }
        region_spans.push(RegionSpan {
            region: *region,
            vertices: vertices.clone(),
            triangles: first..triangles.len() as u32,
        });
    }
    let materials = neutral
        .materials
        .iter()
        .zip(&material_tiles)
        .map(|(name, range)| {
            let (lo, hi) = range.unwrap_or((0.0, 0.0));
            let tile = lo.floor().max(0.0);
            if hi > tile + 1.0 {
                return Err(Error::model(
                    &neutral_label,
                    format!("material {name} spans u {lo}..{hi}, more than one uv tile"),
                ));
            }
            Ok(MaterialInfo {
                name: name.clone(),
                uv_tile: tile as u32,
            })
        })
        .collect::<Result<Vec<_>>>()?;

    // Outwards is where the face looks (+z): if ICT's polygons turned the other way, reverse.
    let narrow = &facts
        .areas
        .iter()
        .find(|(a, _)| *a == FaceArea::Narrow)
        .expect("listed")
        .1;
    let facing: f64 = triangles
        .iter()
        .filter(|t| t.iter().all(|v| narrow.contains(v)))
        .map(|t| {
            let [a, b, c] = t.map(|i| mean[i as usize]);
            (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])
        })
        .sum();
    let flipped = facing < 0.0;
    if flipped {
        triangles.iter_mut().for_each(|t| t.swap(1, 2));
        triangle_uvs.iter_mut().for_each(|t| t.swap(1, 2));
    }

    let mut landmark_data = facts.landmarks.clone();
    let face_range = &facts.regions[0].1;
    let face_triangles: Vec<[u32; 3]> = triangles
        [region_spans[0].triangles.start as usize..region_spans[0].triangles.end as usize]
        .iter()
        .filter(|t| t.iter().all(|v| face_range.contains(v)))
        .copied()
        .collect();
    // The contour lines start on ICT's frontal outline, not at the surface jaw.
    let mut outline_data = landmark_data.clone();
    outline_data.multipie68[..landmarks::JAW].copy_from_slice(&facts.outline_jaw);
    landmark_data.contour = landmarks::build_contour(&mean[..kept], &face_triangles, &outline_data)
        .map_err(|r| Error::model(&neutral_label, format!("jaw contour: {r}")))?;

    let identity_files: Vec<String> = (0..NUM_IDENTITY)
        .map(|k| format!("FaceXModel/identity{k:03}.obj"))
        .collect();
    let expression_files: Vec<String> = expression_names
        .iter()
        .map(|n| format!("FaceXModel/{n}.obj"))
        .collect();
    let identity = deltas(sources, &identity_files, &mean, total, kept)?;
    let expression = deltas(sources, &expression_files, &mean, total, kept)?;

    let mut files: Vec<(String, String)> = sources
        .files
        .iter()
        .map(|(k, f)| (k.clone(), f.sha256.clone()))
        .collect();
    files.sort();
    let header = Header {
        unit: "mm".into(),
        source: SourceInfo {
            name: "ICT-FaceKit Face Model Light".into(),
            repository: UPSTREAM_REPOSITORY.into(),
            commit: UPSTREAM_COMMIT.into(),
            license: "MIT".into(),
            copyright,
            archive_sha256: sources.archive_sha256.clone(),
            files,
        },
        converter: converter_id(),
        num_vertices: kept as u32,
        num_uvs: neutral.uvs.len() as u32,
        num_triangles: triangles.len() as u32,
        regions: region_spans,
        face_areas: facts
            .areas
            .iter()
            .map(|(area, v)| FaceAreaSpan {
                area: *area,
                vertices: v.clone(),
            })
            .collect(),
        materials,
        identity_names: identity_files
            .iter()
            .map(|f| {
                f.trim_start_matches("FaceXModel/")
                    .trim_end_matches(".obj")
                    .to_string()
            })
            .collect(),
        expression_names,
        landmarks: landmark_data,
        storage: StorageInfo {
            bases: Precision::F32,
            max_error: StorageError::default(),
        },
        arrays: vec![],
    };
    let contents = ModelContents {
        header,
        mean: mean[..kept].as_flattened().to_vec(),
        identity,
        expression,
        uvs: neutral
            .uvs
            .iter()
            .flat_map(|uv| uv.map(|x| x as f32))
            .collect(),
        triangles: triangles.as_flattened().to_vec(),
        triangle_uvs: triangle_uvs.as_flattened().to_vec(),
        triangle_materials,
    };
    Ok((contents, flipped))
}

/// Where the converter reads ICT-FaceKit from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IctSource {
    /// A `.tar.xz` of ICT-FaceKit's files.
    Archive(PathBuf),
    /// A clone of the upstream repository at [`UPSTREAM_COMMIT`].
    Checkout(PathBuf),
}

impl IctSource {
    /// A directory is a checkout, anything else an archive.
    pub fn from_path(path: impl Into<PathBuf>) -> Self {
        let path = path.into();
        if path.is_dir() {
            IctSource::Checkout(path)
        } else {
            IctSource::Archive(path)
        }
    }
}

/// Reads and verifies the sources and builds the model contents (full precision).
pub fn read(source: &IctSource) -> Result<(ModelContents, bool)> {
    let wanted = manifest();
    let sources = match source {
        IctSource::Archive(path) => read_archive(path, &wanted)?,
        IctSource::Checkout(path) => read_directory(path, &wanted)?,
    };
    build(&sources)
}

/// Converts ICT-FaceKit into model file bytes.
pub fn convert(source: &IctSource, precision: Precision) -> Result<(Vec<u8>, Report)> {
    let start = Instant::now();
    let (contents, flipped_winding) = read(source)?;
    let read_seconds = start.elapsed().as_secs_f64();
    let bytes = format::encode(&contents, precision)?;
    let storage = format::ModelFile::parse(&bytes, "converted model")?
        .header
        .storage;
    let len = bytes.len();
    Ok((
        bytes,
        Report {
            seconds: start.elapsed().as_secs_f64(),
            read_seconds,
            storage,
            bytes: len,
            flipped_winding,
        },
    ))
}

/// Converts and writes the model file (through a temporary file, so that an interrupted
/// conversion never leaves a half-written model behind).
pub fn convert_to_file(source: &IctSource, out: &Path, precision: Precision) -> Result<Report> {
    let (bytes, report) = convert(source, precision)?;
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    let partial = out.with_extension("gfm.partial");
    std::fs::write(&partial, &bytes).map_err(|e| Error::io(&partial, e))?;
    std::fs::rename(&partial, out).map_err(|e| Error::io(out, e))?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    const README_SAMPLE: &str = "\
| #0 | Face | [0:9] | [0:4] | 10 | 5 |
| #1 | Head and Neck | [10:14] | [5:6] | 5 | 2 |
| #0 | Narrow face area | [0:5] | [0:2] | 6 | 3 |

Multi-PIE 68 point facial landmarks indices:

    1, 2, 3

Right jawline (substitutes 0-7 in Multi PIE):

    4, 5
";

    #[test]
    fn readme_tables_and_lists_parse() {
        let rows = readme_geometry_rows(README_SAMPLE);
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[1], ("Head and Neck".to_string(), 10..15, 5..7));
        assert_eq!(
            readme_list(README_SAMPLE, "Multi-PIE 68 point facial landmarks"),
            Some(vec![1, 2, 3])
        );
        assert_eq!(
            readme_list(README_SAMPLE, "Right jawline"),
            Some(vec![4, 5])
        );
        assert_eq!(readme_list(README_SAMPLE, "Left jawline"), None);
        // A row whose counts disagree with its ranges is not trusted.
        assert!(readme_geometry_rows("| #0 | Face | [0:9] | [0:4] | 11 | 5 |").is_empty());
    }

    #[test]
    fn archive_entries_map_to_manifest_paths() {
        let wanted = manifest();
        assert_eq!(wanted.len(), 157);
        assert_eq!(
            manifest_key(Path::new("./FaceXModel/identity007.obj"), &wanted),
            Some("FaceXModel/identity007.obj")
        );
        assert_eq!(
            manifest_key(Path::new("ICT-FaceKit-da5f95a/README.md"), &wanted),
            Some("README.md")
        );
        assert_eq!(
            manifest_key(Path::new("FaceXModel/cheekRaiser_L.obj"), &wanted),
            None
        );
    }

    #[test]
    fn quads_split_along_the_shorter_diagonal() {
        let p = [
            [0.0, 0.0, 0.0],
            [2.0, 0.0, 0.0],
            [2.1, 1.0, 0.0],
            [0.0, 1.0, 0.0],
        ];
        // 0–2 is longer than 1–3 here.
        assert_eq!(triangulate(&[0, 1, 2, 3], &p), vec![[0, 1, 3], [1, 2, 3]]);
        assert_eq!(triangulate(&[0, 1, 2], &p), vec![[0, 1, 2]]);
    }

    #[test]
    fn wrong_sources_name_the_file() {
        let dir = std::env::temp_dir().join(format!("ganfit-ict-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let garbage = dir.join("garbage.tar.xz");
        std::fs::write(&garbage, b"this is not an archive").unwrap();
        let err = read(&IctSource::Archive(garbage.clone()))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("garbage.tar.xz") && err.contains("cannot decompress"),
            "{err}"
        );
        let empty_checkout = dir.join("checkout");
        std::fs::create_dir_all(&empty_checkout).unwrap();
        let err = read(&IctSource::from_path(&empty_checkout))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("FaceXModel/") && err.contains("missing") && err.contains("156 more"),
            "{err}"
        );
        std::fs::write(empty_checkout.join("README.md"), "not ICT's readme").unwrap();
        let err = read(&IctSource::from_path(&empty_checkout))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("README.md") && err.contains("SHA-256"),
            "{err}"
        );
        let err = read(&IctSource::Archive(dir.join("absent.tar.xz")))
            .unwrap_err()
            .to_string();
        assert!(err.contains("absent.tar.xz"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
