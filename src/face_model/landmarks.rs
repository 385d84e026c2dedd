//! The 68 Multi-PIE landmarks on the ICT mesh, and the jaw contour that slides to the
//! silhouette when the head turns.
//!
//! A 2D landmark detector marks the jaw (points 0–16) on the visible outline of the face. On the
//! side turned away from the camera that outline is the cheek's silhouette, which moves across
//! the cheek with the pose, so no fixed vertex can stand for it. As 3DDFA and eos do, each jaw
//! landmark gets a list of candidate vertices and the pose picks one:
//!
//! - Candidates of jaw landmark k (k ≠ 8) are a line of vertices across the cheek: they start
//!   at ICT's jawline vertex for k (the README's "jawline" lists, on the edge of the jaw) and
//!   run forwards towards the nose in the plane through that vertex perpendicular to ICT's
//!   extended jawline, about every 2.5 mm for up to 45 mm. The chin (k = 8) keeps its vertex.
//! - The rule ([`pick_contour`]): walking a list from the jaw edge forwards, take the first
//!   candidate that faces the camera (n · (eye − p) > 0). On the side turned away, the
//!   candidates behind the silhouette face away, so the pick is the first visible point, the
//!   silhouette; on the side facing the camera the jawline vertex itself is visible and stays,
//!   the fixed point 3DDFA keeps on that side. When no candidate faces the camera the last
//!   (innermost) one is taken.

use std::collections::VecDeque;

use burn::tensor::{Device, Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};

/// Number of jaw landmarks (Multi-PIE 0–16).
pub const JAW: usize = 17;
/// Index of the chin among the 68.
pub const CHIN: usize = 8;
/// Nose tip among the 68: the direction the contour lines run towards.
pub const NOSE_TIP: usize = 30;

/// Spacing of contour candidates along their line, mm.
const CONTOUR_STEP_MM: f64 = 2.5;
/// How far across the cheek the candidates reach, mm.
const CONTOUR_REACH_MM: f64 = 45.0;
/// Half the thickness of the slab around each contour plane that candidates come from, mm.
const CONTOUR_SLAB_MM: f64 = 4.0;

/// Landmark vertex indices (ICT vertex numbering) as stored in the model file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LandmarkData {
    /// Multi-PIE 68 points, in order.
    pub multipie68: Vec<u32>,
    /// ICT's jawline vertices standing in for landmarks 0–7 ...
    pub jawline_right: Vec<u32>,
    /// ... and for landmarks 9–16.
    pub jawline_left: Vec<u32>,
    /// The extended jawlines (17 each, supersets of the above), ear to chin and chin to ear.
    pub jawline_right_extended: Vec<u32>,
    pub jawline_left_extended: Vec<u32>,
    /// Contour candidates of each jaw landmark, from the jaw edge inwards (see module docs).
    pub contour: Vec<Vec<u32>>,
}

impl LandmarkData {
    /// Counts and index ranges; the reason is a sentence naming what is wrong.
    pub fn check(&self, num_vertices: u32) -> Result<(), String> {
        let lists: [(&str, &Vec<u32>, usize); 5] = [
            ("Multi-PIE landmark", &self.multipie68, 68),
            ("right jawline", &self.jawline_right, 8),
            ("left jawline", &self.jawline_left, 8),
            ("right extended jawline", &self.jawline_right_extended, 17),
            ("left extended jawline", &self.jawline_left_extended, 17),
        ];
        for (what, list, len) in lists {
            if list.len() != len {
                return Err(format!("{what} list has {} entries, expected {len}", list.len()));
            }
            if let Some(&i) = list.iter().find(|&&i| i >= num_vertices) {
                return Err(format!("{what} vertex {i} out of range ({num_vertices} vertices)"));
            }
        }
        if self.contour.len() != JAW || self.contour.iter().any(|c| c.is_empty()) {
            return Err(format!("contour landmark lists: {} lists, expected {JAW} non-empty ones", self.contour.len()));
        }
        if let Some(&i) = self.contour.iter().flatten().find(|&&i| i >= num_vertices) {
            return Err(format!("contour landmark vertex {i} out of range ({num_vertices} vertices)"));
        }
        Ok(())
    }

    /// ICT's jawline vertex standing for jaw landmark `k` (the chin's own vertex for k = 8).
    pub fn jawline_vertex(&self, k: usize) -> u32 {
        match k {
            CHIN => self.multipie68[CHIN],
            k if k < CHIN => self.jawline_right[k],
            k => self.jawline_left[k - CHIN - 1],
        }
    }
}

fn sub(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}

fn dot(a: [f64; 3], b: [f64; 3]) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

