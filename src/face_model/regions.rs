//! The parts of the ICT head a fit can use, and the face area the pixel loss sees.
//!
//! ICT numbers its vertices and polygons region by region (its README's "Face Model Topology"
//! table), so each region is a contiguous vertex range and a contiguous polygon (here:
//! triangle) range. A region's polygons may use vertices of the Face region (the head, the mouth
//! socket and the eye sockets are stitched onto the face's border), never of another region.

use std::ops::Range;

use serde::{Deserialize, Serialize};

/// A region of the ICT head geometry, by the name ICT's README gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Region {
    Face,
    HeadAndNeck,
    MouthSocket,
    EyeSocketLeft,
    EyeSocketRight,
    GumsAndTongue,
    Teeth,
    EyeballLeft,
    EyeballRight,
}

impl Region {
    /// Every region the model file keeps, in ICT's vertex order.
    pub const ALL: [Region; 9] = [
        Region::Face,
        Region::HeadAndNeck,
        Region::MouthSocket,
        Region::EyeSocketLeft,
        Region::EyeSocketRight,
        Region::GumsAndTongue,
        Region::Teeth,
        Region::EyeballLeft,
        Region::EyeballRight,
    ];

    /// The geometry name in ICT's README table.
    pub fn ict_name(self) -> &'static str {
        match self {
            Region::Face => "Face",
            Region::HeadAndNeck => "Head and Neck",
            Region::MouthSocket => "Mouth socket",
            Region::EyeSocketLeft => "Eye socket left",
            Region::EyeSocketRight => "Eye socket right",
            Region::GumsAndTongue => "Gums and tongue",
            Region::Teeth => "Teeth",
            Region::EyeballLeft => "Eyeball left",
            Region::EyeballRight => "Eyeball right",
        }
    }

    pub fn from_ict_name(name: &str) -> Option<Region> {
        Region::ALL
            .into_iter()
            .find(|r| r.ict_name().eq_ignore_ascii_case(name))
    }
}

/// The face areas ICT defines inside the Face region ("Face Area Details").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum FaceArea {
    /// Forehead to chin and cheek to cheek, without ears, neck or the sides of the head: the
    /// skin a photo shows of a face. The pixel loss uses this one.
    #[default]
    Narrow,
    /// The whole Face region, ears and the front of the neck included.
    Full,
}

impl FaceArea {
    pub const ALL: [FaceArea; 2] = [FaceArea::Narrow, FaceArea::Full];

    pub fn ict_name(self) -> &'static str {
        match self {
            FaceArea::Narrow => "Narrow face area",
            FaceArea::Full => "Full face area",
        }
    }

    pub fn from_ict_name(name: &str) -> Option<FaceArea> {
        FaceArea::ALL
            .into_iter()
            .find(|a| a.ict_name().eq_ignore_ascii_case(name))
    }
}

/// Which regions a [`crate::face_model::FaceModel`] deforms and renders. The face and the
/// head and neck are always in; the default is just those (ICT vertices 0–11247).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RegionSelection {
    /// Eyeballs and the eye sockets around them: without the sockets the eyeballs sit behind
    /// holes in the face that show the background.
    pub eyes: bool,
    /// Mouth socket, gums, tongue and teeth: what an open mouth shows.
    pub mouth_interior: bool,
}

impl RegionSelection {
    pub fn all() -> Self {
        Self {
            eyes: true,
            mouth_interior: true,
        }
    }

    pub fn contains(&self, region: Region) -> bool {
        match region {
            Region::Face | Region::HeadAndNeck => true,
            Region::EyeSocketLeft
            | Region::EyeSocketRight
            | Region::EyeballLeft
            | Region::EyeballRight => self.eyes,
            Region::MouthSocket | Region::GumsAndTongue | Region::Teeth => self.mouth_interior,
        }
    }

    pub fn regions(&self) -> Vec<Region> {
        Region::ALL
            .into_iter()
            .filter(|r| self.contains(*r))
            .collect()
    }
}

/// Where a region lies in the model file: its vertices and its triangles, both half-open.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegionSpan {
    pub region: Region,
    pub vertices: Range<u32>,
    pub triangles: Range<u32>,
}

/// A face area's vertices (half-open range of ICT vertex indices).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaceAreaSpan {
    pub area: FaceArea,
    pub vertices: Range<u32>,
}

/// The selected vertices of a model, numbered contiguously in ICT order ("shape vertices"),
/// with the map back to ICT vertex indices.
#[derive(Debug, Clone, PartialEq)]
pub struct VertexSubset {
    /// Shape vertex → ICT vertex.
    pub ict_index: Vec<u32>,
    /// ICT vertex → shape vertex, `u32::MAX` where not selected.
    pub shape_index: Vec<u32>,
}

impl VertexSubset {
    pub fn new(ranges: &[Range<u32>], num_ict_vertices: usize) -> Self {
        let mut ict_index = Vec::new();
        let mut shape_index = vec![u32::MAX; num_ict_vertices];
        for range in ranges {
            for v in range.clone() {
                if shape_index[v as usize] == u32::MAX {
                    shape_index[v as usize] = ict_index.len() as u32;
                    ict_index.push(v);
                }
            }
        }
        Self {
            ict_index,
            shape_index,
        }
    }

    pub fn len(&self) -> usize {
        self.ict_index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ict_index.is_empty()
    }

    /// The shape vertex of an ICT vertex, if selected.
    pub fn get(&self, ict: u32) -> Option<u32> {
        self.shape_index
            .get(ict as usize)
            .copied()
            .filter(|&s| s != u32::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_selection_is_face_and_head() {
        let s = RegionSelection::default();
        assert_eq!(s.regions(), vec![Region::Face, Region::HeadAndNeck]);
        assert_eq!(RegionSelection::all().regions().len(), Region::ALL.len());
        assert!(
            RegionSelection {
                eyes: true,
                mouth_interior: false
            }
            .contains(Region::EyeSocketLeft)
        );
        assert!(
            !RegionSelection {
                eyes: true,
                mouth_interior: false
            }
            .contains(Region::Teeth)
        );
    }

    #[test]
    fn names_round_trip() {
        for r in Region::ALL {
            assert_eq!(Region::from_ict_name(r.ict_name()), Some(r));
        }
        for a in FaceArea::ALL {
            assert_eq!(FaceArea::from_ict_name(a.ict_name()), Some(a));
        }
        assert_eq!(Region::from_ict_name("Eyelashes left"), None);
    }

    #[test]
    fn subset_numbers_selected_vertices_in_order() {
        let s = VertexSubset::new(&[0..3, 7..9], 10);
        assert_eq!(s.ict_index, vec![0, 1, 2, 7, 8]);
        assert_eq!(s.get(7), Some(3));
        assert_eq!(s.get(5), None);
        assert_eq!(s.get(99), None);
    }
}
