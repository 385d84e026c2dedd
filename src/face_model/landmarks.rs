//! The 68 Multi-PIE landmarks on the ICT mesh, and the jaw contour that slides to the
//! silhouette when the head turns.
//!
//! A 2D landmark detector marks the jaw (points 0–16) on the visible outline of the face. On the
//! side turned away from the camera that outline is the cheek's silhouette, which moves across
//! the cheek with the pose, so no fixed vertex can stand for it. As 3DDFA does ("landmark
//! marching"), each jaw landmark gets a line of candidate vertices and the pose picks one:
//!
//! - Candidates of jaw landmark k (k ≠ 8) lie on the horizontal line (constant height in the
//!   model) through ICT's Multi-PIE vertex: from that vertex, which is on the outline of the
//!   frontal face, forwards across the cheek towards the nose, about every 2.5 mm, stopping
//!   at 40% of the vertex's distance from the midline (before the nose and the mouth, which
//!   would otherwise outreach the cheek at large yaw). The chin (k = 8) keeps its vertex.
//! - The rule ([`pick_contour`]): the candidate that is outermost in the image, measured
//!   along the image direction of the head's sideways axis on the landmark's side. On the side
//!   turned away that is the cheek's silhouette; on the side facing the camera it is the line's
//!   first vertex, the frontal landmark itself, which stays fixed as 3DDFA keeps it.
//!
//! ICT's jawline lists (README) run along the edge of the jaw, which is the outline only from
//! the front and on the facing side; they are kept in the model file (for eos-style matching
//! of detected contour points to the nearest jawline vertex) but the lines above do not need
//! them. On ICT's mean face the lines reach the silhouette up to about 45° of yaw; beyond that
//! the pick stays near the line's inner end.

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
/// Lines end where a vertex's distance from the midline falls below this share of the
/// landmark's own.
const CONTOUR_INNER_FRACTION: f64 = 0.4;
/// Half the height of the slab around each line that candidates come from, mm.
const CONTOUR_SLAB_MM: f64 = 4.0;
/// Length of the sideways axis whose projection gives a line's outward image direction, mm.
const OUTWARD_PROBE_MM: f32 = 10.0;

/// The side of jaw landmark `k` along the model's x axis: −1 for the subject's right (0–7),
/// +1 for the left (9–16), 0 for the chin.
pub fn side(k: usize) -> f32 {
    match k.cmp(&CHIN) {
        std::cmp::Ordering::Less => -1.0,
        std::cmp::Ordering::Greater => 1.0,
        std::cmp::Ordering::Equal => 0.0,
    }
}

/// The inner 51 landmarks (Multi-PIE 17–67: brows, nose, eyes, mouth) as ICT vertices,
/// calibrated against the detector by `ganfit eval embedding --count 400` (seed 7, yaw within
/// ±45°, 8 mm radius; see [`crate::eval::embedding`]) on the model converted with ICT's own
/// list: mean distance to the detected points on held-out synthetic views 2.54 % → 1.81 % of
/// the face size. The converter puts them in place of ICT's hand-placed vertices; the jaw
/// (0–16) keeps ICT's.
pub const CALIBRATED_INNER: [u32; 51] = [
    268, 296, 301, 1416, 2025, 4222, 3631, 2542, 2537, 2510, 971, 1348, 4839, 4841, 69, 2088, 4558,
    4269, 5028, 1581, 1576, 1573, 628, 1558, 1552, 2870, 3785, 3790, 3795, 3765, 3772, 5708, 5662,
    2081, 0, 2594, 6167, 6186, 6346, 6480, 5518, 6004, 5841, 5651, 5684, 5527, 6528, 6276, 6513,
    5517, 5952,
];

