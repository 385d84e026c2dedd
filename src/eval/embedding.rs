//! Calibrating where the 68 landmarks sit on the face model, so that the model's landmarks mean
//! what the detector's mean.
//!
//! ICT-FaceKit lists Multi-PIE's 68 points as vertices, placed by hand. A detector follows its
//! training annotations instead (where exactly an eyebrow's end or the nose's wing is), and
//! the fit pays for any difference twice: stage 1 bends shape and expression to make the two
//! agree, and the shape is then wrong by that much (`eval synthetic`). FLAME's landmark
//! embedding was calibrated for the same reason, against scans.
//!
//! Here the ground truth comes from the model itself: synthetic faces with known shape and
//! camera ([`super::synthetic`]) are rendered, the detector marks them, and for each landmark
//! the vertex near the listed one whose projection lies closest to the detected point, on
//! average over the views, takes its place. No photo is involved, so the result depends only
//! on the model, the texture model and the detector. The inner points (17–67: brows, nose,
//! eyes, mouth) are calibrated within the narrow face area; the jaw (0–16) within the whole
//! face region, for the face mesh's jaw, which marks fixed surface points
//! ([`crate::face_model::JawConvention::Surface`]). A 2D detector's jaw slides along contour
//! lines instead (see [`crate::face_model::landmarks`]), which keep ICT's own jaw vertices.

/// One synthetic view: the 68 points the detector found, and every shape vertex's projection.
#[derive(Debug, Clone)]
pub struct EmbeddingView {
    pub detected: Vec<[f32; 2]>,
    pub vertices: Vec<[f32; 2]>,
}

/// The calibration of one landmark.
#[derive(Debug, Clone, Copy)]
pub struct Calibrated {
    /// Multi-PIE index.
    pub landmark: usize,
    /// Shape vertex before and after.
    pub listed: u32,
    pub chosen: u32,
    /// Mean distance to the detected point over the views, relative to the detected points'
    /// box size `sqrt(w·h)` (as NME), before and after.
    pub error_listed: f64,
    pub error_chosen: f64,
    /// How far the chosen vertex lies from the listed one on the mean face, mm.
    pub moved_mm: f64,
}

/// The inner landmarks (brows, nose, eyes, mouth) ...
pub const INNER: std::ops::Range<usize> = 17..68;
/// ... and the jaw.
pub const JAW: std::ops::Range<usize> = 0..17;

/// For each landmark in `landmarks`, the vertex within `radius_mm` (on the mean face, among
/// `allowed` vertices) of the listed one whose projections are closest to the detected points
/// over `views`. `None` when there are no views or the inputs disagree in size.
pub fn calibrate(
    views: &[EmbeddingView],
    mean: &[[f32; 3]],
    listed: &[u32],
    allowed: &[bool],
    radius_mm: f64,
    landmarks: std::ops::Range<usize>,
) -> Option<Vec<Calibrated>> {
    if views.is_empty()
        || landmarks.end > 68
        || listed.len() != 68
        || allowed.len() != mean.len()
        || views
            .iter()
            .any(|v| v.detected.len() != 68 || v.vertices.len() != mean.len())
    {
        return None;
    }
    let sizes: Vec<f64> = views
        .iter()
        .map(|v| super::landmarks::box_size(&v.detected).max(1e-9))
        .collect();
    let error = |k: usize, vertex: usize| {
        views
            .iter()
            .zip(&sizes)
            .map(|(v, size)| {
                let (p, t) = (v.vertices[vertex], v.detected[k]);
                ((p[0] - t[0]) as f64).hypot((p[1] - t[1]) as f64) / size
            })
            .sum::<f64>()
            / views.len() as f64
    };
    let distance = |a: usize, b: usize| {
        (0..3)
            .map(|k| (mean[a][k] as f64 - mean[b][k] as f64).powi(2))
            .sum::<f64>()
            .sqrt()
    };
    let mut out = Vec::new();
    for k in landmarks {
        let listed_vertex = listed[k];
        let home = listed_vertex as usize;
        let (chosen, error_chosen) = (0..mean.len())
            .filter(|&v| allowed[v] && distance(v, home) <= radius_mm)
            .map(|v| (v, error(k, v)))
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .unwrap_or((home, error(k, home)));
        out.push(Calibrated {
            landmark: k,
            listed: listed_vertex,
            chosen: chosen as u32,
            error_listed: error(k, home),
            error_chosen,
            moved_mm: distance(chosen, home),
        });
    }
    Some(out)
}

/// A face mesh point's place on the model ([`correspond`]).
#[derive(Debug, Clone, Copy)]
pub struct MeshVertex {
    /// The shape vertex chosen for the point.
    pub vertex: u32,
    /// Mean distance of its projections to the detected point over the views, relative to
    /// the detected points' box size `sqrt(w·h)`.
    pub error: f64,
}

