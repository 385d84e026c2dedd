//! The face model file (`.gfm`): one versioned binary file, parsed from bytes so that the same
//! code reads it from disk natively and from a `fetch` in the browser.
//!
//! Layout (little-endian throughout):
//!
//! | bytes | content |
//! |---|---|
//! | 8 | magic `GANFITFM` |
//! | 4 | format version (u32), [`VERSION`] |
//! | 4 | header length H (u32) |
//! | H | header: UTF-8 JSON, [`Header`] (counts, regions, landmarks, provenance, array table) |
//! | pad | zeros up to a multiple of 16 |
//! | … | arrays, each at a 16-aligned offset (relative to here) given in the array table |
//! | 32 | SHA-256 of every byte before it |
//!
//! Arrays: `mean` f32 `[V, 3]`; `identity` f16|f32 `[100, V, 3]`; `expression` f16|f32
//! `[53, V, 3]`; `uvs` f32 `[U, 2]`; `triangles` u32 `[T, 3]` (vertex indices),
//! `triangle_uvs` u32 `[T, 3]` (uv indices of the same corners), `triangle_materials` u8 `[T]`.
//! Positions and bases are in millimetres; uvs are ICT's own (OBJ convention: v up, each
//! material in its own unit tile along u).

use std::ops::Range;

use half::f16;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::landmarks::LandmarkData;
use super::regions::{FaceArea, FaceAreaSpan, Region, RegionSpan};
use crate::error::{Error, Result};

pub const MAGIC: [u8; 8] = *b"GANFITFM";
/// Bumped whenever the layout or the meaning of a field changes; readers accept only theirs.
pub const VERSION: u32 = 1;
const PREFIX: usize = 16;
const ALIGN: usize = 16;
const CHECKSUM: usize = 32;

/// The element type of a stored array.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DType {
    F32,
    F16,
    U32,
    U8,
}

impl DType {
    pub fn size(self) -> usize {
        match self {
            DType::F32 | DType::U32 => 4,
            DType::F16 => 2,
            DType::U8 => 1,
        }
    }
}

/// How the shape bases are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// Half floats: half the size, with the error recorded in [`StorageInfo`].
    #[default]
    F16,
    F32,
}

impl std::fmt::Display for Precision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Precision::F16 => "f16",
            Precision::F32 => "f32",
        })
    }
}

/// Largest vertex displacement (Euclidean, mm) that storage rounding introduces, per array:
/// for a basis, at weight 1 of any one mode.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct StorageError {
    pub mean_mm: f64,
    pub identity_mm: f64,
    pub expression_mm: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StorageInfo {
    pub bases: Precision,
    pub max_error: StorageError,
}

/// Where the model came from, with the SHA-256 of every source file it was built from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceInfo {
    pub name: String,
    pub repository: String,
    pub commit: String,
    pub license: String,
    pub copyright: String,
    /// SHA-256 of the archive, when converted from one.
    pub archive_sha256: Option<String>,
    /// Path inside the source → SHA-256 (hex), sorted by path.
    pub files: Vec<(String, String)>,
}

/// A material of the source mesh and the unit tile along u its uvs occupy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaterialInfo {
    pub name: String,
    pub uv_tile: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArrayInfo {
    pub name: String,
    pub dtype: DType,
    pub shape: Vec<u64>,
    /// Byte offset from the start of the array section.
    pub offset: u64,
}

impl ArrayInfo {
    fn elements(&self) -> Option<usize> {
        self.shape
            .iter()
            .try_fold(1usize, |n, &d| n.checked_mul(usize::try_from(d).ok()?))
    }
}

/// The JSON header.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Header {
    /// Always "mm".
    pub unit: String,
    pub source: SourceInfo,
    /// The converter that wrote the file (crate version and converter revision).
    pub converter: String,
    pub num_vertices: u32,
    pub num_uvs: u32,
    pub num_triangles: u32,
    pub regions: Vec<RegionSpan>,
    pub face_areas: Vec<FaceAreaSpan>,
    pub materials: Vec<MaterialInfo>,
    pub identity_names: Vec<String>,
    pub expression_names: Vec<String>,
    pub landmarks: LandmarkData,
    pub storage: StorageInfo,
    pub arrays: Vec<ArrayInfo>,
}