/// The face mesh's 468 points (MediaPipe's numbering) as ICT-FaceKit vertices: the dense
/// landmark term's correspondence. Derived by `ganfit eval embedding --mesh` (see
/// [`crate::eval::embedding::correspond`]): synthetic faces of known shape and camera are
/// rendered, the face mesh marks them, and each point takes the face-region vertex whose
/// projections lie closest to it over the views (400 views within ±45° of yaw, seed 7:
/// held-out error 1.76 % of the mesh's box size; per point 1.0–3.5 %).
pub const MESH_VERTICES: [u32; 468] = [
    0, 4553, 4558, 5511, 4857, 4839, 4511, 2244, 2013, 2015, 976, 5523, 5527, 5526, 5517, 5516,
    5945, 5518, 10, 4554, 5499, 297, 1102, 1095, 1107, 1627, 1354, 678, 641, 1017, 1940, 1188, 793,
    556, 1766, 1179, 2171, 2081, 6039, 5720, 5610, 5626, 5587, 457, 4590, 5505, 992, 2226, 4763,
    4764, 1204, 5508, 484, 1011, 1956, 1998, 643, 179, 1899, 4580, 4611, 5708, 5675, 286, 4745,
    1414, 1416, 1860, 2117, 2128, 268, 2112, 6041, 5658, 5607, 4586, 5651, 5892, 5750, 4778, 5663,
    5687, 6023, 449, 6004, 6005, 6007, 6009, 5847, 5822, 5793, 5826, 401, 1240, 4949, 5803, 5791,
    2087, 67, 2088, 944, 1163, 4853, 1986, 2123, 482, 185, 2006, 1689, 1427, 1113, 215, 2230, 539,
    4485, 4864, 1193, 16, 1150, 1130, 1065, 1339, 4513, 2156, 41, 4593, 88, 1884, 4473, 1136, 724,
    4754, 377, 630, 4631, 935, 763, 1214, 1458, 2107, 798, 4610, 74, 1636, 1551, 1555, 5732, 2093,
    1496, 2199, 1673, 974, 966, 1558, 1391, 604, 233, 1570, 1573, 1961, 1578, 1932, 1879, 1509,
    2189, 1653, 4761, 2085, 977, 764, 260, 1448, 757, 629, 1303, 962, 330, 378, 5966, 5850, 5851,
    5870, 1503, 5567, 5582, 5622, 160, 942, 4489, 890, 1366, 5638, 938, 931, 397, 4948, 4552, 1348,
    4573, 964, 8, 1452, 1409, 66, 212, 398, 406, 18, 1450, 959, 772, 391, 196, 1664, 213, 369, 182,
    1344, 4768, 4867, 5016, 1620, 1411, 676, 1014, 1943, 51, 1770, 1198, 1158, 1088, 1068, 4447,
    4451, 1238, 4581, 5023, 4977, 5501, 5013, 4561, 5500, 5498, 899, 1327, 1318, 569, 706, 5478,
    4435, 5074, 2538, 3322, 3315, 3327, 3836, 3570, 4168, 2938, 3237, 4140, 3406, 2740, 2797, 3968,
    3397, 4364, 4275, 6543, 6225, 6115, 6131, 6092, 2698, 5055, 5484, 3213, 4417, 5228, 5211, 3422,
    5481, 2725, 3231, 2565, 4198, 2940, 2420, 4099, 5044, 5076, 6213, 6275, 2527, 5210, 3628, 3631,
    4060, 4312, 4322, 2509, 4306, 6545, 6163, 6112, 5051, 6156, 6397, 6256, 5242, 6168, 6194, 6527,
    2690, 6480, 6509, 6511, 6513, 6352, 6327, 6298, 6331, 2642, 3458, 6323, 6296, 4269, 2308, 4282,
    3185, 3382, 5214, 4186, 4317, 2723, 2426, 4206, 3894, 3641, 3332, 2456, 4421, 2780, 4486, 5218,
    3411, 2257, 3369, 3350, 3285, 3555, 4509, 4349, 2282, 5058, 2329, 3441, 4476, 3356, 3156, 5219,
    2618, 2871, 5096, 3175, 3004, 3432, 3672, 4301, 3039, 5393, 2315, 3845, 3765, 3768, 6237, 4287,
    3710, 4390, 3880, 3772, 3606, 2914, 2474, 6578, 3787, 4161, 3792, 4133, 4079, 3762, 3860, 5226,
    4279, 4394, 2491, 3712, 2998, 2870, 3521, 2571, 2620, 6470, 6355, 6356, 6375, 3717, 6072, 6087,
    6157, 2401, 3182, 4490, 3131, 3581, 6143, 3178, 3172, 2638, 4530, 5038, 3666, 3623, 2307, 2453,
    2271, 2260, 2259, 3664, 3199, 3013, 2632, 2437, 3871, 2454, 2610, 2423, 3561, 5233, 5325, 5470,
    3829, 3625, 2766, 3234, 4144, 2292, 3413, 3461, 3377, 3308, 3288, 4448, 4452, 3456, 5046, 5477,
    5431, 5060, 5467, 5026, 5489, 5491, 3140, 3544, 3535, 2810, 2943,
];