/// For each detected point of the views (the face mesh's 468), the vertex among `allowed`
/// whose projections lie closest to it on average over `views`: the dense counterpart of
/// [`calibrate`], with no listed vertex to start from (the mesh's points have no names on the
/// model), so every allowed vertex competes. Views turned either way tell a hidden vertex
/// that happens to project near a point from the surface point itself. `None` when there are
/// no views, no allowed vertex, or the inputs disagree in size.
pub fn correspond(views: &[EmbeddingView], allowed: &[bool]) -> Option<Vec<MeshVertex>> {
    let points = views.first()?.detected.len();
    let candidates: Vec<usize> = (0..allowed.len()).filter(|&v| allowed[v]).collect();
    if points == 0
        || candidates.is_empty()
        || views
            .iter()
            .any(|v| v.detected.len() != points || v.vertices.len() != allowed.len())
    {
        return None;
    }
    // Summed over the views: [point][candidate].
    let mut error = vec![0f64; points * candidates.len()];
    for view in views {
        let size = super::landmarks::box_size(&view.detected).max(1e-9);
        for (k, t) in view.detected.iter().enumerate() {
            let row = &mut error[k * candidates.len()..(k + 1) * candidates.len()];
            for (sum, &v) in row.iter_mut().zip(&candidates) {
                let p = view.vertices[v];
                *sum += ((p[0] - t[0]) as f64).hypot((p[1] - t[1]) as f64) / size;
            }
        }
    }
    Some(
        error
            .chunks(candidates.len())
            .map(|row| {
                let (best, sum) = row
                    .iter()
                    .enumerate()
                    .min_by(|a, b| a.1.total_cmp(b.1))
                    .expect("candidates are not empty");
                MeshVertex {
                    vertex: candidates[best] as u32,
                    error: sum / views.len() as f64,
                }
            })
            .collect(),
    )
}

/// Mean distance over `views` and points between each detected point and its `vertices`'
/// projection, relative to the detected points' box size (the held-out check of
/// [`correspond`]). `None` without views or when the sizes disagree.
pub fn correspondence_error(views: &[EmbeddingView], vertices: &[u32]) -> Option<f64> {
    if views.is_empty()
        || views.iter().any(|v| {
            v.detected.len() != vertices.len()
                || vertices.iter().any(|&i| i as usize >= v.vertices.len())
        })
    {
        return None;
    }
    let total: f64 = views
        .iter()
        .map(|view| {
            let size = super::landmarks::box_size(&view.detected).max(1e-9);
            view.detected
                .iter()
                .zip(vertices)
                .map(|(t, &i)| {
                    let p = view.vertices[i as usize];
                    ((p[0] - t[0]) as f64).hypot((p[1] - t[1]) as f64) / size
                })
                .sum::<f64>()
        })
        .sum();
    Some(total / (views.len() * vertices.len()) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn correspond_finds_the_vertex_under_each_point_and_skips_disallowed_ones() {
        // Four vertices; two detected points, each where one vertex projects in every view.
        let views: Vec<EmbeddingView> = (0..4)
            .map(|i| {
                let s = i as f32;
                let vertices = vec![[s, 0.0], [s + 5.0, 1.0], [s + 10.0, 2.0], [s + 5.2, 1.0]];
                EmbeddingView {
                    detected: vec![vertices[2], vertices[1]],
                    vertices,
                }
            })
            .collect();
        let chosen = correspond(&views, &[true; 4]).unwrap();
        assert_eq!(chosen.iter().map(|c| c.vertex).collect::<Vec<_>>(), [2, 1]);
        assert!(chosen.iter().all(|c| c.error == 0.0));
        assert_eq!(correspondence_error(&views, &[2, 1]), Some(0.0));
        // Vertex 1 not allowed: its neighbour 0.2 away stands in, with that error.
        let chosen = correspond(&views, &[true, false, true, true]).unwrap();
        assert_eq!(chosen[1].vertex, 3);
        assert!(chosen[1].error > 0.0);
        assert!(correspondence_error(&views, &[2, 3]).unwrap() > 0.0);
        // Disagreeing sizes and empty inputs are refused.
        assert!(correspond(&views, &[true; 3]).is_none());
        assert!(correspond(&[], &[true; 4]).is_none());
        assert!(correspond(&views, &[false; 4]).is_none());
        assert!(correspondence_error(&views, &[2]).is_none());
        assert!(correspondence_error(&views, &[2, 9]).is_none());
    }

    #[test]
    fn picks_the_vertex_that_lands_on_the_detected_point() {
        // Three vertices on a line; every view detects landmark k where vertex 2 projects.
        let mean = vec![[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [2.0, 0.0, 0.0]];
        let mut listed = vec![0u32; 68];
        listed[30] = 1;
        let views: Vec<EmbeddingView> = (0..3)
            .map(|i| {
                let shift = i as f32;
                let vertices = vec![
                    [10.0 + shift, 0.0],
                    [11.0 + shift, 0.0],
                    [12.0 + shift, 0.0],
                ];
                let mut detected: Vec<[f32; 2]> = (0..68).map(|j| [j as f32, j as f32]).collect();
                detected[30] = vertices[2];
                EmbeddingView { detected, vertices }
            })
            .collect();
        let out = calibrate(&views, &mean, &listed, &[true; 3], 5.0, INNER).unwrap();
        assert_eq!(out.len(), INNER.len());
        let nose = out.iter().find(|c| c.landmark == 30).unwrap();
        assert_eq!((nose.listed, nose.chosen), (1, 2));
        assert_eq!(nose.error_chosen, 0.0);
        assert!(nose.error_listed > 0.0 && (nose.moved_mm - 1.0).abs() < 1e-9);
        // Out of reach: a radius below the spacing keeps the listed vertex.
        let out = calibrate(&views, &mean, &listed, &[true; 3], 0.5, INNER).unwrap();
        let nose = out.iter().find(|c| c.landmark == 30).unwrap();
        assert_eq!(nose.chosen, 1);
    }
}