fn unit(a: [f64; 3]) -> Option<[f64; 3]> {
    let n = dot(a, a).sqrt();
    (n > 1e-9).then(|| [a[0] / n, a[1] / n, a[2] / n])
}

/// Builds the contour candidate lists (see the module docs) on the mean mesh: `positions` in
/// mm by ICT vertex, `triangles` the mesh the lines may run on (the Face region's), and
/// `data` with everything but `contour` filled in.
pub fn build_contour(positions: &[[f64; 3]], triangles: &[[u32; 3]], data: &LandmarkData) -> Result<Vec<Vec<u32>>, String> {
    let n = positions.len();
    let mut neighbours = vec![Vec::new(); n];
    for t in triangles {
        for m in 0..3 {
            let (a, b) = (t[m] as usize, t[(m + 1) % 3] as usize);
            if a >= n || b >= n {
                return Err(format!("triangle vertex {} out of range", a.max(b)));
            }
            neighbours[a].push(b);
            neighbours[b].push(a);
        }
    }
    let nose = positions[data.multipie68[NOSE_TIP] as usize];
    let mut contour = Vec::with_capacity(JAW);
    for k in 0..JAW {
        let anchor_vertex = data.jawline_vertex(k);
        if k == CHIN {
            contour.push(vec![anchor_vertex]);
            continue;
        }
        let extended = if k < CHIN { &data.jawline_right_extended } else { &data.jawline_left_extended };
        let i = extended
            .iter()
            .position(|&v| v == anchor_vertex)
            .ok_or_else(|| format!("jawline vertex {anchor_vertex} of landmark {k} is not on the extended jawline"))?;
        let before = extended[i.saturating_sub(1)] as usize;
        let after = extended[(i + 1).min(extended.len() - 1)] as usize;
        let anchor = positions[anchor_vertex as usize];
        let tangent = unit(sub(positions[after], positions[before])).ok_or_else(|| format!("extended jawline degenerate at landmark {k}"))?;
        let towards_nose = sub(nose, anchor);
        let inwards = unit(sub(towards_nose, tangent.map(|c| c * dot(towards_nose, tangent))))
            .ok_or_else(|| format!("jawline tangent at landmark {k} points at the nose"))?;
        let in_slab = |v: usize| {
            let d = sub(positions[v], anchor);
            dot(d, tangent).abs() <= CONTOUR_SLAB_MM && (0.0..=CONTOUR_REACH_MM).contains(&dot(d, inwards))
        };
        // Only slab vertices connected to the anchor through the slab: a fold of the surface
        // that enters the slab elsewhere (an eyelid, a lip) is another sheet.
        let mut best: Vec<Option<(f64, u32)>> = vec![None; (CONTOUR_REACH_MM / CONTOUR_STEP_MM) as usize + 1];
        let mut seen = vec![false; n];
        let mut queue = VecDeque::from([anchor_vertex as usize]);
        seen[anchor_vertex as usize] = true;
        while let Some(v) = queue.pop_front() {
            let d = sub(positions[v], anchor);
            let bin = ((dot(d, inwards) / CONTOUR_STEP_MM).round() as usize).min(best.len() - 1);
            let off_plane = dot(d, tangent).abs();
            if v != anchor_vertex as usize && bin > 0 && best[bin].is_none_or(|(o, _)| off_plane < o) {
                best[bin] = Some((off_plane, v as u32));
            }
            for &w in &neighbours[v] {
                if !seen[w] && in_slab(w) {
                    seen[w] = true;
                    queue.push_back(w);
                }
            }
        }
        let line: Vec<u32> = std::iter::once(anchor_vertex).chain(best.iter().flatten().map(|&(_, v)| v)).collect();
        if line.len() < 4 {
            return Err(format!("jaw landmark {k}: only {} contour candidates found across the cheek", line.len()));
        }
        contour.push(line);
    }
    Ok(contour)
}

/// The contour rule on plain data: for each jaw landmark, the candidate (an index into the
/// positions) to use, given camera-space positions and normals of the vertices (camera at the
/// origin, as [`crate::render::camera`] has it).
pub fn pick_contour(contour: &[Vec<u32>], camera_points: &[[f32; 3]], camera_normals: &[[f32; 3]]) -> Vec<u32> {
    contour
        .iter()
        .map(|line| {
            let faces_camera = |&&v: &&u32| {
                let (p, n) = (camera_points[v as usize], camera_normals[v as usize]);
                -(n[0] * p[0] + n[1] * p[1] + n[2] * p[2]) > 0.0
            };
            *line.iter().find(faces_camera).unwrap_or_else(|| line.last().expect("contour lists are non-empty"))
        })
        .collect()
}