/// Where annotators put the 68 on a fitted face (AFLW2000-3D's points; the jaw as fixed surface
/// points, hidden ones included), one table per bin of the face's fitted yaw
/// (`util::nme::yaw_bin`, the bins `ganfit eval landmarks` reports by): what a fit reports
/// (`FaceModel::annotated_landmarks`), while it pulls [`SURFACE_JAW`] and
/// [`CALIBRATED_INNER`], where the detector puts them. The detector's own 68
/// (`nets::facemesh::MESH_68`) were mapped onto AFLW2000-3D's annotations the same way.
/// Calibrated by `ganfit eval embedding --annotated FILE --radius 16` on the default fits of
/// 171 development AFLW2000-3D photos disjoint from those `eval landmarks --per-yaw-bin 30`
/// judges (`eval landmarks --fitted --per-yaw-bin 30 --skip-per-yaw-bin 30 --points FILE`,
/// then `--skip-per-yaw-bin 60`); by fitted yaw 76, 83 and 12 photos. Each landmark took the
/// vertex within 16 mm of the model's own whose projections lie closest to the annotations.
/// Between tables a face's 68 lie between theirs ([`annotated_table_weights`]).
pub const ANNOTATED_68_BY_YAW: [[u32; 68]; 3] = [
    [
        8181, 7900, 8141, 820, 1901, 833, 790, 2197, 969, 4387, 3031, 4032, 4034, 3061, 6706, 7173,
        8456, 995, 296, 1915, 2039, 2025, 4222, 4237, 4115, 2734, 3215, 971, 1348, 4840, 4857,
        4563, 4950, 4558, 5063, 5028, 980, 1541, 612, 628, 1518, 1552, 2870, 3787, 2850, 3759,
        3766, 3732, 5927, 5695, 2070, 2, 4264, 6167, 6238, 6357, 6508, 5518, 5976, 5852, 5678,
        5682, 5522, 6543, 6183, 6512, 5515, 5980,
    ],
    [
        8159, 7872, 7433, 824, 1902, 1830, 812, 2195, 969, 4386, 3053, 3076, 4034, 3065, 6706,
        7145, 7432, 269, 296, 1915, 2041, 2025, 4222, 4237, 4115, 2537, 3214, 971, 979, 4839, 4841,
        1141, 2075, 1147, 4269, 2311, 1580, 1961, 616, 1530, 1520, 1553, 2868, 2893, 4161, 3831,
        3768, 2836, 6660, 5631, 6043, 5525, 2594, 6136, 6696, 6357, 6508, 5518, 6004, 5862, 6660,
        5736, 5526, 6540, 6690, 6512, 5515, 5980,
    ],
    [
        8159, 7900, 7433, 820, 1902, 835, 812, 2194, 969, 4385, 3932, 3076, 4034, 3065, 7416, 6712,
        7432, 1948, 1029, 1692, 2024, 2064, 4256, 2676, 4260, 2722, 3213, 1386, 1347, 4628, 4728,
        1172, 2086, 2186, 1175, 1176, 1544, 1966, 1041, 616, 682, 690, 3131, 3539, 2889, 2812,
        3596, 3545, 457, 5629, 5742, 5737, 5763, 6301, 2426, 6413, 5528, 5932, 6003, 5972, 172,
        5954, 5979, 5979, 6699, 6005, 6005, 5956,
    ],
];

