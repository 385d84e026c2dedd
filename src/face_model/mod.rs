//! The morphable face model: ICT-FaceKit's head (MIT, USC Institute for Creative
//! Technologies) with 100 identity modes and 53 expression blendshapes, in burn ops.
//!
//! Shape = mean + Σ identity_k · I_k + Σ expression_j · E_j, where I_k = identityNNN.obj − the
//! generic neutral mesh and E_j = expression OBJ − neutral: weight 1 reproduces that OBJ.
//! ICT's identity modes are principal components scaled to unit variance (its
//! `randomize_identity` draws the weights from N(0, 1)), so a zero-mean unit-variance prior on
//! the identity weights is the model's own; expression weights are blendshape activations,
//! meaningful in [0, 1].
//!
//! Units: millimetres everywhere (ICT's files are in centimetres; the converter scales by 10).
//! Axes as ICT has them: x towards the subject's left, y up, z out of the face; triangles are
//! counter-clockwise seen from outside.
//!
//! Vertex sets: "shape vertices" are the selected regions' ICT vertices (numbered in ICT
//! order); "render vertices" are shape vertices split wherever they carry several texture
//! coordinates (uv seams). Deformation happens on shape vertices; [`FaceModel::render_positions`]
//! copies them to the render vertices, so the copies at a seam never drift apart.
//!
//! The pipeline: [`ict`] converts the ICT-FaceKit sources (native only) into the [`format`]
//! file; [`FaceModel::from_bytes`] loads a selection of [`regions`] onto a device.

pub mod format;
#[cfg(not(target_arch = "wasm32"))]
pub mod ict;
pub mod landmarks;
pub mod regions;
pub mod uv;

use std::collections::HashMap;
use std::ops::Range;

use burn::tensor::{Device, Int, Tensor, TensorData};

pub use format::{Header, ModelFile};
pub use landmarks::{JawContour, JawConvention, pick_contour};
pub use regions::{FaceArea, Region, RegionSelection};
pub use uv::UvAtlas;

/// One identity's rig (see [`FaceModel::blendshapes`]).
#[derive(Debug, Clone)]
pub struct Blendshapes {
    /// ARKit names of the expression blendshapes (see [`arkit_name`]), in the model's order.
    pub names: Vec<String>,
    /// `[Vs]` the neutral shape (expression zeroed), mm.
    pub neutral: Vec<[f32; 3]>,
    /// `[53][Vs]` each blendshape's displacement at weight 1, mm.
    pub deltas: Vec<Vec<[f32; 3]>>,
}

/// The ARKit name of an ICT-FaceKit blendshape: `eyeBlink_L` → `eyeBlinkLeft`, `jawOpen` stays.
/// ICT splits two shapes that ARKit keeps whole, `browInnerUp` and `cheekPuff`: their halves
/// become `browInnerUpLeft`/`Right` and `cheekPuffLeft`/`Right`, which an ARKit stream drives
/// both with its one value.
pub fn arkit_name(ict: &str) -> String {
    if let Some(base) = ict.strip_suffix("_L") {
        format!("{base}Left")
    } else if let Some(base) = ict.strip_suffix("_R") {
        format!("{base}Right")
    } else {
        ict.to_string()
    }
}

use crate::error::{Error, Result};
use crate::io::MeshData;
use crate::render::{Topology, shading};

/// The file name the tools use for the converted model, in `models/`.
pub const DEFAULT_FILE_NAME: &str = "face_model.gfm";