/// The contour lists on a device, padded to one length with each list's last candidate (a
/// repeat changes neither the first visible candidate nor the fallback).
#[derive(Debug, Clone)]
pub struct JawContour {
    lists: Vec<Vec<u32>>,
    width: usize,
    padded: Tensor<1, Int>,
    /// Score of each candidate slot when it faces the camera: earlier slots score higher.
    visible_score: Tensor<1>,
    /// Score of each slot otherwise: only the last slot scores, as the fallback.
    fallback_score: Tensor<1>,
}

impl JawContour {
    /// `lists` in shape-vertex numbering.
    pub fn new(lists: Vec<Vec<u32>>, device: &Device) -> Self {
        let width = lists.iter().map(Vec::len).max().unwrap_or(1);
        let padded: Vec<i32> = lists
            .iter()
            .flat_map(|l| (0..width).map(move |j| *l.get(j).unwrap_or_else(|| l.last().expect("non-empty")) as i32))
            .collect();
        let m = lists.len();
        let visible: Vec<f32> = (0..m).flat_map(|_| (0..width).map(|j| (2 * width - j) as f32)).collect();
        let fallback: Vec<f32> = (0..m).flat_map(|_| (0..width).map(|j| if j + 1 == width { 1.0 } else { 0.0 })).collect();
        Self {
            padded: Tensor::from_data(TensorData::new(padded, [m * width]), device),
            visible_score: Tensor::from_data(TensorData::new(visible, [m * width]), device),
            fallback_score: Tensor::from_data(TensorData::new(fallback, [m * width]), device),
            lists,
            width,
        }
    }

    /// Candidate shape vertices of each jaw landmark, from the jaw edge inwards.
    pub fn lists(&self) -> &[Vec<u32>] {
        &self.lists
    }