/// The mean fitted yaw (degrees, unsigned) of each [`ANNOTATED_68_BY_YAW`] table's calibration
/// photos, printed with the tables by `ganfit eval embedding --annotated`.
pub const ANNOTATED_68_YAWS: [f32; 3] = [13.7, 46.2, 69.5];

/// The tables a face turned by `yaw_degrees` (either sign) reports from, with their weights
/// (summing to 1): a table alone at or beyond its calibration yaw (`table_yaws`, rising, as
/// [`ANNOTATED_68_YAWS`]), the two around it by linear interpolation in between. Switching
/// tables at the bins' edges would make the reported 68 jump as a face turns through 30° or
/// 60°; interpolating also lowered the judged photos' NME a little (README, "The reported
/// 68").
pub fn annotated_table_weights(yaw_degrees: f32, table_yaws: &[f32; 3]) -> [(usize, f32); 2] {
    let yaw = yaw_degrees.abs();
    if !(yaw > table_yaws[0]) {
        // Also a NaN yaw: the frontal table.
        return [(0, 1.0), (0, 0.0)];
    }
    for k in 1..table_yaws.len() {
        if yaw < table_yaws[k] {
            let t = (yaw - table_yaws[k - 1]) / (table_yaws[k] - table_yaws[k - 1]);
            return [(k - 1, 1.0 - t), (k, t)];
        }
    }
    let last = table_yaws.len() - 1;
    [(last, 1.0), (last, 0.0)]
}

/// What a detector's jaw landmarks (0–16) mark, which decides where the model's jaw points go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum JawConvention {
    /// The visible outline of the face, as 2D detectors trained on 300-W mark it (face-api's
    /// 68-point network): the model's jaw points slide along the contour lines to the
    /// silhouette ([`pick_contour`]).
    Contour,
    /// Fixed points on the face's surface, hidden ones included, projected where they are: the
    /// face mesh's 468 points are a 3D surface, so its 68 are too, and so are AFLW2000-3D's
    /// annotations (at 80° of yaw their far-side jaw lies inside the face, well away from the
    /// silhouette). The model's jaw points are its fixed Multi-PIE vertices.
    Surface,
}

/// The jaw (0–16) as fixed surface points ([`JawConvention::Surface`]), calibrated against
/// the face mesh by `ganfit eval embedding --count 400 --max-yaw 60 --radius 10` (seed 7; see
/// [`crate::eval::embedding`]) on the revision-2 model (ICT's jaw): mean distance to the
/// detected jaw on held-out synthetic views 6.30 % → 4.30 % of the face size. ICT's own jaw
/// vertices, on the frontal outline, stay the first candidates of the contour lines.
pub const SURFACE_JAW: [u32; 17] = [
    1223, 1242, 441, 1897, 1457, 763, 242, 801, 966, 3042, 2483, 3004, 2987, 4097, 2682, 3460, 3441,
];

