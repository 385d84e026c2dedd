//! Normals and lighting in burn ops (differentiable, any backend).
//!
//! The lighting model is GANFit's: ambient plus one directional light with Phong diffuse and
//! specular terms, each light with an RGB colour; second-order spherical harmonics are the
//! alternative for diffuse environments.

use burn::tensor::{IndexingUpdateOp, Int, Tensor};

use super::Topology;

fn flat_indices(topology: &Topology) -> Tensor<1, Int> {
    let t = topology.num_triangles();
    topology.triangles().reshape([t * 3])
}

/// Unit vertex normals `[B, V, 3]` of vertices `[B, V, 3]`: the area-weighted sum of the
/// normals of the adjacent triangles (counter-clockwise winding faces outwards).
pub fn vertex_normals(vertices: Tensor<3>, topology: &Topology) -> Tensor<3> {
    let [b, _, _] = vertices.dims();
    let t = topology.num_triangles();
    let idx = flat_indices(topology);
    let corners = vertices
        .clone()
        .select(1, idx.clone())
        .reshape([b, t, 3, 3]);
    let corner = |i: usize| {
        corners
            .clone()
            .slice([0..b, 0..t, i..i + 1, 0..3])
            .reshape([b, t, 3])
    };
    let (p0, p1, p2) = (corner(0), corner(1), corner(2));
    // Unnormalised cross product: its length is twice the triangle area.
    let face = (p1 - p0.clone()).cross(p2 - p0, 2);
    let per_corner =
        Tensor::stack::<4>(vec![face.clone(), face.clone(), face], 2).reshape([b, t * 3, 3]);
    let summed = vertices
        .zeros_like()
        .select_assign(1, idx, per_corner, IndexingUpdateOp::Add);
    normalize(summed, 2)
}

/// `x / |x|` along `dim`, safe at zero.
pub fn normalize<const D: usize>(x: Tensor<D>, dim: usize) -> Tensor<D> {
    let norm = x
        .clone()
        .powi_scalar(2)
        .sum_dim(dim)
        .add_scalar(1e-12)
        .sqrt();
    x / norm
}

/// Parameters of the Phong light, each `[B, ...]`.
#[derive(Debug, Clone)]
pub struct PhongLight {
    /// Ambient RGB `[B, 3]`.
    pub ambient: Tensor<2>,
    /// Directional light RGB `[B, 3]`.
    pub diffuse: Tensor<2>,
    /// Direction towards the light, camera space `[B, 3]` (normalised here).
    pub direction: Tensor<2>,
    /// Specular intensity `[B, 1]`.
    pub specular: Tensor<2>,
    /// Phong exponent.
    pub shininess: f32,
}

impl PhongLight {
    /// The same light, cut from the gradient graph.
    pub fn detach(&self) -> PhongLight {
        PhongLight {
            ambient: self.ambient.clone().detach(),
            diffuse: self.diffuse.clone().detach(),
            direction: self.direction.clone().detach(),
            specular: self.specular.clone().detach(),
            shininess: self.shininess,
        }
    }
}

/// Shaded colour `[B, H, W, 3]` = albedo · (ambient + diffuse · max(n·l, 0)) + specular ·
/// diffuse · max(r·v, 0)^shininess, with normals and view directions (towards the eye) in
/// camera space, all `[B, H, W, 3]`.
pub fn phong(
    albedo: Tensor<4>,
    normals: Tensor<4>,
    view: Tensor<4>,
    light: &PhongLight,
) -> Tensor<4> {
    let [b, _, _, _] = albedo.dims();
    let per_image = |t: Tensor<2>, c: usize| t.reshape([b, 1, 1, c]);
    let l = per_image(normalize(light.direction.clone(), 1), 3);
    let n = normalize(normals, 3);
    let n_dot_l = (n.clone() * l.clone()).sum_dim(3);
    let diffuse_term = n_dot_l.clone().clamp_min(0.0);
    let reflected = n * (n_dot_l * 2.0) - l;
    let r_dot_v = (reflected * normalize(view, 3)).sum_dim(3).clamp_min(1e-6);
    let specular_term = r_dot_v.powf_scalar(light.shininess) * per_image(light.specular.clone(), 1);
    let diffuse_rgb = per_image(light.diffuse.clone(), 3);
    albedo * (per_image(light.ambient.clone(), 3) + diffuse_rgb.clone() * diffuse_term)
        + diffuse_rgb * specular_term
}

/// The nine real spherical-harmonic basis functions (bands 0-2) of unit normals `[.., 3]`,
/// with the Lambertian convolution constants folded in (Ramamoorthi & Hanrahan 2001).
pub fn sh_basis(normals: Tensor<4>) -> Tensor<4> {
    let [b, h, w, _] = normals.dims();
    let n = normalize(normals, 3);
    let c = |i: usize| n.clone().slice([0..b, 0..h, 0..w, i..i + 1]);
    let (x, y, z) = (c(0), c(1), c(2));
    let pi = std::f32::consts::PI;
    let a0 = pi * (1.0 / (4.0 * pi)).sqrt();
    let a1 = (2.0 * pi / 3.0) * (3.0 / (4.0 * pi)).sqrt();
    let a2 = (pi / 4.0) * 0.5 * (5.0 / (4.0 * pi)).sqrt();
    let k = 3.0 * (5.0 / (12.0 * pi)).sqrt() * (pi / 4.0);
    Tensor::cat(
        vec![
            x.clone().ones_like() * a0,
            y.clone() * a1,
            z.clone() * a1,
            x.clone() * a1,
            x.clone() * y.clone() * k,
            y.clone() * z.clone() * k,
            (z.clone() * z.clone() * 3.0 - 1.0) * a2,
            x.clone() * z * k,
            (x.clone() * x - y.clone() * y) * (k * 0.5),
        ],
        3,
    )
}

/// Lambertian shading under SH lighting: albedo · (basis(n) · coefficients), with
/// coefficients `[B, 9, 3]`.
pub fn sh_shading(albedo: Tensor<4>, normals: Tensor<4>, coefficients: Tensor<3>) -> Tensor<4> {
    let [b, h, w, _] = albedo.dims();
    let basis = sh_basis(normals).reshape([b, h * w, 9]);
    let irradiance = basis.matmul(coefficients).reshape([b, h, w, 3]);
    albedo * irradiance
}