/// The face model on a device, restricted to a [`RegionSelection`].
#[derive(Debug, Clone)]
pub struct FaceModel {
    header: Header,
    selection: RegionSelection,
    /// Shape vertex → ICT vertex.
    ict_index: Vec<u32>,
    mean: Vec<[f32; 3]>,
    shape_triangles: Vec<[u32; 3]>,
    render_to_shape: Vec<u32>,
    render_uvs: Vec<[f32; 2]>,
    render_triangles: Vec<[u32; 3]>,
    atlas: UvAtlas,
    /// Per shape vertex, bit i set when in `FaceArea::ALL[i]`.
    face_areas: Vec<u8>,
    landmarks: Vec<u32>,
    annotated: [Vec<u32>; 3],
    device: Device,
    mean_row: Tensor<2>,
    basis: Tensor<2>,
    render_index: Tensor<1, Int>,
    landmark_index: Tensor<1, Int>,
    topology: Topology,
    shape_topology: Topology,
    contour: JawContour,
    uv_tensor: Tensor<3>,
}

/// Index ranges of a model's vertices or triangles.
type Spans = Vec<Range<u32>>;

/// The selected regions' vertex ranges and triangle ranges, in ICT order.
fn selected_spans(
    header: &Header,
    selection: RegionSelection,
    path: &str,
) -> Result<(Spans, Spans)> {
    let mut vertices = Vec::new();
    let mut triangles = Vec::new();
    for region in selection.regions() {
        let span = header
            .regions
            .iter()
            .find(|s| s.region == region)
            .ok_or_else(|| Error::model(path, format!("has no region {:?}", region.ict_name())))?;
        vertices.push(span.vertices.clone());
        triangles.push(span.triangles.clone());
    }
    Ok((vertices, triangles))
}

fn to_shape(subset: &regions::VertexSubset, ict: u32, what: &str, path: &str) -> Result<u32> {
    subset.get(ict).ok_or_else(|| {
        Error::model(
            path,
            format!("{what} uses vertex {ict}, which is outside the selected regions"),
        )
    })
}

impl FaceModel {
    /// Loads a model file's bytes (read from disk, or fetched in the browser) onto `device`.
    /// `path` names the file in errors. For gradients, pass the autodiff device the fit runs on.
    pub fn from_bytes(
        bytes: &[u8],
        path: &str,
        device: &Device,
        selection: RegionSelection,
    ) -> Result<Self> {
        Self::from_file(&ModelFile::parse(bytes, path)?, device, selection)
    }