/// Landmark vertex indices (ICT vertex numbering) as stored in the model file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LandmarkData {
    /// Multi-PIE 68 points, in order, calibrated against the face mesh ([`SURFACE_JAW`],
    /// [`CALIBRATED_INNER`]).
    pub multipie68: Vec<u32>,
    /// ICT's jawline vertices standing in for landmarks 0–7 ...
    pub jawline_right: Vec<u32>,
    /// ... and for landmarks 9–16.
    pub jawline_left: Vec<u32>,
    /// The extended jawlines (17 each, supersets of the above), ear to chin and chin to ear.
    pub jawline_right_extended: Vec<u32>,
    pub jawline_left_extended: Vec<u32>,
    /// Contour candidates of each jaw landmark, from ICT's Multi-PIE vertex inwards (see the
    /// module docs).
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
                return Err(format!(
                    "{what} list has {} entries, expected {len}",
                    list.len()
                ));
            }
            if let Some(&i) = list.iter().find(|&&i| i >= num_vertices) {
                return Err(format!(
                    "{what} vertex {i} out of range ({num_vertices} vertices)"
                ));
            }
        }
        if self.contour.len() != JAW || self.contour.iter().any(|c| c.is_empty()) {
            return Err(format!(
                "contour landmark lists: {} lists, expected {JAW} non-empty ones",
                self.contour.len()
            ));
        }
        if let Some(&i) = self.contour.iter().flatten().find(|&&i| i >= num_vertices) {
            return Err(format!(
                "contour landmark vertex {i} out of range ({num_vertices} vertices)"
            ));
        }
        Ok(())
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
pub fn build_contour(
    positions: &[[f64; 3]],
    triangles: &[[u32; 3]],
    data: &LandmarkData,
) -> Result<Vec<Vec<u32>>, String> {
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
        let anchor_vertex = data.multipie68[k];
        let sign = side(k) as f64;
        if sign == 0.0 {
            contour.push(vec![anchor_vertex]);
            continue;
        }
        let anchor = positions[anchor_vertex as usize];
        if sign * anchor[0] <= 0.0 {
            return Err(format!(
                "jaw landmark {k} (vertex {anchor_vertex}) is on the wrong side of the midline"
            ));
        }
        let towards_nose = sub(nose, anchor);
        let forwards = unit([towards_nose[0], 0.0, towards_nose[2]])
            .ok_or_else(|| format!("jaw landmark {k} lies above or below the nose tip"))?;
        let inner_limit = CONTOUR_INNER_FRACTION * anchor[0].abs();
        let in_slab = |v: usize| {
            let p = positions[v];
            (p[1] - anchor[1]).abs() <= CONTOUR_SLAB_MM
                && dot(sub(p, anchor), forwards) >= 0.0
                && sign * p[0] >= inner_limit
        };
        // Only slab vertices connected to the anchor through the slab: a fold of the surface
        // that enters the slab elsewhere (an eyelid, a lip) is another sheet.
        let mut best: Vec<Option<(f64, u32)>> = Vec::new();
        let mut seen = vec![false; n];
        let mut queue = VecDeque::from([anchor_vertex as usize]);
        seen[anchor_vertex as usize] = true;
        while let Some(v) = queue.pop_front() {
            let d = sub(positions[v], anchor);
            let bin = (dot(d, forwards) / CONTOUR_STEP_MM).round() as usize;
            let off_line = d[1].abs();
            if bin >= best.len() {
                best.resize(bin + 1, None);
            }
            if v != anchor_vertex as usize && bin > 0 && best[bin].is_none_or(|(o, _)| off_line < o)
            {
                best[bin] = Some((off_line, v as u32));
            }
            for &w in &neighbours[v] {
                if !seen[w] && in_slab(w) {
                    seen[w] = true;
                    queue.push_back(w);
                }
            }
        }
        let line: Vec<u32> = std::iter::once(anchor_vertex)
            .chain(best.iter().flatten().map(|&(_, v)| v))
            .collect();
        if line.len() < 3 {
            return Err(format!(
                "jaw landmark {k}: only {} contour candidates found across the cheek",
                line.len()
            ));
        }
        contour.push(line);
    }
    Ok(contour)
}

/// Image coordinates (up to the focal length) of a camera-space point: the camera sits at the
/// origin looking down −z, as in [`crate::render::camera`].
fn image(p: [f32; 3]) -> [f32; 2] {
    [p[0] / -p[2], p[1] / -p[2]]
}

