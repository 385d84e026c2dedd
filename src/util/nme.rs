//! Normalised mean error of 2D landmarks (NME, as AFLW2000-3D benchmarks define it): the
//! evaluation's measure (`eval::landmarks` re-exports it) and the fit's check that it follows
//! its own landmarks. Also the benchmarks' yaw bins, which the fit's reported landmarks
//! (`face_model::landmarks::ANNOTATED_68_BY_YAW`) are calibrated by.

/// Upper bounds (inclusive) of the yaw bins; the last bin takes everything above 60°.
pub const YAW_BINS: [(&str, f64); 3] = [("0-30", 30.0), ("30-60", 60.0), ("60-90", f64::INFINITY)];

/// The index in [`YAW_BINS`] of a yaw angle (degrees, either sign).
pub fn yaw_bin(yaw_degrees: f64) -> usize {
    let yaw = yaw_degrees.abs();
    YAW_BINS
        .iter()
        .position(|&(_, hi)| yaw <= hi)
        .unwrap_or(YAW_BINS.len() - 1)
}

/// NME of one image: mean point distance / sqrt(w * h) of the ground truth's bounding box.
/// `None` when the ground truth is degenerate or the point counts differ.
pub fn nme(predicted: &[[f32; 2]], truth: &[[f32; 2]]) -> Option<f64> {
    part_nme(predicted, truth, 0..truth.len())
}

/// The NME of a part of the face (`points`, e.g. the jaw `0..17`), still divided by the whole
/// ground truth's box size so that parts add up to the whole by their point counts.
pub fn part_nme(
    predicted: &[[f32; 2]],
    truth: &[[f32; 2]],
    points: std::ops::Range<usize>,
) -> Option<f64> {
    if predicted.len() != truth.len() || points.is_empty() || points.end > truth.len() {
        return None;
    }
    let size = box_size(truth);
    if !(size > 0.0 && size.is_finite()) {
        return None;
    }
    let total: f64 = points
        .clone()
        .map(|i| {
            let (p, t) = (predicted[i], truth[i]);
            ((p[0] as f64 - t[0] as f64).powi(2) + (p[1] as f64 - t[1] as f64).powi(2)).sqrt()
        })
        .sum();
    Some(total / points.len() as f64 / size)
}

/// The NME normaliser: `sqrt(w * h)` of the points' bounding box (NaN for no points).
pub fn box_size(points: &[[f32; 2]]) -> f64 {
    let (mut lo, mut hi) = ([f64::INFINITY; 2], [f64::NEG_INFINITY; 2]);
    for p in points {
        for k in 0..2 {
            lo[k] = lo[k].min(p[k] as f64);
            hi[k] = hi[k].max(p[k] as f64);
        }
    }
    ((hi[0] - lo[0]) * (hi[1] - lo[1])).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nme_divides_by_the_box_size() {
        // A 30×120 box (size 60); every point 3 px off: NME 0.05.
        let truth = [[0.0, 0.0], [30.0, 120.0], [10.0, 50.0]];
        let predicted = truth.map(|[x, y]| [x + 3.0, y]);
        assert!((nme(&predicted, &truth).unwrap() - 0.05).abs() < 1e-12);
        assert_eq!(nme(&predicted, &truth[..2]), None);
        assert_eq!(nme(&[[0.0, 0.0]; 3], &[[1.0, 1.0]; 3]), None);
        // The last point alone: 3 px off, still over the whole box.
        assert!((part_nme(&predicted, &truth, 2..3).unwrap() - 0.05).abs() < 1e-12);
        assert_eq!(part_nme(&predicted, &truth, 2..4), None);
    }
}