/// Everything a model file holds, owned, at full precision: what the converter produces and
/// [`encode`] writes. `storage` and `arrays` of the header are filled in by [`encode`].
#[derive(Debug, Clone)]
pub struct ModelContents {
    pub header: Header,
    /// `[V * 3]`, mm.
    pub mean: Vec<f64>,
    /// `[modes * V * 3]`, mm per unit weight.
    pub identity: Vec<f64>,
    pub expression: Vec<f64>,
    /// `[U * 2]`, OBJ convention.
    pub uvs: Vec<f32>,
    pub triangles: Vec<u32>,
    pub triangle_uvs: Vec<u32>,
    pub triangle_materials: Vec<u8>,
}

impl ModelContents {
    /// A valid two-triangle model (4 vertices, 1 identity and 2 expression modes, two regions):
    /// what the format tests and the fuzzers' seed corpus start from.
    pub fn tiny() -> ModelContents {
        let landmarks = LandmarkData {
            multipie68: (0..68).map(|i| i % 4).collect(),
            jawline_right: vec![0; 8],
            jawline_left: vec![1; 8],
            jawline_right_extended: vec![0; 17],
            jawline_left_extended: vec![1; 17],
            contour: (0..17).map(|i| vec![i % 4, 3]).collect(),
        };
        ModelContents {
            header: Header {
                unit: "mm".into(),
                source: SourceInfo {
                    name: "test".into(),
                    repository: "none".into(),
                    commit: "0".into(),
                    license: "MIT".into(),
                    copyright: "nobody".into(),
                    archive_sha256: None,
                    files: vec![("a.obj".into(), "00".into())],
                },
                converter: "test".into(),
                num_vertices: 4,
                num_uvs: 6,
                num_triangles: 2,
                regions: vec![
                    RegionSpan {
                        region: Region::Face,
                        vertices: 0..3,
                        triangles: 0..1,
                    },
                    RegionSpan {
                        region: Region::HeadAndNeck,
                        vertices: 3..4,
                        triangles: 1..2,
                    },
                ],
                face_areas: vec![
                    FaceAreaSpan {
                        area: FaceArea::Narrow,
                        vertices: 0..2,
                    },
                    FaceAreaSpan {
                        area: FaceArea::Full,
                        vertices: 0..3,
                    },
                ],
                materials: vec![
                    MaterialInfo {
                        name: "M_Face".into(),
                        uv_tile: 0,
                    },
                    MaterialInfo {
                        name: "M_BackHead".into(),
                        uv_tile: 1,
                    },
                ],
                identity_names: vec!["identity000".into()],
                expression_names: vec!["a".into(), "b".into()],
                landmarks,
                storage: StorageInfo {
                    bases: Precision::F32,
                    max_error: StorageError::default(),
                },
                arrays: vec![],
            },
            mean: vec![
                0.0, 0.0, 0.0, 10.0, 0.0, 0.0, 0.0, 10.0, 0.0, 10.0, 10.0, 0.0,
            ],
            identity: (0..12).map(|i| 0.1 * i as f64 + 1.0 / 3.0).collect(),
            expression: (0..24).map(|i| -0.05 * i as f64).collect(),
            uvs: vec![0.0, 0.0, 1.0, 0.0, 0.0, 1.0, 1.5, 0.5, 1.2, 0.9, 1.1, 0.2],
            triangles: vec![0, 1, 2, 1, 3, 2],
            triangle_uvs: vec![0, 1, 2, 3, 4, 5],
            triangle_materials: vec![0, 1],
        }
    }
}

enum Payload<'a> {
    F32(Vec<f32>),
    F16(Vec<f16>),
    U32(&'a [u32]),
    U8(&'a [u8]),
}

impl Payload<'_> {
    fn dtype(&self) -> DType {
        match self {
            Payload::F32(_) => DType::F32,
            Payload::F16(_) => DType::F16,
            Payload::U32(_) => DType::U32,
            Payload::U8(_) => DType::U8,
        }
    }

    fn write(&self, out: &mut Vec<u8>) {
        match self {
            Payload::F32(v) => v
                .iter()
                .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
            Payload::F16(v) => v
                .iter()
                .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
            Payload::U32(v) => v
                .iter()
                .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
            Payload::U8(v) => out.extend_from_slice(v),
        }
    }
}

