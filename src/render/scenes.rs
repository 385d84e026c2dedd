//! Small deterministic meshes for the renderer's tests, self-test and benchmarks.

use crate::util::rng::SplitMix64;

/// A triangle mesh with per-vertex colours, in plain arrays.
#[derive(Debug, Clone)]
pub struct Mesh {
    /// `[V, 3]` positions.
    pub positions: Vec<[f32; 3]>,
    /// `[T, 3]` vertex indices, counter-clockwise seen from outside.
    pub triangles: Vec<[u32; 3]>,
    /// `[V, 3]` colours.
    pub colors: Vec<[f32; 3]>,
}

/// A regular `n × n` grid of quads over [-extent, extent]² at height z, each quad split in
/// two, with every interior vertex jittered by up to `jitter` of a cell.
pub fn grid(n: usize, extent: f32, z: f32, jitter: f32, seed: u64) -> Mesh {
    let mut rng = SplitMix64::new(seed);
    let cell = 2.0 * extent / n as f32;
    let mut positions = Vec::new();
    let mut colors = Vec::new();
    for j in 0..=n {
        for i in 0..=n {
            let interior = i > 0 && j > 0 && i < n && j < n;
            let (dx, dy) = if interior {
                (
                    rng.range(-jitter, jitter) * cell,
                    rng.range(-jitter, jitter) * cell,
                )
            } else {
                (0.0, 0.0)
            };
            positions.push([
                -extent + i as f32 * cell + dx,
                -extent + j as f32 * cell + dy,
                z,
            ]);
            colors.push([i as f32 / n as f32, j as f32 / n as f32, 0.5]);
        }
    }
    let mut triangles = Vec::new();
    let at = |i: usize, j: usize| (j * (n + 1) + i) as u32;
    for j in 0..n {
        for i in 0..n {
            let (a, b, c, d) = (at(i, j), at(i + 1, j), at(i + 1, j + 1), at(i, j + 1));
            if (i + j) % 2 == 0 {
                triangles.push([a, b, c]);
                triangles.push([a, c, d]);
            } else {
                triangles.push([a, b, d]);
                triangles.push([b, c, d]);
            }
        }
    }
    Mesh {
        positions,
        triangles,
        colors,
    }
}

/// A closed UV sphere of radius `r`: `rings` latitude bands, `segments` longitudes, one
/// vertex at each pole, counter-clockwise seen from outside, with smooth colours.
pub fn sphere(rings: usize, segments: usize, r: f32) -> Mesh {
    use std::f32::consts::PI;
    let point = |theta: f32, phi: f32| {
        [
            r * theta.sin() * phi.cos(),
            r * theta.cos(),
            r * theta.sin() * phi.sin(),
        ]
    };
    let colour = |theta: f32, phi: f32| {
        [
            0.5 + 0.5 * phi.cos(),
            0.5 + 0.5 * theta.cos(),
            0.5 + 0.5 * (3.0 * phi).sin(),
        ]
    };
    let mut positions = vec![point(0.0, 0.0)];
    let mut colors = vec![colour(0.0, 0.0)];
    for j in 1..rings {
        let theta = PI * j as f32 / rings as f32;
        for i in 0..segments {
            let phi = 2.0 * PI * i as f32 / segments as f32;
            positions.push(point(theta, phi));
            colors.push(colour(theta, phi));
        }
    }
    positions.push(point(PI, 0.0));
    colors.push(colour(PI, 0.0));
    let south = (positions.len() - 1) as u32;
    let at = |i: usize, j: usize| (1 + (j - 1) * segments + i % segments) as u32;
    let mut triangles = Vec::new();
    for i in 0..segments {
        triangles.push([0, at(i + 1, 1), at(i, 1)]);
        triangles.push([south, at(i, rings - 1), at(i + 1, rings - 1)]);
    }
    for j in 1..rings - 1 {
        for i in 0..segments {
            let (a, b, c, d) = (at(i, j), at(i + 1, j), at(i + 1, j + 1), at(i, j + 1));
            triangles.push([a, b, d]);
            triangles.push([b, c, d]);
        }
    }
    Mesh {
        positions,
        triangles,
        colors,
    }
}

/// `count` random triangles with random depths inside the view volume (for id tests).
pub fn random_triangles(count: usize, seed: u64) -> Mesh {
    let mut rng = SplitMix64::new(seed);
    let mut positions = Vec::new();
    let mut colors = Vec::new();
    let mut triangles = Vec::new();
    for t in 0..count {
        let centre = [
            rng.range(-0.8, 0.8),
            rng.range(-0.8, 0.8),
            rng.range(-0.9, 0.9),
        ];
        for _ in 0..3 {
            positions.push([
                centre[0] + rng.range(-0.5, 0.5),
                centre[1] + rng.range(-0.5, 0.5),
                centre[2] + rng.range(-0.05, 0.05),
            ]);
            colors.push([rng.uniform(), rng.uniform(), rng.uniform()]);
        }
        let base = 3 * t as u32;
        triangles.push([base, base + 1, base + 2]);
    }
    Mesh {
        positions,
        triangles,
        colors,
    }
}

impl Mesh {
    /// Clip positions `[V, 4]` for positions already in NDC-like units, with w varied per
    /// vertex so that perspective-correct interpolation matters.
    pub fn clip_with_varying_w(&self, seed: u64) -> Vec<f32> {
        let mut rng = SplitMix64::new(seed);
        self.positions
            .iter()
            .flat_map(|p| {
                let w = rng.range(0.7, 1.6);
                [p[0] * w, p[1] * w, p[2] * w, w]
            })
            .collect()
    }

    pub fn colors_flat(&self) -> Vec<f32> {
        self.colors.iter().flatten().copied().collect()
    }

    pub fn positions_flat(&self) -> Vec<f32> {
        self.positions.iter().flatten().copied().collect()
    }
}