/// The contour rule on plain data: for each jaw landmark the candidate vertex to use, given
/// camera-space positions of the shape vertices and the head's rotation (camera from model,
/// `rotation[r][c]`, as [`crate::render::camera::euler_rotation`] makes it).
pub fn pick_contour(
    contour: &[Vec<u32>],
    camera_points: &[[f32; 3]],
    rotation: &[[f32; 3]; 3],
) -> Vec<u32> {
    contour
        .iter()
        .enumerate()
        .map(|(k, line)| {
            let sideways = [0, 1, 2].map(|r| side(k) * rotation[r][0] * OUTWARD_PROBE_MM);
            let anchor = camera_points[line[0] as usize];
            let (a, b) = (
                image(anchor),
                image([
                    anchor[0] + sideways[0],
                    anchor[1] + sideways[1],
                    anchor[2] + sideways[2],
                ]),
            );
            let outward = [b[0] - a[0], b[1] - a[1]];
            let score = |v: u32| {
                let q = image(camera_points[v as usize]);
                q[0] * outward[0] + q[1] * outward[1]
            };
            // The first of equal scores, as argmax on a device takes it.
            line.iter()
                .copied()
                .fold((line[0], f32::NEG_INFINITY), |(best, top), v| {
                    if score(v) > top {
                        (v, score(v))
                    } else {
                        (best, top)
                    }
                })
                .0
        })
        .collect()
}

/// The contour lists on a device, padded to one length with each list's last candidate (a
/// repeat never outscores the original).
#[derive(Debug, Clone)]
pub struct JawContour {
    lists: Vec<Vec<u32>>,
    width: usize,
    padded: Tensor<1, Int>,
    /// Each line's side, times the probe length: `[17]`.
    sides: Tensor<1>,
}

impl JawContour {
    /// `lists` in shape-vertex numbering, one per jaw landmark.
    pub fn new(lists: Vec<Vec<u32>>, device: &Device) -> Self {
        let width = lists.iter().map(Vec::len).max().unwrap_or(1);
        let padded: Vec<i32> = lists
            .iter()
            .flat_map(|l| {
                (0..width)
                    .map(move |j| *l.get(j).unwrap_or_else(|| l.last().expect("non-empty")) as i32)
            })
            .collect();
        let m = lists.len();
        let sides: Vec<f32> = (0..m).map(|k| side(k) * OUTWARD_PROBE_MM).collect();
        Self {
            padded: Tensor::from_data(TensorData::new(padded, [m * width]), device),
            sides: Tensor::from_data(TensorData::new(sides, [m]), device),
            lists,
            width,
        }
    }

    /// Candidate shape vertices of each jaw landmark, from its frontal vertex inwards.
    pub fn lists(&self) -> &[Vec<u32>] {
        &self.lists
    }

