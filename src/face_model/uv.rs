//! The texture layout a fit renders with: ICT's uv tiles packed side by side into one map.
//!
//! ICT lays out its materials on separate unit tiles along u (UDIM style): the face on
//! [0, 1), the back of the head, the neck and the sockets on [1, 2), gums and tongue on
//! [2, 3), teeth on [3, 4); scleras and irises each use [0, 1) of textures of their own. The
//! renderer samples one map with coordinates in [0, 1], so the tiles of the selected regions'
//! materials become slots of one atlas, left to right in ICT order, each a square of the map's
//! height: s = (slot + u − tile) / slots, t = 1 − v (t = 0 at the map's first row). Left and
//! right eye materials share a slot (one sclera, one iris texture for both eyes).

/// One slot of the atlas.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AtlasSlot {
    /// The material (left/right eye materials merged, e.g. "M_Sclera").
    pub material: String,
    /// ICT's tile along u that the slot holds.
    pub tile: u32,
}

/// The selected materials' slots, left to right.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct UvAtlas {
    pub slots: Vec<AtlasSlot>,
}

/// The material name shared by the left and right copies ("M_IrisLeft" → "M_Iris").
fn slot_name(material: &str) -> &str {
    material
        .strip_suffix("Left")
        .or_else(|| material.strip_suffix("Right"))
        .unwrap_or(material)
}

impl UvAtlas {
    /// The slot of a material, added if new.
    pub fn slot_of(&mut self, material: &str, tile: u32) -> u32 {
        let name = slot_name(material);
        match self.slots.iter().position(|s| s.material == name) {
            Some(i) => i as u32,
            None => {
                self.slots.push(AtlasSlot {
                    material: name.to_string(),
                    tile,
                });
                self.slots.len() as u32 - 1
            }
        }
    }

    /// Width over height of a map holding every slot as a square.
    pub fn aspect(&self) -> usize {
        self.slots.len().max(1)
    }

    /// ICT (u, v) in `slot` → the renderer's (s, t).
    pub fn to_render(&self, slot: u32, uv: [f32; 2]) -> [f32; 2] {
        let tile = self.slots[slot as usize].tile as f32;
        let u = (uv[0] - tile).clamp(0.0, 1.0);
        [(slot as f32 + u) / self.aspect() as f32, 1.0 - uv[1]]
    }
}

/// Rasterizes per-vertex values over triangles in texture space: `[height * width]`, row 0 at
/// t = 0, each covered pixel (by its centre) the barycentric blend of its triangle's values,
/// uncovered pixels 0. Used for masks in uv space.
pub fn rasterize_uv(
    uvs: &[[f32; 2]],
    triangles: &[[u32; 3]],
    values: &[f32],
    width: usize,
    height: usize,
) -> Vec<f32> {
    let mut out = vec![0.0; width * height];
    for tri in triangles {
        let [a, b, c] = tri.map(|i| {
            let [s, t] = uvs[i as usize];
            [s * width as f32, t * height as f32]
        });
        let area = (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0]);
        if area.abs() < 1e-12 {
            continue;
        }
        let [va, vb, vc] = tri.map(|i| values[i as usize]);
        let x0 = a[0].min(b[0]).min(c[0]).floor().max(0.0) as usize;
        let x1 = (a[0].max(b[0]).max(c[0]).ceil() as usize).min(width);
        let y0 = a[1].min(b[1]).min(c[1]).floor().max(0.0) as usize;
        let y1 = (a[1].max(b[1]).max(c[1]).ceil() as usize).min(height);
        for y in y0..y1 {
            for x in x0..x1 {
                let p = [x as f32 + 0.5, y as f32 + 0.5];
                let edge = |q: [f32; 2], r: [f32; 2]| {
                    ((r[0] - q[0]) * (p[1] - q[1]) - (r[1] - q[1]) * (p[0] - q[0])) / area
                };
                let (wa, wb, wc) = (edge(b, c), edge(c, a), edge(a, b));
                if wa >= -1e-6 && wb >= -1e-6 && wc >= -1e-6 {
                    out[y * width + x] = wa * va + wb * vb + wc * vc;
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eye_materials_share_slots_and_tiles_pack_left_to_right() {
        let mut atlas = UvAtlas::default();
        assert_eq!(atlas.slot_of("M_Face", 0), 0);
        assert_eq!(atlas.slot_of("M_BackHead", 1), 1);
        assert_eq!(atlas.slot_of("M_ScleraLeft", 0), 2);
        assert_eq!(atlas.slot_of("M_ScleraRight", 0), 2);
        assert_eq!(atlas.aspect(), 3);
        assert_eq!(atlas.to_render(1, [1.5, 0.25]), [0.5, 0.75]);
        assert_eq!(atlas.to_render(0, [0.0, 1.0]), [0.0, 0.0]);
    }

    #[test]
    fn rasterized_triangle_covers_its_half_of_the_map() {
        // The lower-left half (below the diagonal from (0,0) to (1,1)) of an 8×8 map.
        let uvs = [[0.0, 0.0], [1.0, 1.0], [0.0, 1.0]];
        let img = rasterize_uv(&uvs, &[[0, 1, 2]], &[1.0, 1.0, 1.0], 8, 8);
        let covered = img.iter().filter(|&&v| v > 0.5).count();
        assert_eq!(covered, 36, "the diagonal's pixels count once");
        assert_eq!(img[7 * 8], 1.0, "row 7 (t near 1), column 0");
        assert_eq!(img[7], 0.0, "row 0, column 7");
        let ramp = rasterize_uv(&uvs, &[[0, 1, 2]], &[0.0, 1.0, 0.0], 8, 8);
        assert!(ramp[7 * 8 + 7] > 0.8 && ramp[8] < 0.3);
    }
}