    /// Reads and loads a model file (native).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn load(
        path: impl AsRef<std::path::Path>,
        device: &Device,
        selection: RegionSelection,
    ) -> Result<Self> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        Self::from_bytes(&bytes, &path.display().to_string(), device, selection)
    }

    pub fn from_file(
        file: &ModelFile,
        device: &Device,
        selection: RegionSelection,
    ) -> Result<Self> {
        let header = file.header.clone();
        let path = file.path();
        let (vertex_ranges, triangle_ranges) = selected_spans(&header, selection, path)?;
        let subset = regions::VertexSubset::new(&vertex_ranges, header.num_vertices as usize);

        let triangles = file.triangles()?;
        let triangle_uvs = file.triangle_uvs()?;
        let materials = file.triangle_materials()?;
        let ict_uvs = file.uvs()?;
        let mut atlas = UvAtlas::default();
        let mut shape_triangles = Vec::new();
        let mut render_triangles = Vec::new();
        // Render vertex key: (shape vertex, ICT uv, atlas slot).
        let mut render_of: HashMap<(u32, u32, u32), u32> = HashMap::new();
        let mut render_keys: Vec<(u32, u32, u32)> = Vec::new();
        for range in &triangle_ranges {
            for t in range.start as usize..range.end as usize {
                let material = &header.materials[materials[t] as usize];
                let slot = atlas.slot_of(&material.name, material.uv_tile);
                let mut shape = [0u32; 3];
                let mut render = [0u32; 3];
                for c in 0..3 {
                    shape[c] = to_shape(
                        &subset,
                        triangles[3 * t + c],
                        &format!("triangle {t}"),
                        path,
                    )?;
                    let key = (shape[c], triangle_uvs[3 * t + c], slot);
                    render[c] = *render_of.entry(key).or_insert_with(|| {
                        render_keys.push(key);
                        render_keys.len() as u32 - 1
                    });
                }
                shape_triangles.push(shape);
                render_triangles.push(render);
            }
        }
        let render_to_shape: Vec<u32> = render_keys.iter().map(|k| k.0).collect();
        let render_uvs: Vec<[f32; 2]> = render_keys
            .iter()
            .map(|&(_, uv, slot)| {
                atlas.to_render(
                    slot,
                    [ict_uvs[2 * uv as usize], ict_uvs[2 * uv as usize + 1]],
                )
            })
            .collect();

        let mean_all = file.mean()?;
        let mean: Vec<[f32; 3]> = subset
            .ict_index
            .iter()
            .map(|&v| {
                let i = 3 * v as usize;
                [mean_all[i], mean_all[i + 1], mean_all[i + 2]]
            })
            .collect();
        let vs = subset.len();
        let mut basis = file.basis_rows("identity", &vertex_ranges)?;
        basis.extend(file.basis_rows("expression", &vertex_ranges)?);
        let modes = header.identity_names.len() + header.expression_names.len();

        let landmarks = header
            .landmarks
            .multipie68
            .iter()
            .map(|&v| to_shape(&subset, v, "a landmark", path))
            .collect::<Result<Vec<u32>>>()?;
        // Where annotators put the 68 on a fitted face, by the face's yaw; a model without
        // those vertices (not converted from ICT-FaceKit's face) reports its own 68.
        let annotated: [Vec<u32>; 3] = landmarks::ANNOTATED_68_BY_YAW.map(|table| {
            table
                .iter()
                .map(|&v| subset.get(v))
                .collect::<Option<Vec<u32>>>()
                .unwrap_or_else(|| landmarks.clone())
        });
        let contour_lists = header
            .landmarks
            .contour
            .iter()
            .map(|list| {
                list.iter()
                    .map(|&v| to_shape(&subset, v, "a jaw contour candidate", path))
                    .collect::<Result<Vec<u32>>>()
            })
            .collect::<Result<Vec<_>>>()?;
        let mut face_areas = vec![0u8; vs];
        for (bit, area) in FaceArea::ALL.iter().enumerate() {
            let span = header
                .face_areas
                .iter()
                .find(|a| a.area == *area)
                .ok_or_else(|| {
                    Error::model(path, format!("has no face area {:?}", area.ict_name()))
                })?;
            for v in span.vertices.clone() {
                if let Some(s) = subset.get(v) {
                    face_areas[s as usize] |= 1 << bit;
                }
            }
        }

        let int_tensor = |values: &[u32]| {
            Tensor::<1, Int>::from_data(
                TensorData::new(
                    values.iter().map(|&i| i as i32).collect::<Vec<_>>(),
                    [values.len()],
                ),
                device,
            )
        };
        let vr = render_to_shape.len();
        let topology = Topology::with_shared_positions(
            render_triangles.clone(),
            vr,
            Some(&render_to_shape),
            device,
        )?;
        let shape_topology = Topology::new(shape_triangles.clone(), vs, device)?;
        Ok(Self {
            mean_row: Tensor::from_data(
                TensorData::new(mean.as_flattened().to_vec(), [1, vs * 3]),
                device,
            ),
            basis: Tensor::from_data(TensorData::new(basis, [modes, vs * 3]), device),
            render_index: int_tensor(&render_to_shape),
            landmark_index: int_tensor(&landmarks),
            annotated,
            uv_tensor: Tensor::from_data(
                TensorData::new(render_uvs.as_flattened().to_vec(), [1, vr, 2]),
                device,
            ),
            contour: JawContour::new(contour_lists, device),
            topology,
            shape_topology,
            device: device.clone(),
            header,
            selection,
            ict_index: subset.ict_index,
            mean,
            shape_triangles,
            render_to_shape,
            render_uvs,
            render_triangles,
            atlas,
            face_areas,
            landmarks,
        })
    }

    pub fn header(&self) -> &Header {
        &self.header
    }

    pub fn selection(&self) -> RegionSelection {
        self.selection
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// 100.
    pub fn num_identity(&self) -> usize {
        self.header.identity_names.len()
    }

    /// 53.
    pub fn num_expression(&self) -> usize {
        self.header.expression_names.len()
    }

    /// ARKit-style names, ICT's order ("browDown_L", ..., "noseSneer_R").
    pub fn expression_names(&self) -> &[String] {
        &self.header.expression_names
    }

    pub fn num_shape_vertices(&self) -> usize {
        self.mean.len()
    }

    pub fn num_render_vertices(&self) -> usize {
        self.render_to_shape.len()
    }

    /// Shape vertices `[B, Vs, 3]` (mm) of identity weights `[B, 100]` and expression weights
    /// `[B, 53]`: mean + one matmul with the stacked bases. Differentiable in both weights.
    pub fn vertices(&self, identity: Tensor<2>, expression: Tensor<2>) -> Result<Tensor<3>> {
        let [b, ni] = identity.dims();
        let [be, ne] = expression.dims();
        if ni != self.num_identity() || ne != self.num_expression() || be != b || b == 0 {
            return Err(Error::Invalid(format!(
                "face model weights: identity {:?} and expression {:?}, expected [B, {}] and [B, {}]",
                [b, ni],
                [be, ne],
                self.num_identity(),
                self.num_expression()
            )));
        }
        let weights = Tensor::cat(vec![identity, expression], 1);
        let flat = weights.matmul(self.basis.clone()) + self.mean_row.clone();
        Ok(flat.reshape([b, self.num_shape_vertices(), 3]))
    }

    /// The rig of one identity: its neutral shape (expression zeroed) and each expression
    /// blendshape's displacement of it, mm, read back without blocking.
    pub async fn blendshapes(&self, identity: &[f32]) -> Result<Blendshapes> {
        let (ni, ne, vs) = (
            self.num_identity(),
            self.num_expression(),
            self.num_shape_vertices(),
        );
        if identity.len() != ni {
            return Err(Error::Invalid(format!(
                "blendshapes: {} identity weights, the model has {ni}",
                identity.len()
            )));
        }
        // Row 0 the neutral shape, row 1 + j the shape with blendshape j at weight 1.
        let identity = Tensor::<2>::from_data(
            TensorData::new(identity.repeat(ne + 1), [ne + 1, ni]),
            &self.device,
        );
        let mut one_hot = vec![0f32; (ne + 1) * ne];
        for j in 0..ne {
            one_hot[(j + 1) * ne + j] = 1.0;
        }
        let expression =
            Tensor::<2>::from_data(TensorData::new(one_hot, [ne + 1, ne]), &self.device);
        let (values, _) = crate::device::read_floats(self.vertices(identity, expression)?).await?;
        let rows: Vec<Vec<[f32; 3]>> = values
            .chunks_exact(vs * 3)
            .map(|row| row.chunks_exact(3).map(|c| [c[0], c[1], c[2]]).collect())
            .collect();
        let neutral = rows[0].clone();
        let deltas = rows[1..]
            .iter()
            .map(|row| {
                row.iter()
                    .zip(&neutral)
                    .map(|(p, n)| [p[0] - n[0], p[1] - n[1], p[2] - n[2]])
                    .collect()
            })
            .collect();
        Ok(Blendshapes {
            names: self
                .expression_names()
                .iter()
                .map(|n| arkit_name(n))
                .collect(),
            neutral,
            deltas,
        })
    }

    fn check_shape(&self, what: &str, shape: &Tensor<3>) -> Result<()> {
        let [_, v, c] = shape.dims();
        if v != self.num_shape_vertices() || c != 3 {
            return Err(Error::Invalid(format!(
                "{what}: expected [B, {}, 3] shape vertices, got {:?}",
                self.num_shape_vertices(),
                shape.dims()
            )));
        }
        Ok(())
    }

    /// Render vertices `[B, Vr, 3]` of shape vertices `[B, Vs, 3]` (seam copies share
    /// their shape vertex's position and its gradient). Works for any per-shape-vertex
    /// triple, such as the normals of [`FaceModel::vertex_normals`].
    pub fn render_positions(&self, shape: Tensor<3>) -> Result<Tensor<3>> {
        self.check_shape("render positions", &shape)?;
        Ok(shape.select(1, self.render_index.clone()))
    }

    /// The render triangles, with seams joined for the silhouette table.
    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    /// Texture coordinates `[1, Vr, 2]` in the renderer's convention over the model's
    /// [`UvAtlas`] (s along the map's width, t = 0 at its first row).
    pub fn uvs(&self) -> Tensor<3> {
        self.uv_tensor.clone()
    }

    pub fn uv_atlas(&self) -> &UvAtlas {
        &self.atlas
    }

    /// Unit area-weighted vertex normals `[B, Vs, 3]` of shape vertices `[B, Vs, 3]`.
    pub fn vertex_normals(&self, shape: Tensor<3>) -> Result<Tensor<3>> {
        self.check_shape("vertex normals", &shape)?;
        Ok(shading::vertex_normals(shape, &self.shape_topology))
    }

    /// The 68 Multi-PIE landmarks `[B, 68, 3]` at their fixed vertices.
    pub fn landmarks(&self, shape: Tensor<3>) -> Result<Tensor<3>> {
        self.check_shape("landmarks", &shape)?;
        Ok(shape.select(1, self.landmark_index.clone()))
    }

    /// The 68 landmarks `[B, 68, 3]` where annotators put them on a face turned by
    /// `yaw_degrees` (one per face; Multi-PIE's points as AFLW2000-3D marks them, the jaw as
    /// fixed surface points, hidden ones included; [`landmarks::ANNOTATED_68_BY_YAW`], between
    /// two tables on the segment between their vertices, [`Self::annotated_blend`]): what a
    /// fit reports. The fit itself pulls [`Self::landmarks`], where the detector puts them.
    pub fn annotated_landmarks(&self, shape: Tensor<3>, yaw_degrees: &[f32]) -> Result<Tensor<3>> {
        self.check_shape("annotated landmarks", &shape)?;
        let [b, vs, _] = shape.dims();
        if yaw_degrees.len() != b {
            return Err(Error::Invalid(format!(
                "annotated landmarks: {} yaws for {b} faces",
                yaw_degrees.len()
            )));
        }
        let blends: Vec<_> = yaw_degrees
            .iter()
            .map(|&y| self.annotated_blend(y))
            .collect();
        let flat = shape.reshape([b * vs, 3]);
        // Table `k` of every face: its 68 rows of the flattened [B·Vs, 3] vertices, weighted.
        let weighted_table = |k: usize| {
            let rows: Vec<i32> = blends
                .iter()
                .enumerate()
                .flat_map(|(i, blend)| blend[k].0.iter().map(move |&v| (i * vs) as i32 + v as i32))
                .collect();
            let weights: Vec<f32> = blends.iter().map(|blend| blend[k].1).collect();
            let rows = Tensor::<1, Int>::from_data(TensorData::new(rows, [b * 68]), &self.device);
            let weights = Tensor::<3>::from_data(TensorData::new(weights, [b, 1, 1]), &self.device);
            flat.clone().select(0, rows).reshape([b, 68, 3]) * weights
        };
        Ok(weighted_table(0) + weighted_table(1))
    }

    /// The 68 landmarks `[B, 68, 3]` in camera space with the jaw (0–16) on the visible
    /// contour, from camera-space shape vertices `[B, Vs, 3]` (camera at the origin looking
    /// down −z) and the head rotations `[B, 3, 3]` that put them there: see [`landmarks`] for
    /// the rule.
    pub fn contour_landmarks(
        &self,
        camera_points: Tensor<3>,
        rotation: Tensor<3>,
    ) -> Result<Tensor<3>> {
        self.check_shape("contour landmarks", &camera_points)?;
        let [b, _, _] = camera_points.dims();
        if rotation.dims() != [b, 3, 3] {
            return Err(Error::Invalid(format!(
                "contour landmarks: rotations {:?}, expected [{b}, 3, 3]",
                rotation.dims()
            )));
        }
        let jaw = self.contour.pick(camera_points.clone(), rotation);
        let fixed = camera_points.select(1, self.landmark_index.clone()).slice([
            0..b,
            landmarks::JAW..68,
            0..3,
        ]);
        Ok(Tensor::cat(vec![jaw, fixed], 1))
    }

    /// The jaw contour candidates (shape vertices) and the on-device rule.
    pub fn jaw_contour(&self) -> &JawContour {
        &self.contour
    }

    /// Per render vertex `[1, Vr, 1]`: 1 inside `area`, 0 outside. Interpolated by the
    /// renderer, it is the pixel loss's mask (fractional along the area's border).
    pub fn face_mask(&self, area: FaceArea) -> Tensor<3> {
        let values = self.render_face_mask(area);
        let n = values.len();
        Tensor::from_data(TensorData::new(values, [1, n, 1]), &self.device)
    }

    fn area_bit(area: FaceArea) -> u8 {
        1 << FaceArea::ALL
            .iter()
            .position(|a| *a == area)
            .expect("listed")
    }

    /// `face_mask` on the host, per render vertex.
    pub fn render_face_mask(&self, area: FaceArea) -> Vec<f32> {
        let bit = Self::area_bit(area);
        self.render_to_shape
            .iter()
            .map(|&s| {
                if self.face_areas[s as usize] & bit != 0 {
                    1.0
                } else {
                    0.0
                }
            })
            .collect()
    }

    /// Whether each shape vertex lies in `area`.
    pub fn shape_face_mask(&self, area: FaceArea) -> Vec<bool> {
        let bit = Self::area_bit(area);
        self.face_areas.iter().map(|&f| f & bit != 0).collect()
    }

    /// The face mask rasterized in texture space, `[height * width]` (row 0 at t = 0): the
    /// region of a uv map that the pixel loss constrains.
    pub fn uv_face_mask(&self, area: FaceArea, width: usize, height: usize) -> Vec<f32> {
        uv::rasterize_uv(
            &self.render_uvs,
            &self.render_triangles,
            &self.render_face_mask(area),
            width,
            height,
        )
    }

    /// Mean shape vertices, mm.
    pub fn mean_positions(&self) -> &[[f32; 3]] {
        &self.mean
    }

    /// Triangles over shape vertices (counter-clockwise from outside).
    pub fn shape_triangles(&self) -> &[[u32; 3]] {
        &self.shape_triangles
    }

    /// Triangles over render vertices.
    pub fn triangles(&self) -> &[[u32; 3]] {
        &self.render_triangles
    }

    /// Texture coordinates of the render vertices (renderer convention).
    pub fn uv_list(&self) -> &[[f32; 2]] {
        &self.render_uvs
    }

    /// Render vertex → shape vertex.
    pub fn render_to_shape(&self) -> &[u32] {
        &self.render_to_shape
    }

    /// Shape vertex → ICT vertex index (as in ICT's OBJ files, 0-based).
    pub fn ict_vertex_indices(&self) -> &[u32] {
        &self.ict_index
    }

    /// The 68 landmarks' shape vertices.
    pub fn landmark_indices(&self) -> &[u32] {
        &self.landmarks
    }

    /// The two tables of shape vertices where annotators put the 68 on a face turned by
    /// `yaw_degrees`, with their weights ([`landmarks::annotated_table_weights`]): the 68 of
    /// [`Self::annotated_landmarks`] are the weighted sums of the two tables' vertices.
    pub fn annotated_blend(&self, yaw_degrees: f32) -> [(&[u32], f32); 2] {
        landmarks::annotated_table_weights(yaw_degrees, &landmarks::ANNOTATED_68_YAWS)
            .map(|(table, weight)| (&self.annotated[table][..], weight))
    }

    /// The face mesh's 468 points as shape vertices ([`landmarks::MESH_VERTICES`] lists them
    /// in ICT-FaceKit's numbering); `None` when the model lacks one of them (a model not
    /// converted from ICT-FaceKit's face).
    pub fn mesh_vertices(&self) -> Option<Vec<u32>> {
        let shape_index: HashMap<u32, u32> = self
            .ict_index
            .iter()
            .enumerate()
            .map(|(s, &i)| (i, s as u32))
            .collect();
        landmarks::MESH_VERTICES
            .iter()
            .map(|i| shape_index.get(i).copied())
            .collect()
    }

    /// A mesh for export from shape positions `[Vs]` (mm); normals computed here.
    pub fn mesh_data(&self, positions: Vec<[f32; 3]>) -> Result<MeshData> {
        if positions.len() != self.num_shape_vertices() {
            return Err(Error::Invalid(format!(
                "mesh: {} positions, the model has {} shape vertices",
                positions.len(),
                self.num_shape_vertices()
            )));
        }
        let normals = area_weighted_normals(&positions, &self.shape_triangles);
        Ok(MeshData {
            positions,
            normals,
            uvs: self.render_uvs.clone(),
            position_of: self.render_to_shape.clone(),
            triangles: self.render_triangles.clone(),
        })
    }

    /// The mesh of batch element `index` of shape vertices `[B, Vs, 3]`, read back without
    /// blocking (the browser's way; natively, wrap in [`crate::device::block_on`]).
    pub async fn mesh_data_of(&self, shape: Tensor<3>, index: usize) -> Result<MeshData> {
        self.check_shape("mesh", &shape)?;
        let [b, v, _] = shape.dims();
        if index >= b {
            return Err(Error::Invalid(format!(
                "mesh: batch element {index} of {b}"
            )));
        }
        let (values, _) =
            crate::device::read_floats(shape.slice([index..index + 1, 0..v, 0..3])).await?;
        self.mesh_data(values.chunks_exact(3).map(|c| [c[0], c[1], c[2]]).collect())
    }
}

