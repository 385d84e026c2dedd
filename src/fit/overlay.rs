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