    /// The picked contour points `[B, 17, 3]` (camera space) from camera-space points and
    /// normals `[B, Vs, 3]`, by the rule of [`pick_contour`]. Differentiable with respect to
    /// the points (the choice itself is piecewise constant).
    pub fn pick(&self, camera_points: Tensor<3>, camera_normals: Tensor<3>) -> Tensor<3> {
        let [b, _, _] = camera_points.dims();
        let (m, w) = (self.lists.len(), self.width);
        let points = camera_points.select(1, self.padded.clone());
        let normals = camera_normals.select(1, self.padded.clone());
        let facing = (normals * points.clone()).sum_dim(2).neg().greater_elem(0.0).float().reshape([b, m * w]);
        let score = facing.clone() * self.visible_score.clone().reshape([1, m * w]) + (facing.neg() + 1.0) * self.fallback_score.clone().reshape([1, m * w]);
        let choice = score.reshape([b, m, w]).argmax(2).reshape([b, m, 1, 1]).expand([b, m, 1, 3]);
        points.reshape([b, m, w, 3]).gather(2, choice).reshape([b, m, 3])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A half cylinder of radius 50 around the y axis, facing +z, as a grid: columns run
    /// around the axis (angle from -90° at x = -50 to +90°), rows along y.
    fn half_cylinder() -> (Vec<[f64; 3]>, Vec<[u32; 3]>, usize) {
        let (cols, rows) = (73, 5);
        let mut positions = Vec::new();
        for r in 0..rows {
            for c in 0..cols {
                let a = -std::f64::consts::FRAC_PI_2 + std::f64::consts::PI * c as f64 / (cols - 1) as f64;
                positions.push([50.0 * a.sin(), 2.0 * r as f64, 50.0 * a.cos()]);
            }
        }
        let at = |r: usize, c: usize| (r * cols + c) as u32;
        let mut triangles = Vec::new();
        for r in 0..rows - 1 {
            for c in 0..cols - 1 {
                triangles.push([at(r, c), at(r, c + 1), at(r + 1, c + 1)]);
                triangles.push([at(r, c), at(r + 1, c + 1), at(r + 1, c)]);
            }
        }
        (positions, triangles, cols)
    }

    #[test]
    fn contour_lines_run_from_the_jaw_edge_inwards_and_pick_the_silhouette() {
        let (positions, triangles, cols) = half_cylinder();
        // The right "jaw" is the cylinder's edge at x = -50 on row 2 (extended along y), the
        // left one the edge at x = +50; the "nose" is straight ahead.
        let right_edge = |r: u32| r * cols as u32;
        let left_edge = |r: u32| r * cols as u32 + cols as u32 - 1;
        let front = 2 * cols as u32 + cols as u32 / 2;
        // The extended lists need distinct neighbours around each jawline vertex.
        let data = LandmarkData {
            multipie68: vec![front; 68],
            jawline_right: vec![right_edge(2); 8],
            jawline_left: vec![left_edge(2); 8],
            jawline_right_extended: [right_edge(1), right_edge(2), right_edge(3)].into_iter().cycle().take(17).collect(),
            jawline_left_extended: [left_edge(1), left_edge(2), left_edge(3)].into_iter().cycle().take(17).collect(),
            contour: vec![],
        };
        let contour = build_contour(&positions, &triangles, &data).unwrap();
        assert_eq!(contour[CHIN], vec![front]);
        for k in [0, 16] {
            let line = &contour[k];
            assert_eq!(line[0], data.jawline_vertex(k));
            assert!(line.len() >= 12, "{} candidates", line.len());
            // Every candidate on row 2 (the plane through the anchor), moving inwards.
            assert!(line.iter().all(|&v| v as usize / cols == 2));
            let depth: Vec<f64> = line.iter().map(|&v| positions[v as usize][2]).collect();
            assert!(depth.windows(2).all(|w| w[1] > w[0]), "not ordered inwards: {depth:?}");
        }
        // Camera on +z at distance 300, head turned by 30° to its left (about y): the right
        // side faces the camera, the left side turns away.
        let yaw = 30f64.to_radians();
        let (s, c) = yaw.sin_cos();
        let rotate = |p: [f64; 3]| [c * p[0] + s * p[2], p[1], -s * p[0] + c * p[2]];
        let camera: Vec<[f32; 3]> = positions.iter().map(|&p| rotate(p)).map(|p| [p[0] as f32, p[1] as f32, (p[2] - 300.0) as f32]).collect();
        let normals: Vec<[f32; 3]> = positions.iter().map(|&p| rotate([p[0] / 50.0, 0.0, p[2] / 50.0])).map(|n| n.map(|x| x as f32)).collect();
        let picks = pick_contour(&contour, &camera, &normals);
        assert_eq!(picks[0], contour[0][0], "the side facing the camera keeps its jawline vertex");
        // The silhouette of a cylinder seen from a point at distance d: the tangent point,
        // where n · (eye − p) = 0; its projected x is extreme among the candidates.
        let projected_x = |v: u32| camera[v as usize][0] / -camera[v as usize][2];
        let picked = picks[16];
        let extreme = contour[16].iter().copied().max_by(|&a, &b| projected_x(a).total_cmp(&projected_x(b))).unwrap();
        assert!(picked != contour[16][0], "the turned-away side slides off the jaw edge");
        let gap = (projected_x(picked) - projected_x(extreme)).abs() * 300.0;
        assert!(gap < 0.5, "pick {picked} is {gap} mm (at the head's distance) inside the silhouette point {extreme}");
    }

    #[test]
    fn device_pick_matches_the_plain_rule() {
        let device = crate::device::cpu();
        let lists = vec![vec![0, 1, 2], vec![3], vec![4, 5]];
        // Points in front of the camera (z < 0); a normal facing it has n_z > 0.
        let p = [[0.0, 0.0, -10.0f32]; 6];
        let facing = [0.0, 0.0, 1.0f32];
        let away = [0.0, 0.0, -1.0f32];
        let cases = [[away, facing, facing, away, away, away], [facing, away, away, facing, away, facing], [away; 6]];
        let contour = JawContour::new(lists.clone(), &device);
        for normals in cases {
            let expected = pick_contour(&lists, &p, &normals);
            // Mark each vertex by its index in x so that the picked point tells which it is.
            let points: Vec<f32> = (0..6).flat_map(|v| [v as f32, 0.0, -10.0]).collect();
            let pt = Tensor::<3>::from_data(TensorData::new(points, [1, 6, 3]), &device);
            let nt = Tensor::<3>::from_data(TensorData::new(normals.concat(), [1, 6, 3]), &device);
            let picked = crate::device::read_floats_blocking(contour.pick(pt, nt)).unwrap().0;
            let got: Vec<u32> = picked.chunks(3).map(|q| q[0] as u32).collect();
            assert_eq!(got, expected, "normals {normals:?}");
        }
    }

    #[test]
    fn check_names_what_is_wrong() {
        let mut d = LandmarkData {
            multipie68: vec![0; 68],
            jawline_right: vec![0; 8],
            jawline_left: vec![0; 8],
            jawline_right_extended: vec![0; 17],
            jawline_left_extended: vec![0; 17],
            contour: vec![vec![0]; 17],
        };
        assert!(d.check(1).is_ok());
        d.multipie68.pop();
        assert!(d.check(1).unwrap_err().contains("67 entries"));
        d.multipie68.push(5);
        assert!(d.check(1).unwrap_err().contains("vertex 5 out of range"));
    }
}
