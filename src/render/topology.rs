use std::collections::HashMap;

use burn::tensor::{Device, Int, Tensor, TensorData};

use super::RenderError;

/// A fixed triangle list, validated once and uploaded once, with its silhouette-edge table.
///
/// `wings[t][m]` is the vertex opposite edge m of triangle t (the edge that does not touch its
/// m-th vertex) in the triangle on the other side of that edge, or -1 where the edge is open
/// or shared by more than two triangles. Antialiasing uses it to tell silhouette edges from
/// interior ones; it depends on topology alone, so it is built here on the CPU.
#[derive(Debug, Clone)]
pub struct Topology {
    triangles: Vec<[u32; 3]>,
    wings: Vec<[i32; 3]>,
    num_vertices: usize,
    triangles_tensor: Tensor<2, Int>,
    wings_tensor: Tensor<2, Int>,
}

impl Topology {
    /// Validates the indices against `num_vertices` and uploads the tables to `device`.
    pub fn new(
        triangles: Vec<[u32; 3]>,
        num_vertices: usize,
        device: &Device,
    ) -> Result<Self, RenderError> {
        Self::with_shared_positions(triangles, num_vertices, None, device)
    }

    /// Like [`Topology::new`] for meshes whose vertices were split along texture seams:
    /// `position_of[v]` names the geometric vertex of render vertex `v`, so that two triangles
    /// meeting at a seam are still neighbours for the silhouette table (a seam is not a
    /// silhouette).
    pub fn with_shared_positions(
        triangles: Vec<[u32; 3]>,
        num_vertices: usize,
        position_of: Option<&[u32]>,
        device: &Device,
    ) -> Result<Self, RenderError> {
        if triangles.is_empty() || num_vertices == 0 {
            return Err(RenderError::EmptyMesh);
        }
        for (t, tri) in triangles.iter().enumerate() {
            if let Some(&bad) = tri.iter().find(|&&i| i as usize >= num_vertices) {
                return Err(RenderError::IndexOutOfRange {
                    triangle: t,
                    index: bad as i64,
                    vertices: num_vertices,
                });
            }
        }
        if let Some(map) = position_of
            && map.len() != num_vertices
        {
            return Err(RenderError::Shape {
                what: "position map",
                expected: format!("[{num_vertices}]"),
                got: vec![map.len()],
            });
        }
        let wings = wing_table(&triangles, position_of);
        let tri_flat: Vec<i32> = triangles.iter().flat_map(|t| t.map(|i| i as i32)).collect();
        let wing_flat: Vec<i32> = wings.iter().flatten().copied().collect();
        let n = triangles.len();
        Ok(Self {
            triangles_tensor: Tensor::from_data(TensorData::new(tri_flat, [n, 3]), device),
            wings_tensor: Tensor::from_data(TensorData::new(wing_flat, [n, 3]), device),
            triangles,
            wings,
            num_vertices,
        })
    }

    /// Triangles as signed indices, as the JS/GPU side receives them.
    pub fn from_indices(
        indices: &[i64],
        num_vertices: usize,
        device: &Device,
    ) -> Result<Self, RenderError> {
        if !indices.len().is_multiple_of(3) {
            return Err(RenderError::Shape {
                what: "triangles",
                expected: "[T, 3]".into(),
                got: vec![indices.len()],
            });
        }
        let mut triangles = Vec::with_capacity(indices.len() / 3);
        for (t, c) in indices.chunks(3).enumerate() {
            if let Some(&bad) = c.iter().find(|&&i| i < 0 || i as usize >= num_vertices) {
                return Err(RenderError::IndexOutOfRange {
                    triangle: t,
                    index: bad,
                    vertices: num_vertices,
                });
            }
            triangles.push([c[0] as u32, c[1] as u32, c[2] as u32]);
        }
        Self::new(triangles, num_vertices, device)
    }

    pub fn triangles(&self) -> Tensor<2, Int> {
        self.triangles_tensor.clone()
    }

    pub fn wings(&self) -> Tensor<2, Int> {
        self.wings_tensor.clone()
    }

    pub fn triangle_list(&self) -> &[[u32; 3]] {
        &self.triangles
    }

    pub fn wing_list(&self) -> &[[i32; 3]] {
        &self.wings
    }

    pub fn num_vertices(&self) -> usize {
        self.num_vertices
    }

    pub fn num_triangles(&self) -> usize {
        self.triangles.len()
    }

    pub fn device(&self) -> Device {
        self.triangles_tensor.device()
    }

    pub(crate) fn check_vertices(&self, vertices: usize) -> Result<(), RenderError> {
        if vertices != self.num_vertices {
            return Err(RenderError::Shape {
                what: "vertex count",
                expected: format!("{} vertices (the topology's)", self.num_vertices),
                got: vec![vertices],
            });
        }
        Ok(())
    }
}

/// The silhouette-edge table: for each triangle edge, the opposite vertex across it. Edges
/// are matched by geometric vertex (`position_of`, identity when `None`).
pub fn wing_table(triangles: &[[u32; 3]], position_of: Option<&[u32]>) -> Vec<[i32; 3]> {
    let geometric = |v: u32| position_of.map_or(v, |map| map[v as usize]);
    // Undirected edge -> (triangle, corner opposite the edge) of each triangle using it.
    let mut edges: HashMap<(u32, u32), Vec<(usize, usize)>> =
        HashMap::with_capacity(triangles.len() * 2);
    for (t, tri) in triangles.iter().enumerate() {
        for m in 0..3 {
            let a = geometric(tri[(m + 1) % 3]);
            let b = geometric(tri[(m + 2) % 3]);
            if a == b {
                continue;
            }
            edges.entry((a.min(b), a.max(b))).or_default().push((t, m));
        }
    }
    let mut wings = vec![[-1i32; 3]; triangles.len()];
    for users in edges.values() {
        if let [(t0, m0), (t1, m1)] = users[..] {
            wings[t0][m0] = triangles[t1][m1] as i32;
            wings[t1][m1] = triangles[t0][m0] as i32;
        }
    }
    wings
}