/// Largest Euclidean error of any xyz triple between `values` and their stored form.
fn max_vertex_error(values: &[f64], stored: impl Fn(usize) -> f64) -> f64 {
    values
        .chunks(3)
        .enumerate()
        .map(|(v, xyz)| {
            xyz.iter()
                .enumerate()
                .map(|(c, &x)| (stored(3 * v + c) - x).powi(2))
                .sum::<f64>()
                .sqrt()
        })
        .fold(0.0, f64::max)
}

fn store_float(values: &[f64], precision: Precision) -> (Payload<'static>, f64) {
    match precision {
        Precision::F32 => {
            let v: Vec<f32> = values.iter().map(|&x| x as f32).collect();
            let err = max_vertex_error(values, |i| v[i] as f64);
            (Payload::F32(v), err)
        }
        Precision::F16 => {
            let v: Vec<f16> = values.iter().map(|&x| f16::from_f64(x)).collect();
            let err = max_vertex_error(values, |i| v[i].to_f64());
            (Payload::F16(v), err)
        }
    }
}

/// Writes a model file. The mean is always f32 (its f16 rounding would reach 0.06 mm at the
/// back of the head); the bases use `precision`.
pub fn encode(contents: &ModelContents, precision: Precision) -> Result<Vec<u8>> {
    let h = &contents.header;
    let (v, u, t) = (
        h.num_vertices as u64,
        h.num_uvs as u64,
        h.num_triangles as u64,
    );
    let (ni, ne) = (
        h.identity_names.len() as u64,
        h.expression_names.len() as u64,
    );
    let (mean, mean_err) = store_float(&contents.mean, Precision::F32);
    let (identity, identity_err) = store_float(&contents.identity, precision);
    let (expression, expression_err) = store_float(&contents.expression, precision);
    let arrays: Vec<(&str, Vec<u64>, Payload)> = vec![
        ("mean", vec![v, 3], mean),
        ("identity", vec![ni, v, 3], identity),
        ("expression", vec![ne, v, 3], expression),
        ("uvs", vec![u, 2], Payload::F32(contents.uvs.clone())),
        ("triangles", vec![t, 3], Payload::U32(&contents.triangles)),
        (
            "triangle_uvs",
            vec![t, 3],
            Payload::U32(&contents.triangle_uvs),
        ),
        (
            "triangle_materials",
            vec![t],
            Payload::U8(&contents.triangle_materials),
        ),
    ];
    let mut header = h.clone();
    header.storage = StorageInfo {
        bases: precision,
        max_error: StorageError {
            mean_mm: mean_err,
            identity_mm: identity_err,
            expression_mm: expression_err,
        },
    };
    header.arrays.clear();
    let mut data = Vec::new();
    for (name, shape, payload) in &arrays {
        let expected: u64 = shape.iter().product();
        let len = match payload {
            Payload::F32(x) => x.len(),
            Payload::F16(x) => x.len(),
            Payload::U32(x) => x.len(),
            Payload::U8(x) => x.len(),
        };
        if len as u64 != expected {
            return Err(Error::Invalid(format!(
                "array {name}: {len} values for shape {shape:?}"
            )));
        }
        header.arrays.push(ArrayInfo {
            name: name.to_string(),
            dtype: payload.dtype(),
            shape: shape.clone(),
            offset: data.len() as u64,
        });
        payload.write(&mut data);
        data.resize(data.len().next_multiple_of(ALIGN), 0);
    }
    let json =
        serde_json::to_vec(&header).map_err(|e| Error::Invalid(format!("model header: {e}")))?;
    let mut out = Vec::with_capacity(PREFIX + json.len() + ALIGN + data.len() + CHECKSUM);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&(json.len() as u32).to_le_bytes());
    out.extend_from_slice(&json);
    out.resize(out.len().next_multiple_of(ALIGN), 0);
    out.extend_from_slice(&data);
    let digest = Sha256::digest(&out);
    out.extend_from_slice(&digest);
    Ok(out)
}

/// A parsed model file: the header, and the arrays still as bytes (decoded on request, so a
/// reader converts only the vertices it selects).
#[derive(Debug, Clone)]
pub struct ModelFile<'a> {
    pub header: Header,
    path: String,
    data: &'a [u8],
}

