//! The fitted render composited over the original photo (the `overlay.png` of a fit).

use image::RgbImage;

use crate::nets::Affine;

/// `photo` with the render of its working crop (`render` RGB8 and `alpha` coverage, both
/// `size²`, crop pixel → photo pixel by `crop`) blended over it at `opacity`.
pub fn compose(
    photo: &RgbImage,
    crop: &Affine,
    render: &RgbImage,
    alpha: &[u8],
    opacity: f32,
) -> RgbImage {
    let mut out = photo.clone();
    let size = render.width() as usize;
    let Some(to_crop) = crop.inverse() else {
        return out;
    };
    let corners = [
        [0.0, 0.0],
        [size as f64, 0.0],
        [0.0, size as f64],
        [size as f64, size as f64],
    ]
    .map(|p| crop.apply(p));
    let lo = |k: usize| {
        corners
            .iter()
            .map(|p| p[k])
            .fold(f64::INFINITY, f64::min)
            .floor()
            .max(0.0) as u32
    };
    let hi = |k: usize, n: u32| {
        (corners
            .iter()
            .map(|p| p[k])
            .fold(f64::NEG_INFINITY, f64::max)
            .ceil()
            .max(0.0) as u32)
            .min(n)
    };
    for y in lo(1)..hi(1, photo.height()) {
        for x in lo(0)..hi(0, photo.width()) {
            let q = to_crop.apply([x as f64 + 0.5, y as f64 + 0.5]);
            let (u, v) = (q[0].floor(), q[1].floor());
            if u < 0.0 || v < 0.0 || u >= size as f64 || v >= size as f64 {
                continue;
            }
            let (u, v) = (u as u32, v as u32);
            let a = alpha[v as usize * size + u as usize] as f32 / 255.0 * opacity;
            if a <= 0.0 {
                continue;
            }
            let r = render.get_pixel(u, v);
            let p = out.get_pixel_mut(x, y);
            for k in 0..3 {
                p[k] = (p[k] as f32 * (1.0 - a) + r[k] as f32 * a).round() as u8;
            }
        }
    }
    out
}

/// The render's face area (`face_mask`, `size²`, fractional at its border) as an overlay alpha
/// (0-255) that fades out over a few pixels inside the border: drawn over the photo, the fit
/// shows where it explains the photo and leaves hair, ears and clothes to the photo.
pub fn faded_alpha(face_mask: &[f32], size: usize) -> Vec<u8> {
    let radius = (size / 48).max(1);
    // Two passes of a separable box blur (a tent), clamped at the borders.
    if face_mask.len() != size * size {
        return face_mask
            .iter()
            .map(|&m| (m.clamp(0.0, 1.0) * 255.0) as u8)
            .collect();
    }
    let mut soft: Vec<[f32; 1]> = face_mask.iter().map(|&m| [m]).collect();
    for _ in 0..2 {
        crate::fit::unwrap::box_blur(&mut soft, size, size, radius);
    }
    face_mask
        .iter()
        .zip(&soft)
        .map(|(&m, s)| (m.min(s[0]).clamp(0.0, 1.0) * 255.0).round() as u8)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_overlay_alpha_is_the_face_area_faded_inside_its_border() {
        let size = 96;
        // A face area: the centre 48×48 square.
        let mask: Vec<f32> = (0..size * size)
            .map(|i| {
                let (x, y) = (i % size, i / size);
                if (24..72).contains(&x) && (24..72).contains(&y) {
                    1.0
                } else {
                    0.0
                }
            })
            .collect();
        let alpha = faded_alpha(&mask, size);
        let at = |x: usize, y: usize| alpha[y * size + x];
        assert_eq!(at(10, 48), 0, "outside the face area");
        assert_eq!(at(48, 48), 255, "deep inside");
        let edge = at(24, 48);
        assert!(edge > 0 && edge < 200, "at the border: {edge}");
        assert!(at(25, 48) <= at(26, 48) && at(26, 48) <= at(28, 48));
    }
}