    /// The picked contour points `[B, 17, 3]` (camera space) from camera-space points
    /// `[B, Vs, 3]` and rotations `[B, 3, 3]` (camera from model), by the rule of
    /// [`pick_contour`]. Differentiable with respect to the points (the choice itself is
    /// piecewise constant).
    pub fn pick(&self, camera_points: Tensor<3>, rotation: Tensor<3>) -> Tensor<3> {
        let [b, _, _] = camera_points.dims();
        let (m, w) = (self.lists.len(), self.width);
        let image = |p: Tensor<4>| {
            let [b, m, w, _] = p.dims();
            let depth = p.clone().slice([0..b, 0..m, 0..w, 2..3]).neg();
            p.slice([0..b, 0..m, 0..w, 0..2]) / depth
        };
        let points = camera_points
            .select(1, self.padded.clone())
            .reshape([b, m, w, 3]);
        let anchors = points.clone().slice([0..b, 0..m, 0..1, 0..3]);
        let sideways = rotation.slice([0..b, 0..3, 0..1]).reshape([b, 1, 1, 3])
            * self.sides.clone().reshape([1, m, 1, 1]);
        let outward = image(anchors.clone() + sideways) - image(anchors);
        let score = (image(points.clone()) * outward)
            .sum_dim(3)
            .reshape([b, m, w]);
        let choice = score.argmax(2).reshape([b, m, 1, 1]).expand([b, m, 1, 3]);
        points.gather(2, choice).reshape([b, m, 3])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::rotation::rotate;

    /// A half cylinder of radius 50 around the y axis, facing +z, as a grid: columns run
    /// around the axis (angle from -90° at x = -50 to +90°), rows along y.
    fn half_cylinder() -> (Vec<[f64; 3]>, Vec<[u32; 3]>, usize) {
        let (cols, rows) = (73, 5);
        let mut positions = Vec::new();
        for r in 0..rows {
            for c in 0..cols {
                let a = -std::f64::consts::FRAC_PI_2
                    + std::f64::consts::PI * c as f64 / (cols - 1) as f64;
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

    /// Rotation about y by `yaw` (nose towards +x for positive yaw), row-major.
    fn yaw_rotation(yaw: f32) -> [[f32; 3]; 3] {
        let (s, c) = yaw.sin_cos();
        [[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]]
    }

    /// Landmarks on the half cylinder: the jaw at its edges (x = ∓50) on row 2, the rest (the
    /// "nose" among them) straight ahead.
    fn cylinder_landmarks(cols: usize) -> LandmarkData {
        let right_edge = 2 * cols as u32;
        let left_edge = right_edge + cols as u32 - 1;
        let front = right_edge + cols as u32 / 2;
        LandmarkData {
            multipie68: (0..68)
                .map(|k| {
                    if k < CHIN {
                        right_edge
                    } else if (CHIN + 1..JAW).contains(&k) {
                        left_edge
                    } else {
                        front
                    }
                })
                .collect(),
            jawline_right: vec![right_edge; 8],
            jawline_left: vec![left_edge; 8],
            jawline_right_extended: vec![right_edge; 17],
            jawline_left_extended: vec![left_edge; 17],
            contour: vec![],
        }
    }

    #[test]
    fn contour_lines_cross_the_cheek_and_the_pick_is_the_silhouette() {
        let (positions, triangles, cols) = half_cylinder();
        let data = cylinder_landmarks(cols);
        let front = data.multipie68[CHIN];
        let contour = build_contour(&positions, &triangles, &data).unwrap();
        assert_eq!(contour[CHIN], vec![front]);
        for k in [0, 16] {
            let line = &contour[k];
            assert_eq!(line[0], data.multipie68[k]);
            assert!(line.len() >= 20, "{} candidates", line.len());
            // On row 2 (the anchor's height), moving forwards, stopping at |x| = 0.4 · 50.
            assert!(line.iter().all(|&v| v as usize / cols == 2));
            let depth: Vec<f64> = line.iter().map(|&v| positions[v as usize][2]).collect();
            assert!(
                depth.windows(2).all(|w| w[1] > w[0]),
                "not ordered inwards: {depth:?}"
            );
            assert!(line.iter().all(|&v| positions[v as usize][0].abs() >= 20.0));
        }
        let distance = 300.0;
        for yaw in [0.0f32, 0.5, -0.5] {
            let rotation = yaw_rotation(yaw);
            let camera: Vec<[f32; 3]> = positions
                .iter()
                .map(|p| rotate(&rotation, p.map(|c| c as f32)))
                .map(|p| [p[0], p[1], p[2] - distance])
                .collect();
            let picks = pick_contour(&contour, &camera, &rotation);
            for (k, &pick) in picks.iter().enumerate().filter(|(k, _)| *k != CHIN) {
                // On the side turned towards the camera the silhouette lies behind the line's
                // first vertex, which stays.
                if side(k) * yaw < 0.0 {
                    assert_eq!(
                        pick, contour[k][0],
                        "yaw {yaw}: facing jaw point {k} moved off its frontal vertex"
                    );
                    continue;
                }
                // Elsewhere (frontal too: seen in perspective, the outline lies a little in front
                // of the widest point) the pick is the silhouette of the cylinder: its normal is
                // perpendicular to the ray to the eye, within the candidates' spacing.
                let p = positions[pick as usize];
                let normal = rotate(&rotation, [p[0] as f32 / 50.0, 0.0, p[2] as f32 / 50.0]);
                let q = camera[pick as usize];
                let to_eye = [-q[0], -q[1], -q[2]];
                let cosine =
                    (normal[0] * to_eye[0] + normal[1] * to_eye[1] + normal[2] * to_eye[2])
                        / (to_eye.iter().map(|x| x * x).sum::<f32>()).sqrt();
                assert!(
                    cosine.abs() < 0.1,
                    "yaw {yaw}: jaw point {k} picked vertex {pick} with n·v {cosine}"
                );
            }
        }
    }

    #[test]
    fn device_pick_matches_the_plain_rule() {
        let device = crate::device::cpu();
        let (positions, triangles, cols) = half_cylinder();
        // Lines of different lengths exercise the padding.
        let mut lists = build_contour(&positions, &triangles, &cylinder_landmarks(cols)).unwrap();
        lists[3].truncate(5);
        let contour = JawContour::new(lists.clone(), &device);
        let n = positions.len();
        for (yaw, pitch) in [(0.6f32, 0.0f32), (-0.4, 0.2), (0.1, -0.3)] {
            let (sp, cp) = pitch.sin_cos();
            let pitch_rotation = [[1.0, 0.0, 0.0], [0.0, cp, -sp], [0.0, sp, cp]];
            let y = yaw_rotation(yaw);
            let rotation: [[f32; 3]; 3] = [0, 1, 2]
                .map(|r| [0, 1, 2].map(|c| (0..3).map(|i| pitch_rotation[r][i] * y[i][c]).sum()));
            let camera: Vec<[f32; 3]> = positions
                .iter()
                .map(|p| rotate(&rotation, p.map(|c| c as f32)))
                .map(|p| [p[0], p[1], p[2] - 250.0])
                .collect();
            let expected: Vec<[f32; 3]> = pick_contour(&lists, &camera, &rotation)
                .iter()
                .map(|&v| camera[v as usize])
                .collect();
            let pt = Tensor::<3>::from_data(
                TensorData::new(camera.as_flattened().to_vec(), [1, n, 3]),
                &device,
            );
            let rt = Tensor::<3>::from_data(
                TensorData::new(rotation.as_flattened().to_vec(), [1, 3, 3]),
                &device,
            );
            let picked = crate::device::read_floats_blocking(contour.pick(pt, rt))
                .unwrap()
                .0;
            assert_eq!(picked, expected.as_flattened(), "yaw {yaw}, pitch {pitch}");
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

    #[test]
    fn table_weights_interpolate_between_calibration_yaws_and_clamp_outside() {
        let yaws = [10.0, 40.0, 70.0];
        assert_eq!(annotated_table_weights(5.0, &yaws), [(0, 1.0), (0, 0.0)]);
        assert_eq!(annotated_table_weights(-10.0, &yaws), [(0, 1.0), (0, 0.0)]);
        assert_eq!(annotated_table_weights(25.0, &yaws), [(0, 0.5), (1, 0.5)]);
        assert_eq!(annotated_table_weights(-55.0, &yaws), [(1, 0.5), (2, 0.5)]);
        assert_eq!(annotated_table_weights(40.0, &yaws), [(1, 1.0), (2, 0.0)]);
        assert_eq!(annotated_table_weights(95.0, &yaws), [(2, 1.0), (2, 0.0)]);
        assert_eq!(
            annotated_table_weights(f32::NAN, &yaws),
            [(0, 1.0), (0, 0.0)]
        );
        // Continuous across a calibration yaw.
        let [(a, wa), (b, wb)] = annotated_table_weights(39.999, &yaws);
        assert_eq!((a, b), (0, 1));
        assert!(wa < 1e-3 && wb > 0.999);
    }
}