fn read_u32(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"))
}

impl<'a> ModelFile<'a> {
    /// Parses and checks a model file; `path` names it in errors (a file path or a URL).
    pub fn parse(bytes: &'a [u8], path: &str) -> Result<Self> {
        let bad = |reason: String| Error::model(path, reason);
        if bytes.len() < PREFIX || bytes[..8] != MAGIC {
            let what = if bytes.len() < 8 {
                format!("only {} bytes", bytes.len())
            } else {
                format!("starts with {:?}", String::from_utf8_lossy(&bytes[..8]))
            };
            return Err(bad(format!(
                "not a ganfit face model file ({what}; expected the magic \"GANFITFM\")"
            )));
        }
        let version = read_u32(bytes, 8);
        if version != VERSION {
            return Err(bad(format!(
                "format version {version}, but this build of ganfit reads version {VERSION}: convert the model again with `ganfit model convert`"
            )));
        }
        if bytes.len() < PREFIX + CHECKSUM {
            return Err(bad(format!("truncated: {} bytes", bytes.len())));
        }
        let (body, checksum) = bytes.split_at(bytes.len() - CHECKSUM);
        if Sha256::digest(body).as_slice() != checksum {
            return Err(bad(format!(
                "checksum mismatch over {} bytes: the file is truncated or corrupt",
                bytes.len()
            )));
        }
        let header_len = read_u32(bytes, 12) as usize;
        // Checked: on wasm32 a u32 length plus the prefix can overflow `usize`.
        let data_start = PREFIX
            .checked_add(header_len)
            .and_then(|end| end.checked_next_multiple_of(ALIGN))
            .unwrap_or(usize::MAX);
        if data_start > body.len() {
            return Err(bad(format!(
                "header of {header_len} bytes runs past the end of the file"
            )));
        }
        let header: Header = serde_json::from_slice(&bytes[PREFIX..PREFIX + header_len])
            .map_err(|e| bad(format!("header: {e}")))?;
        let file = ModelFile {
            header,
            path: path.to_string(),
            data: &body[data_start..],
        };
        file.check()?;
        Ok(file)
    }

