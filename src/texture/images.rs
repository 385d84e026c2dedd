//! Between NCHW tensors in [-1, 1] and RGB images on disk.

use std::path::Path;

use burn::tensor::Tensor;
use image::RgbImage;

use crate::error::{Error, Result};

/// One RGB8 image per batch entry of an NCHW tensor in [-1, 1].
pub fn to_images(images: Tensor<4>) -> Result<Vec<RgbImage>> {
    let [b, c, h, w] = images.dims();
    if c != 3 {
        return Err(Error::Invalid(format!("expected 3 channels, got {c}")));
    }
    let (values, _) = crate::device::read_floats_blocking(images)?;
    let to_u8 = |v: f32| (((v + 1.0) * 127.5).round().clamp(0.0, 255.0)) as u8;
    Ok((0..b)
        .map(|i| {
            RgbImage::from_fn(w as u32, h as u32, |x, y| {
                let at = |ch: usize| values[((i * 3 + ch) * h + y as usize) * w + x as usize];
                image::Rgb([to_u8(at(0)), to_u8(at(1)), to_u8(at(2))])
            })
        })
        .collect())
}

/// Tiles images into a grid `columns` wide.
pub fn grid(images: &[RgbImage], columns: usize) -> RgbImage {
    let (w, h) = images.first().map_or((1, 1), |i| i.dimensions());
    let rows = images.len().div_ceil(columns.max(1)).max(1);
    let mut out = RgbImage::new(w * columns as u32, h * rows as u32);
    for (n, img) in images.iter().enumerate() {
        let (x, y) = ((n % columns) as u32 * w, (n / columns) as u32 * h);
        image::imageops::overlay(&mut out, img, x as i64, y as i64);
    }
    out
}

/// Saves a grid of the batch; tiles narrower than 128 pixels (early growth levels) are
/// enlarged by an integer factor, nearest neighbour, so that the grid can be looked at.
pub fn save_grid(images: Tensor<4>, columns: usize, path: &Path) -> Result<()> {
    let mut tiles = to_images(images)?;
    let width = tiles.first().map_or(128, |t| t.width());
    let factor = (128 / width.max(1)).max(1);
    if factor > 1 {
        let nearest = image::imageops::FilterType::Nearest;
        tiles = tiles
            .iter()
            .map(|t| image::imageops::resize(t, t.width() * factor, t.height() * factor, nearest))
            .collect();
    }
    grid(&tiles, columns)
        .save(path)
        .map_err(|e| Error::Image(format!("{}: {e}", path.display())))
}
