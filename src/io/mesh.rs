//! The mesh every exporter writes: shared positions, seam-split texture coordinates.

use image::ImageEncoder;

use crate::error::{Error, Result};

/// A textured triangle mesh whose vertices are split along texture seams.
///
/// Positions and normals belong to geometric vertices; texture coordinates to render
/// vertices, each naming its geometric vertex. Positions are millimetres (the crate's unit);
/// exporters write metres, the unit glTF prescribes and OBJ importers assume.
#[derive(Debug, Clone, PartialEq)]
pub struct MeshData {
    /// `[V]` positions, mm.
    pub positions: Vec<[f32; 3]>,
    /// `[V]` unit normals.
    pub normals: Vec<[f32; 3]>,
    /// `[Vr]` texture coordinates in the renderer's convention: s along the texture's width,
    /// t along its height with t = 0 at its first (top) row, as glTF has them.
    pub uvs: Vec<[f32; 2]>,
    /// `[Vr]` render vertex → geometric vertex.
    pub position_of: Vec<u32>,
    /// `[T]` triangles over render vertices, counter-clockwise seen from outside.
    pub triangles: Vec<[u32; 3]>,
}

/// Millimetres to metres.
pub const METRES_PER_MM: f32 = 1e-3;

impl MeshData {
    /// Lengths agree and every index is in range.
    pub fn check(&self) -> Result<()> {
        let (v, r) = (self.positions.len(), self.uvs.len());
        if self.normals.len() != v || self.position_of.len() != r {
            return Err(Error::Invalid(format!(
                "mesh: {v} positions, {} normals, {r} uvs, {} render vertex links",
                self.normals.len(),
                self.position_of.len()
            )));
        }
        if self.triangles.is_empty() {
            return Err(Error::Invalid("mesh: no triangles".into()));
        }
        if let Some(p) = self.position_of.iter().find(|&&p| p as usize >= v) {
            return Err(Error::Invalid(format!(
                "mesh: render vertex links to position {p} of {v}"
            )));
        }
        if let Some(i) = self.triangles.iter().flatten().find(|&&i| i as usize >= r) {
            return Err(Error::Invalid(format!(
                "mesh: triangle uses render vertex {i} of {r}"
            )));
        }
        Ok(())
    }

    /// Positions per render vertex, metres (the form glTF needs).
    pub fn render_positions_m(&self) -> Vec<[f32; 3]> {
        self.position_of
            .iter()
            .map(|&p| self.positions[p as usize].map(|c| c * METRES_PER_MM))
            .collect()
    }

    /// Normals per render vertex.
    pub fn render_normals(&self) -> Vec<[f32; 3]> {
        self.position_of
            .iter()
            .map(|&p| self.normals[p as usize])
            .collect()
    }
}

/// PNG bytes of an RGB image.
pub fn png_bytes(image: &image::RgbImage) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    image::codecs::png::PngEncoder::new(&mut out)
        .write_image(
            image.as_raw(),
            image.width(),
            image.height(),
            image::ExtendedColorType::Rgb8,
        )
        .map_err(|e| Error::Image(format!("PNG encoding: {e}")))?;
    Ok(out)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A unit square (10 mm) in the z = 0 plane facing +z, split along its diagonal seam: the
    /// two triangles' copies of the diagonal's vertices have different uvs.
    pub(crate) fn split_square() -> MeshData {
        MeshData {
            positions: vec![
                [0.0, 0.0, 0.0],
                [10.0, 0.0, 0.0],
                [10.0, 10.0, 0.0],
                [0.0, 10.0, 0.0],
            ],
            normals: vec![[0.0, 0.0, 1.0]; 4],
            uvs: vec![
                [0.0, 1.0],
                [1.0, 1.0],
                [1.0, 0.0],
                [0.0, 1.0],
                [0.5, 0.0],
                [0.0, 0.0],
            ],
            position_of: vec![0, 1, 2, 0, 2, 3],
            triangles: vec![[0, 1, 2], [3, 4, 5]],
        }
    }

    #[test]
    fn check_catches_bad_links() {
        let mut m = split_square();
        assert!(m.check().is_ok());
        m.position_of[2] = 9;
        assert!(m.check().is_err());
        let mut m = split_square();
        m.triangles[1][2] = 6;
        assert!(m.check().is_err());
    }

    #[test]
    fn png_round_trips() {
        let img =
            image::RgbImage::from_fn(3, 2, |x, y| image::Rgb([x as u8 * 80, y as u8 * 100, 7]));
        let bytes = png_bytes(&img).unwrap();
        let back = image::load_from_memory(&bytes).unwrap().to_rgb8();
        assert_eq!(back, img);
    }
}