    fn error(&self, reason: impl Into<String>) -> Error {
        Error::model(&self.path, reason)
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    /// Structural checks: units, arrays against counts, index ranges.
    fn check(&self) -> Result<()> {
        let h = &self.header;
        if h.unit != "mm" {
            return Err(self.error(format!("unit {:?}, expected \"mm\"", h.unit)));
        }
        let (v, u, t) = (
            h.num_vertices as u64,
            h.num_uvs as u64,
            h.num_triangles as u64,
        );
        let (ni, ne) = (
            h.identity_names.len() as u64,
            h.expression_names.len() as u64,
        );
        let basis_types: &[DType] = &[DType::F16, DType::F32];
        let expected: [(&str, &[DType], Vec<u64>); 7] = [
            ("mean", &[DType::F32], vec![v, 3]),
            ("identity", basis_types, vec![ni, v, 3]),
            ("expression", basis_types, vec![ne, v, 3]),
            ("uvs", &[DType::F32], vec![u, 2]),
            ("triangles", &[DType::U32], vec![t, 3]),
            ("triangle_uvs", &[DType::U32], vec![t, 3]),
            ("triangle_materials", &[DType::U8], vec![t]),
        ];
        for (name, dtypes, shape) in expected {
            let a = self.array(name)?;
            if !dtypes.contains(&a.dtype) || a.shape != shape {
                return Err(self.error(format!(
                    "array {name} is {:?} {:?}, expected {dtypes:?} {shape:?}",
                    a.dtype, a.shape
                )));
            }
        }
        for a in &h.arrays {
            let end = a
                .elements()
                .and_then(|n| n.checked_mul(a.dtype.size()))
                .and_then(|n| n.checked_add(a.offset as usize));
            if end.is_none_or(|end| end > self.data.len()) {
                return Err(self.error(format!(
                    "array {} ({:?} {:?} at {}) runs past the end of the file",
                    a.name, a.dtype, a.shape, a.offset
                )));
            }
        }
        let out_of = |what: &str, index: u32, limit: u64| {
            self.error(format!("{what} index {index} out of range (count {limit})"))
        };
        if let Some(&i) = self.u32s("triangles")?.iter().find(|&&i| i as u64 >= v) {
            return Err(out_of("triangle vertex", i, v));
        }
        if let Some(&i) = self.u32s("triangle_uvs")?.iter().find(|&&i| i as u64 >= u) {
            return Err(out_of("triangle uv", i, u));
        }
        if let Some(&m) = self
            .u8s("triangle_materials")?
            .iter()
            .find(|&&m| m as usize >= h.materials.len())
        {
            return Err(out_of(
                "triangle material",
                m as u32,
                h.materials.len() as u64,
            ));
        }
        for r in &h.regions {
            if r.vertices.is_empty()
                || r.vertices.end as u64 > v
                || r.triangles.start > r.triangles.end
                || r.triangles.end as u64 > t
            {
                return Err(self.error(format!(
                    "region {:?} spans vertices {:?} and triangles {:?}, empty or beyond the mesh",
                    r.region, r.vertices, r.triangles
                )));
            }
        }
        // Regions partition the mesh: an overlap would select a vertex or triangle twice.
        type Span = fn(&RegionSpan) -> &Range<u32>;
        let kinds: [(&str, Span); 2] = [
            ("vertices", |r| &r.vertices),
            ("triangles", |r| &r.triangles),
        ];
        for (what, range) in kinds {
            let mut spans: Vec<_> = h.regions.iter().collect();
            spans.sort_by_key(|r| range(r).start);
            if let Some(pair) = spans
                .windows(2)
                .find(|p| range(p[1]).start < range(p[0]).end)
            {
                return Err(self.error(format!(
                    "regions {:?} and {:?} share {what}",
                    pair[0].region, pair[1].region
                )));
            }
        }
        for a in &h.face_areas {
            if a.vertices.is_empty() || a.vertices.end as u64 > v {
                return Err(self.error(format!(
                    "face area {:?} spans vertices {:?}, beyond the mesh",
                    a.area, a.vertices
                )));
            }
        }
        h.landmarks
            .check(h.num_vertices)
            .map_err(|reason| self.error(reason))
    }

    fn array(&self, name: &str) -> Result<&ArrayInfo> {
        self.header
            .arrays
            .iter()
            .find(|a| a.name == name)
            .ok_or_else(|| self.error(format!("no array named {name:?}")))
    }

    fn bytes_of(&self, a: &ArrayInfo) -> &'a [u8] {
        let start = a.offset as usize;
        // check() has bounded every array.
        &self.data[start..start + a.elements().unwrap_or(0) * a.dtype.size()]
    }

