//! The landmark term's targets: each photo's 68 points and, where the face mesh saw the face,
//! its 468 points on the model's surface ([`crate::face_model::landmarks::MESH_VERTICES`]).
//!
//! The 68 points are a sparse summary of the mesh (`nets::facemesh::MESH_68`); the dense
//! points carry what the summary drops (cheek and forehead surface, the nose's bridge, the
//! lips' inner shape) and average the detector's per-point noise over seven times as many
//! points. A mesh point counts only where its model vertex faces the camera at the photo's
//! closed-form pose: the mesh also guesses the hidden side of a turned face, and those guesses
//! should not pull. The term is off by default (`LossWeights::mesh_landmarks`; the measured
//! trade-off is at its default): on smooth skin the mesh's points are its own shape prior.
//! Raising the facing threshold to a cosine of 0.3 or 0.6 left the shape cost as it was.

use burn::tensor::{Int, Tensor, TensorData};

use super::losses;
use super::photo::PhotoTarget;
use super::scene::{self, Camera, JawConventions};
use crate::error::Result;
use crate::face_model::{FaceModel, area_weighted_normals};
use crate::util::rotation::{euler_matrix, rotate};

/// The face mesh's points of every photo with a mesh.
#[derive(Debug, Clone)]
pub struct MeshTargets {
    /// `[468]`: the model's shape vertex under each mesh point.
    vertices: Tensor<1, Int>,
    /// `[N, 468, 2]`, working-crop pixels (zeros for a photo without a mesh).
    points: Tensor<3>,
    /// `[N, 468]`: 1 where the point counts, 0 where its vertex faces away at the photo's
    /// initial pose or the photo has no mesh.
    weights: Tensor<2>,
    /// `[N]`: each photo's count of points that count, at least 1 (a divisor).
    counts: Tensor<1>,
}

/// Every photo's landmark targets.
#[derive(Debug, Clone)]
pub struct LandmarkTargets {
    /// `[N, 68, 2]`, working-crop pixels.
    pub points68: Tensor<3>,
    /// `[68]`: per-point weights ([`landmark_weights`]).
    weights68: Tensor<1>,
    /// Each photo's jaw convention, from the landmarks it is fitted to.
    pub jaw: JawConventions,
    mesh: Option<MeshTargets>,
    /// The mesh points' weight against the 68's.
    mesh_weight: f32,
}

/// Per-point weights of the 68: the jaw is the least reliable.
fn landmark_weights(device: &burn::tensor::Device) -> Tensor<1> {
    let w: Vec<f32> = (0..68).map(|i| if i < 17 { 0.5 } else { 1.0 }).collect();
    Tensor::from_data(TensorData::new(w, [68]), device)
}

impl LandmarkTargets {
    /// The targets of `targets` (one per photo). The mesh points join with `mesh_weight` when
    /// it is not zero, the model places the mesh's points ([`FaceModel::mesh_vertices`]) and
    /// at least one photo has a mesh.
    pub fn new(face: &FaceModel, targets: &[PhotoTarget], mesh_weight: f32) -> Self {
        let device = face.device();
        let n = targets.len();
        let points: Vec<f32> = targets
            .iter()
            .flat_map(|t| t.landmarks.iter().flatten().copied())
            .collect();
        let points68 = Tensor::<3>::from_data(TensorData::new(points, [n, 68, 2]), device);
        let jaw = JawConventions::new(
            targets.iter().map(PhotoTarget::jaw_convention).collect(),
            device,
        );
        let mesh = match face.mesh_vertices() {
            Some(vertices) if mesh_weight != 0.0 => mesh_targets(face, targets, &vertices),
            _ => None,
        };
        Self {
            points68,
            weights68: landmark_weights(device),
            jaw,
            mesh,
            mesh_weight,
        }
    }

    /// Each photo's landmark loss `[N]` for shape vertices `shape` `[N, Vs, 3]` seen by
    /// `camera` in `r²` crops: the weighted mean squared distance of the 68, plus the mesh
    /// points' mean squared distance times their weight, both in units of the crop side.
    pub fn per_photo(
        &self,
        face: &FaceModel,
        shape: Tensor<3>,
        camera: &Camera,
        r: usize,
    ) -> Result<Tensor<1>> {
        let predicted = scene::project_landmarks(face, shape.clone(), camera, &self.jaw, r)?;
        let sparse = losses::landmarks_per_photo(
            predicted,
            self.points68.clone(),
            self.weights68.clone(),
            r as f32,
        );
        let Some(mesh) = &self.mesh else {
            return Ok(sparse);
        };
        let predicted = scene::project_vertices(shape.select(1, mesh.vertices.clone()), camera, r);
        let [n, k, _] = predicted.dims();
        let squared = (predicted - mesh.points.clone())
            .powi_scalar(2)
            .sum_dim(2)
            .reshape([n, k]);
        let dense = (squared * mesh.weights.clone()).sum_dim(1).reshape([n])
            / (mesh.counts.clone() * (r * r) as f32);
        Ok(sparse + dense * self.mesh_weight)
    }
}

/// Cosine below which a mesh point's vertex counts as turned away from the camera.
const FACING_MIN_COSINE: f32 = 0.0;

/// The mesh targets of the photos with a mesh; `None` when no photo has one.
fn mesh_targets(
    face: &FaceModel,
    targets: &[PhotoTarget],
    vertices: &[u32],
) -> Option<MeshTargets> {
    if targets.iter().all(|t| t.mesh_points.is_none()) {
        return None;
    }
    let device = face.device();
    let k = vertices.len();
    let mean = face.mean_positions();
    let normals = area_weighted_normals(mean, face.shape_triangles());
    let (mut points, mut weights, mut counts) = (Vec::new(), Vec::new(), Vec::new());
    for t in targets {
        match &t.mesh_points {
            Some(p) if p.len() == k => {
                // Facing: the normal turned by the head's rotation points back at the camera,
                // which sits at the origin looking down −z.
                let r = euler_matrix(t.pose.angles);
                let facing: Vec<f32> = vertices
                    .iter()
                    .map(|&v| {
                        let x = rotate(&r, mean[v as usize]);
                        let position: [f32; 3] =
                            std::array::from_fn(|i| x[i] + t.pose.translation[i]);
                        let normal = rotate(&r, normals[v as usize]);
                        let length = position.iter().map(|c| c * c).sum::<f32>().sqrt().max(1e-6);
                        let cosine = -(0..3).map(|i| normal[i] * position[i]).sum::<f32>() / length;
                        if cosine > FACING_MIN_COSINE { 1.0 } else { 0.0 }
                    })
                    .collect();
                counts.push(facing.iter().sum::<f32>().max(1.0));
                weights.extend(facing);
                points.extend(p.iter().flatten().copied());
            }
            _ => {
                counts.push(1.0);
                weights.extend(std::iter::repeat_n(0.0, k));
                points.extend(std::iter::repeat_n(0.0, 2 * k));
            }
        }
    }
    let n = targets.len();
    let indices: Vec<i32> = vertices.iter().map(|&v| v as i32).collect();
    Some(MeshTargets {
        vertices: Tensor::from_data(TensorData::new(indices, [k]), device),
        points: Tensor::from_data(TensorData::new(points, [n, k, 2]), device),
        weights: Tensor::from_data(TensorData::new(weights, [n, k]), device),
        counts: Tensor::from_data(TensorData::new(counts, [n]), device),
    })
}