/// Unit area-weighted vertex normals on the host, the plain-Rust twin of
/// [`shading::vertex_normals`].
pub fn area_weighted_normals(positions: &[[f32; 3]], triangles: &[[u32; 3]]) -> Vec<[f32; 3]> {
    let mut sums = vec![[0f64; 3]; positions.len()];
    for t in triangles {
        let [a, b, c] = t.map(|i| positions[i as usize].map(f64::from));
        let (e1, e2) = (
            [b[0] - a[0], b[1] - a[1], b[2] - a[2]],
            [c[0] - a[0], c[1] - a[1], c[2] - a[2]],
        );
        let n = [
            e1[1] * e2[2] - e1[2] * e2[1],
            e1[2] * e2[0] - e1[0] * e2[2],
            e1[0] * e2[1] - e1[1] * e2[0],
        ];
        for &i in t {
            for k in 0..3 {
                sums[i as usize][k] += n[k];
            }
        }
    }
    sums.iter()
        .map(|s| {
            let len = (s[0] * s[0] + s[1] * s[1] + s[2] * s[2]).sqrt().max(1e-12);
            [
                (s[0] / len) as f32,
                (s[1] / len) as f32,
                (s[2] / len) as f32,
            ]
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::{cpu, read_floats_blocking};
    use crate::face_model::format::{ModelContents, Precision, encode};

    fn tiny_model(selection: RegionSelection) -> FaceModel {
        let bytes = encode(&ModelContents::tiny(), Precision::F32).unwrap();
        FaceModel::from_bytes(&bytes, "tiny.gfm", &cpu(), selection).unwrap()
    }

    #[test]
    fn seams_split_render_vertices_but_not_shape_vertices() {
        let m = tiny_model(RegionSelection::default());
        assert_eq!(m.num_shape_vertices(), 4);
        // Vertices 1 and 2 lie on the seam between the two materials' tiles.
        assert_eq!(m.num_render_vertices(), 6);
        assert_eq!(m.render_to_shape(), &[0, 1, 2, 1, 3, 2]);
        // Two tiles side by side: the face's u in [0, 0.5], the head's in [0.5, 1].
        assert_eq!(m.uv_atlas().aspect(), 2);
        assert_eq!(m.uv_list()[0], [0.0, 1.0]);
        assert_eq!(m.uv_list()[3], [0.75, 0.5]);
    }

    #[test]
    fn vertices_are_mean_plus_weighted_bases() {
        let m = tiny_model(RegionSelection::default());
        let c = ModelContents::tiny();
        let device = cpu();
        let id = Tensor::<2>::from_data(TensorData::new(vec![2.0f32], [1, 1]), &device);
        let ex = Tensor::<2>::from_data(TensorData::new(vec![0.5f32, -1.0], [1, 2]), &device);
        let v = read_floats_blocking(m.vertices(id, ex).unwrap()).unwrap().0;
        for i in 0..12 {
            let expected =
                c.mean[i] + 2.0 * c.identity[i] + 0.5 * c.expression[i] - c.expression[12 + i];
            assert!(
                (v[i] as f64 - expected).abs() < 1e-5,
                "{i}: {} vs {expected}",
                v[i]
            );
        }
        let wrong = Tensor::<2>::zeros([1, 3], &device);
        assert!(m.vertices(wrong, Tensor::zeros([1, 2], &device)).is_err());
    }

    #[test]
    fn face_mask_follows_the_area() {
        let m = tiny_model(RegionSelection::default());
        assert_eq!(
            m.render_face_mask(FaceArea::Narrow),
            vec![1.0, 1.0, 0.0, 1.0, 0.0, 0.0]
        );
        assert_eq!(
            m.render_face_mask(FaceArea::Full),
            vec![1.0, 1.0, 1.0, 1.0, 0.0, 1.0]
        );
        let uv_mask = m.uv_face_mask(FaceArea::Full, 8, 4);
        assert!(uv_mask.iter().any(|&x| x > 0.99));
    }

    #[test]
    fn mesh_read_back_from_the_device_is_the_shape() {
        let m = tiny_model(RegionSelection::default());
        let device = cpu();
        let shape = m
            .vertices(
                Tensor::zeros([2, 1], &device),
                Tensor::zeros([2, 2], &device),
            )
            .unwrap();
        let mesh = crate::device::block_on(m.mesh_data_of(shape.clone(), 1)).unwrap();
        assert_eq!(mesh, m.mesh_data(m.mean_positions().to_vec()).unwrap());
        assert!(crate::device::block_on(m.mesh_data_of(shape, 2)).is_err());
    }

    #[test]
    fn host_and_device_normals_agree() {
        let m = tiny_model(RegionSelection::default());
        let device = cpu();
        let shape = Tensor::<3>::from_data(
            TensorData::new(m.mean_positions().as_flattened().to_vec(), [1, 4, 3]),
            &device,
        );
        let dev = read_floats_blocking(m.vertex_normals(shape).unwrap())
            .unwrap()
            .0;
        let host = area_weighted_normals(m.mean_positions(), m.shape_triangles());
        assert!(
            dev.iter()
                .zip(host.as_flattened())
                .all(|(a, b)| (a - b).abs() < 1e-5)
        );
        // The tiny mesh lies in z = 0, counter-clockwise seen from +z.
        assert!(host.iter().all(|n| n[2] > 0.99));
    }
}