    fn u32s(&self, name: &str) -> Result<Vec<u32>> {
        let a = self.array(name)?;
        Ok(self
            .bytes_of(a)
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes(c.try_into().expect("4 bytes")))
            .collect())
    }

    fn u8s(&self, name: &str) -> Result<&'a [u8]> {
        Ok(self.bytes_of(self.array(name)?))
    }

    fn decode_floats(dtype: DType, bytes: &[u8], out: &mut Vec<f32>) {
        match dtype {
            DType::F16 => out.extend(
                bytes
                    .chunks_exact(2)
                    .map(|c| f16::from_le_bytes([c[0], c[1]]).to_f32()),
            ),
            _ => out.extend(
                bytes
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes"))),
            ),
        }
    }

    /// Mean positions `[V * 3]`, mm.
    pub fn mean(&self) -> Result<Vec<f32>> {
        let a = self.array("mean")?;
        let mut out = Vec::new();
        Self::decode_floats(a.dtype, self.bytes_of(a), &mut out);
        Ok(out)
    }

    /// Rows of a basis (`"identity"` or `"expression"`) restricted to the vertices in
    /// `ranges`: `[modes, Vs * 3]` flattened, mm per unit weight.
    pub fn basis_rows(&self, name: &str, ranges: &[Range<u32>]) -> Result<Vec<f32>> {
        let a = self.array(name)?;
        let size = a.dtype.size();
        let per_mode = self.header.num_vertices as usize * 3 * size;
        let bytes = self.bytes_of(a);
        let mut out = Vec::new();
        for mode in bytes.chunks_exact(per_mode) {
            for r in ranges {
                Self::decode_floats(
                    a.dtype,
                    &mode[r.start as usize * 3 * size..r.end as usize * 3 * size],
                    &mut out,
                );
            }
        }
        Ok(out)
    }

    /// ICT uvs `[U * 2]` (OBJ convention).
    pub fn uvs(&self) -> Result<Vec<f32>> {
        let a = self.array("uvs")?;
        let mut out = Vec::new();
        Self::decode_floats(a.dtype, self.bytes_of(a), &mut out);
        Ok(out)
    }

    pub fn triangles(&self) -> Result<Vec<u32>> {
        self.u32s("triangles")
    }

    pub fn triangle_uvs(&self) -> Result<Vec<u32>> {
        self.u32s("triangle_uvs")
    }

    pub fn triangle_materials(&self) -> Result<&'a [u8]> {
        self.u8s("triangle_materials")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_f32_and_f16() {
        let c = ModelContents::tiny();
        for precision in [Precision::F32, Precision::F16] {
            let bytes = encode(&c, precision).unwrap();
            let f = ModelFile::parse(&bytes, "tiny.gfm").unwrap();
            assert_eq!(f.header.storage.bases, precision);
            assert_eq!(f.triangles().unwrap(), c.triangles);
            assert_eq!(f.triangle_uvs().unwrap(), c.triangle_uvs);
            assert_eq!(f.triangle_materials().unwrap(), &c.triangle_materials[..]);
            assert_eq!(f.uvs().unwrap(), c.uvs);
            let mean = f.mean().unwrap();
            assert!(
                mean.iter()
                    .zip(&c.mean)
                    .all(|(a, b)| (*a as f64 - b).abs() < 1e-6)
            );
            let rows = f.basis_rows("expression", &[0..4]).unwrap();
            let tol = if precision == Precision::F16 {
                2e-3
            } else {
                1e-6
            };
            assert!(
                rows.iter()
                    .zip(&c.expression)
                    .all(|(a, b)| (*a as f64 - b).abs() < tol)
            );
            let err = f.header.storage.max_error.identity_mm;
            assert!(
                err < if precision == Precision::F16 {
                    3e-3
                } else {
                    1e-6
                } && err > 0.0,
                "recorded error {err}"
            );
        }
    }

    // Any geometry the converter could write comes back: the mean to f32 rounding, the bases
    // within the error the header records for them, the integer arrays exactly.
    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        #[test]
        fn any_geometry_round_trips_within_the_recorded_error(
            mean in proptest::collection::vec(-500.0f64..500.0, 12),
            identity in proptest::collection::vec(-50.0f64..50.0, 12),
            expression in proptest::collection::vec(-50.0f64..50.0, 24),
            uvs in proptest::collection::vec(0.0f32..1.0, 12),
            half in proptest::bool::ANY,
        ) {
            let mut c = ModelContents::tiny();
            (c.mean, c.identity, c.expression, c.uvs) = (mean, identity, expression, uvs);
            let precision = if half { Precision::F16 } else { Precision::F32 };
            let bytes = encode(&c, precision).unwrap();
            let f = ModelFile::parse(&bytes, "any.gfm").unwrap();
            let close = |a: &[f32], b: &[f64], tol: f64| {
                a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (*x as f64 - y).abs() <= tol)
            };
            let mean_tol = 500.0 * f32::EPSILON as f64;
            proptest::prop_assert!(close(&f.mean().unwrap(), &c.mean, mean_tol));
            let error = &f.header.storage.max_error;
            let identity = f.basis_rows("identity", &[0..4]).unwrap();
            proptest::prop_assert!(close(&identity, &c.identity, error.identity_mm + 1e-9));
            let expression = f.basis_rows("expression", &[0..4]).unwrap();
            proptest::prop_assert!(close(&expression, &c.expression, error.expression_mm + 1e-9));
            proptest::prop_assert_eq!(f.uvs().unwrap(), c.uvs);
            proptest::prop_assert_eq!(f.triangles().unwrap(), c.triangles);
            proptest::prop_assert_eq!(f.triangle_uvs().unwrap(), c.triangle_uvs);
        }
    }

    #[test]
    fn basis_rows_select_vertex_ranges() {
        let c = ModelContents::tiny();
        let bytes = encode(&c, Precision::F32).unwrap();
        let f = ModelFile::parse(&bytes, "tiny.gfm").unwrap();
        let rows = f.basis_rows("expression", &[1..2, 3..4]).unwrap();
        // Two modes, two vertices each.
        let pick = |m: usize, v: usize| &c.expression[m * 12 + v * 3..m * 12 + v * 3 + 3];
        let expected: Vec<f32> = [pick(0, 1), pick(0, 3), pick(1, 1), pick(1, 3)]
            .concat()
            .iter()
            .map(|&x| x as f32)
            .collect();
        assert_eq!(rows, expected);
    }

    fn reason(bytes: &[u8]) -> String {
        match ModelFile::parse(bytes, "models/x.gfm") {
            Err(Error::ModelFile { path, reason }) => {
                assert_eq!(path, "models/x.gfm");
                reason
            }
            other => panic!("expected a model file error, got {other:?}"),
        }
    }

    #[test]
    fn corrupt_files_are_refused_with_a_reason() {
        let bytes = encode(&ModelContents::tiny(), Precision::F16).unwrap();
        assert!(reason(b"").contains("not a ganfit face model"));
        assert!(reason(b"PK\x03\x04 zip file, not ours").contains("not a ganfit face model"));
        for cut in [17, bytes.len() / 2, bytes.len() - 1] {
            let r = reason(&bytes[..cut]);
            assert!(
                r.contains("truncated") || r.contains("checksum"),
                "cut at {cut}: {r}"
            );
        }
        let mut flipped = bytes.clone();
        flipped[bytes.len() - 100] ^= 1;
        assert!(reason(&flipped).contains("checksum mismatch"));
        let mut other_version = bytes.clone();
        other_version[8..12].copy_from_slice(&7u32.to_le_bytes());
        let r = reason(&other_version);
        assert!(
            r.contains("version 7") && r.contains("ganfit model convert"),
            "{r}"
        );
    }

    /// Re-encodes after editing the header, with a valid checksum, to reach the deeper checks.
    fn with_header(edit: impl Fn(&mut Header)) -> Vec<u8> {
        let bytes = encode(&ModelContents::tiny(), Precision::F32).unwrap();
        let mut header = ModelFile::parse(&bytes, "x").unwrap().header;
        let len = read_u32(&bytes, 12) as usize;
        let data_start = (PREFIX + len).next_multiple_of(ALIGN);
        let data = &bytes[data_start..bytes.len() - CHECKSUM];
        edit(&mut header);
        let json = serde_json::to_vec(&header).unwrap();
        let mut out = bytes[..12].to_vec();
        out.extend_from_slice(&(json.len() as u32).to_le_bytes());
        out.extend_from_slice(&json);
        out.resize(out.len().next_multiple_of(ALIGN), 0);
        out.extend_from_slice(data);
        let digest = Sha256::digest(&out);
        out.extend_from_slice(&digest);
        out
    }

    #[test]
    fn inconsistent_headers_are_refused() {
        assert!(ModelFile::parse(&with_header(|_| {}), "x").is_ok());
        assert!(reason(&with_header(|h| h.unit = "cm".into())).contains("unit"));
        assert!(reason(&with_header(|h| h.num_vertices = 5)).contains("array mean"));
        assert!(
            reason(&with_header(|h| h.arrays.retain(|a| a.name != "uvs")))
                .contains("no array named \"uvs\"")
        );
        assert!(reason(&with_header(|h| h.arrays[6].offset = 1 << 20)).contains("past the end"));
        assert!(reason(&with_header(|h| h.regions[1].vertices = 3..9)).contains("beyond the mesh"));
        assert!(reason(&with_header(|h| h.regions[1].vertices = 2..4)).contains("share vertices"));
        assert!(
            reason(&with_header(|h| h.regions[1].triangles = 0..2)).contains("share triangles")
        );
        assert!(reason(&with_header(|h| h.regions[1].vertices = 3..3)).contains("beyond the mesh"));
        assert!(reason(&with_header(|h| h.landmarks.multipie68[5] = 40)).contains("landmark"));
        assert!(reason(&with_header(|h| h.num_uvs = 4)).contains("uvs"));
    }
}
