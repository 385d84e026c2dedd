//! The differentiable renderer: nvdiffrast's four primitives as burn operations.
//!
//! | op | inputs | output | gradients to |
//! |---|---|---|---|
//! | [`rasterize`] | clip positions `[B, V, 4]`, [`Topology`], `H`, `W` | `[B, H, W, 4]` = (u, v, z/w, triangle id + 1) | positions (through u, v, z/w) |
//! | [`interpolate`] | attributes `[Ba, V, C]` (Ba = 1 or B), rast | `[B, H, W, C]` | attributes, rast (u, v) |
//! | [`texture`] | map `[Bt, Ht, Wt, C]` (Bt = 1 or B), uv `[B, H, W, 2]` | `[B, H, W, C]` | map, uv |
//! | [`antialias`] | colour `[B, H, W, C]`, rast, positions, [`Topology`] | `[B, H, W, C]` | colour, positions (at silhouettes) |
//!
//! Conventions: clip space is OpenGL's (NDC x right, y up, z in [-1, 1]); image row 0 is the
//! top row; u, v are perspective-correct barycentrics of the triangle's first two vertices;
//! background pixels have id 0 and all-zero rast. Texture coordinates (s, t) run along the
//! map's width and height with t = 0 at its first row. Triangles with a vertex at w <= 1e-6
//! (at or behind the eye) are not drawn; pixels with z/w outside [-1, 1] are clipped.
//!
//! Each op is a method of [`RenderOps`], implemented three times: WGSL kernels from `shaders/`
//! for the cubecl backends (wgpu natively, WebGPU in the browser), the plain-Rust CPU reference
//! for the Flex backend (also the ground truth of the tests), and a custom backward for
//! autodiff. The glue of each op and its CPU reference live in one file per op.

pub mod antialias;
mod backends;
pub mod camera;
#[cfg(not(target_arch = "wasm32"))]
mod cpu;
pub mod interpolate;
mod kernel;
pub mod rasterize;
mod scatter;
pub mod scenes;
pub mod selftest;
pub mod shading;
pub mod texture;
mod topology;

pub use crate::error::RenderError;
pub use topology::Topology;

use burn::backend::{
    Dispatch, backend_extension,
    tensor::{FloatTensor, IntTensor},
};
use burn::tensor::{Int, Tensor};

/// Largest image side the kernels accept (dispatch grids stay far below WebGPU's 65535 groups).
pub const MAX_SIDE: usize = 8192;
/// Largest batch × pixel count of one call: rast is 16 bytes a pixel, and WebGPU guarantees
/// storage bindings of 128 MiB.
pub const MAX_PIXELS: usize = 128 * 1024 * 1024 / 16;

/// Texture addressing outside [0, 1].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum Boundary {
    /// Coordinates clamp to the edge texels (the face model's UV layout needs this).
    #[default]
    Clamp,
    /// Coordinates wrap around (tiling textures).
    Wrap,
}

/// The renderer's primitive operations, extending burn's backend trait.
#[backend_extension(Cube, Flex: cfg(not(target_arch = "wasm32")), Autodiff)]
pub trait RenderOps: burn::backend::Backend {
    /// See [`rasterize()`].
    fn rasterize(
        positions: FloatTensor<Self>,
        triangles: IntTensor<Self>,
        height: usize,
        width: usize,
    ) -> FloatTensor<Self>;

    /// Gradient of the clip positions from the gradient of the rast output.
    fn rasterize_backward(
        positions: FloatTensor<Self>,
        triangles: IntTensor<Self>,
        rast: FloatTensor<Self>,
        grad_rast: FloatTensor<Self>,
    ) -> FloatTensor<Self>;

    /// See [`interpolate()`].
    fn interpolate_attributes(
        attributes: FloatTensor<Self>,
        rast: FloatTensor<Self>,
        triangles: IntTensor<Self>,
    ) -> FloatTensor<Self>;

    /// Gradients of (attributes, rast) from the gradient of the interpolated image. When
    /// `attr_grad` is false the attributes need no gradient: the first output is an empty
    /// tensor (shape `[0]`) and its scatter is skipped.
    fn interpolate_attributes_backward(
        attributes: FloatTensor<Self>,
        rast: FloatTensor<Self>,
        triangles: IntTensor<Self>,
        grad_out: FloatTensor<Self>,
        attr_grad: bool,
    ) -> (FloatTensor<Self>, FloatTensor<Self>);

    /// See [`texture()`].
    fn texture(map: FloatTensor<Self>, uv: FloatTensor<Self>, wrap: bool) -> FloatTensor<Self>;

    /// Gradients of (map, uv) from the gradient of the sampled image. When `map_grad` is false
    /// the map needs no gradient: the first output is an empty tensor (shape `[0]`) and its
    /// scatter is skipped.
    fn texture_backward(
        map: FloatTensor<Self>,
        uv: FloatTensor<Self>,
        grad_out: FloatTensor<Self>,
        wrap: bool,
        map_grad: bool,
    ) -> (FloatTensor<Self>, FloatTensor<Self>);

    /// See [`antialias()`].
    fn antialias(
        color: FloatTensor<Self>,
        rast: FloatTensor<Self>,
        positions: FloatTensor<Self>,
        triangles: IntTensor<Self>,
        wings: IntTensor<Self>,
    ) -> FloatTensor<Self>;

    /// Gradients of (colour, positions) from the gradient of the antialiased image. When
    /// `position_grad` is false the positions need no gradient: the second output is an empty
    /// tensor (shape `[0]`) and its scatter is skipped.
    fn antialias_backward(
        color: FloatTensor<Self>,
        rast: FloatTensor<Self>,
        positions: FloatTensor<Self>,
        triangles: IntTensor<Self>,
        wings: IntTensor<Self>,
        grad_out: FloatTensor<Self>,
        position_grad: bool,
    ) -> (FloatTensor<Self>, FloatTensor<Self>);
}

fn check_rank(
    what: &'static str,
    dims: &[usize],
    rank: usize,
    last: Option<usize>,
) -> Result<(), RenderError> {
    let ok = dims.len() == rank
        && last.is_none_or(|c| dims[rank - 1] == c)
        && dims.iter().all(|&d| d > 0);
    if ok {
        Ok(())
    } else {
        let mut expected = vec!["_".to_string(); rank];
        if let Some(c) = last {
            expected[rank - 1] = c.to_string();
        }
        Err(RenderError::Shape {
            what,
            expected: format!("[{}] (all non-zero)", expected.join(", ")),
            got: dims.to_vec(),
        })
    }
}

fn check_resolution(batch: usize, height: usize, width: usize) -> Result<(), RenderError> {
    if height == 0
        || width == 0
        || height > MAX_SIDE
        || width > MAX_SIDE
        || batch * height * width > MAX_PIXELS
    {
        return Err(RenderError::Resolution {
            width,
            height,
            batch,
            max_side: MAX_SIDE,
            max_pixels: MAX_PIXELS,
        });
    }
    Ok(())
}

fn check_rast(rast: &[usize], batch: usize) -> Result<(), RenderError> {
    check_rank("rast", rast, 4, Some(4))?;
    if rast[0] != batch {
        return Err(RenderError::Shape {
            what: "rast",
            expected: format!("[{batch}, H, W, 4]"),
            got: rast.to_vec(),
        });
    }
    Ok(())
}

/// Rasterizes clip-space positions `[B, V, 4]` into `[B, H, W, 4]` = (u, v, z/w, id + 1).
///
/// Differentiable with respect to the positions through u, v and z/w (not through coverage:
/// silhouette gradients come from [`antialias`]).
pub fn rasterize(
    positions: Tensor<3>,
    topology: &Topology,
    height: usize,
    width: usize,
) -> Result<Tensor<4>, RenderError> {
    let [batch, vertices, four] = positions.dims();
    check_rank("positions", &[batch, vertices, four], 3, Some(4))?;
    topology.check_vertices(vertices)?;
    check_resolution(batch, height, width)?;
    let out = Dispatch::rasterize(
        positions.into_dispatch(),
        topology.triangles().into_dispatch(),
        height,
        width,
    );
    Ok(Tensor::from_dispatch(out))
}

/// Interpolates per-vertex attributes `[Ba, V, C]` (Ba = 1 or B) over the rasterized pixels.
fn check_interpolate(
    dims: &[usize],
    rast_dims: &[usize],
    topology: &Topology,
) -> Result<(), RenderError> {
    check_rank("attributes", dims, 3, None)?;
    topology.check_vertices(dims[1])?;
    check_rast(rast_dims, rast_dims[0])?;
    if dims[0] != 1 && dims[0] != rast_dims[0] {
        return Err(RenderError::Shape {
            what: "attributes",
            expected: format!("[1 or {}, V, C]", rast_dims[0]),
            got: dims.to_vec(),
        });
    }
    Ok(())
}

pub fn interpolate(
    attributes: Tensor<3>,
    rast: Tensor<4>,
    topology: &Topology,
) -> Result<Tensor<4>, RenderError> {
    check_interpolate(&attributes.dims(), &rast.dims(), topology)?;
    let out = Dispatch::interpolate_attributes(
        attributes.into_dispatch(),
        rast.into_dispatch(),
        topology.triangles().into_dispatch(),
    );
    Ok(Tensor::from_dispatch(out))
}

/// Samples a texture map `[Bt, Ht, Wt, C]` (Bt = 1 or B) bilinearly at uv `[B, H, W, 2]`.
fn check_texture(map_dims: &[usize], uv_dims: &[usize]) -> Result<(), RenderError> {
    check_rank("texture map", map_dims, 4, None)?;
    check_rank("uv", uv_dims, 4, Some(2))?;
    check_resolution(uv_dims[0], uv_dims[1], uv_dims[2])?;
    if map_dims[0] != 1 && map_dims[0] != uv_dims[0] {
        return Err(RenderError::Shape {
            what: "texture map",
            expected: format!("[1 or {}, Ht, Wt, C]", uv_dims[0]),
            got: map_dims.to_vec(),
        });
    }
    Ok(())
}

pub fn texture(
    map: Tensor<4>,
    uv: Tensor<4>,
    boundary: Boundary,
) -> Result<Tensor<4>, RenderError> {
    check_texture(&map.dims(), &uv.dims())?;
    let out = Dispatch::texture(
        map.into_dispatch(),
        uv.into_dispatch(),
        boundary == Boundary::Wrap,
    );
    Ok(Tensor::from_dispatch(out))
}

/// Antialiases silhouette edges of a rendered image `[B, H, W, C]`.
fn check_antialias(
    color_dims: &[usize],
    rast_dims: &[usize],
    pos_dims: &[usize],
    topology: &Topology,
) -> Result<(), RenderError> {
    check_rank("color", color_dims, 4, None)?;
    check_rast(rast_dims, color_dims[0])?;
    if rast_dims[1..3] != color_dims[1..3] {
        return Err(RenderError::Shape {
            what: "rast",
            expected: format!(
                "[{}, {}, {}, 4]",
                color_dims[0], color_dims[1], color_dims[2]
            ),
            got: rast_dims.to_vec(),
        });
    }
    check_rank("positions", pos_dims, 3, Some(4))?;
    if pos_dims[0] != color_dims[0] {
        return Err(RenderError::Shape {
            what: "positions",
            expected: format!("[{}, V, 4]", color_dims[0]),
            got: pos_dims.to_vec(),
        });
    }
    topology.check_vertices(pos_dims[1])?;
    Ok(())
}

pub fn antialias(
    color: Tensor<4>,
    rast: Tensor<4>,
    positions: Tensor<3>,
    topology: &Topology,
) -> Result<Tensor<4>, RenderError> {
    check_antialias(&color.dims(), &rast.dims(), &positions.dims(), topology)?;
    let out = Dispatch::antialias(
        color.into_dispatch(),
        rast.into_dispatch(),
        positions.into_dispatch(),
        topology.triangles().into_dispatch(),
        topology.wings().into_dispatch(),
    );
    Ok(Tensor::from_dispatch(out))
}

/// The four ops' backward passes on their own, as autodiff runs them (fits never call these;
/// benchmarks time them). Inputs are the forward's inputs and output gradient, checked as the
/// forward checks them; a scattered gradient is always computed.
pub mod backward {
    use super::*;

    fn same_dims(
        what: &'static str,
        got: Vec<usize>,
        expected: &[usize],
    ) -> Result<(), RenderError> {
        if got == expected {
            Ok(())
        } else {
            Err(RenderError::Shape {
                what,
                expected: format!("{expected:?}"),
                got,
            })
        }
    }

    /// d positions `[B, V, 4]` from d rast `[B, H, W, 4]`.
    pub fn rasterize(
        positions: Tensor<3>,
        topology: &Topology,
        rast: Tensor<4>,
        grad_rast: Tensor<4>,
    ) -> Result<Tensor<3>, RenderError> {
        let [batch, vertices, _] = positions.dims();
        check_rank("positions", &positions.dims(), 3, Some(4))?;
        topology.check_vertices(vertices)?;
        check_rast(&rast.dims(), batch)?;
        same_dims("grad_rast", grad_rast.dims().to_vec(), &rast.dims())?;
        Ok(Tensor::from_dispatch(Dispatch::rasterize_backward(
            positions.into_dispatch(),
            topology.triangles().into_dispatch(),
            rast.into_dispatch(),
            grad_rast.into_dispatch(),
        )))
    }

    /// (d attributes `[Ba, V, C]`, d rast `[B, H, W, 4]`) from d output `[B, H, W, C]`.
    pub fn interpolate(
        attributes: Tensor<3>,
        rast: Tensor<4>,
        topology: &Topology,
        grad_out: Tensor<4>,
    ) -> Result<(Tensor<3>, Tensor<4>), RenderError> {
        let [_, _, channels] = attributes.dims();
        let [batch, height, width, _] = rast.dims();
        check_interpolate(&attributes.dims(), &rast.dims(), topology)?;
        same_dims(
            "grad_out",
            grad_out.dims().to_vec(),
            &[batch, height, width, channels],
        )?;
        let (a, r) = Dispatch::interpolate_attributes_backward(
            attributes.into_dispatch(),
            rast.into_dispatch(),
            topology.triangles().into_dispatch(),
            grad_out.into_dispatch(),
            true,
        );
        Ok((Tensor::from_dispatch(a), Tensor::from_dispatch(r)))
    }

    /// (d map `[Bt, Ht, Wt, C]`, d uv `[B, H, W, 2]`) from d output `[B, H, W, C]`.
    pub fn texture(
        map: Tensor<4>,
        uv: Tensor<4>,
        boundary: Boundary,
        grad_out: Tensor<4>,
    ) -> Result<(Tensor<4>, Tensor<4>), RenderError> {
        let [_, _, _, channels] = map.dims();
        let [batch, height, width, _] = uv.dims();
        check_texture(&map.dims(), &uv.dims())?;
        same_dims(
            "grad_out",
            grad_out.dims().to_vec(),
            &[batch, height, width, channels],
        )?;
        let (m, u) = Dispatch::texture_backward(
            map.into_dispatch(),
            uv.into_dispatch(),
            grad_out.into_dispatch(),
            boundary == Boundary::Wrap,
            true,
        );
        Ok((Tensor::from_dispatch(m), Tensor::from_dispatch(u)))
    }

    /// (d colour `[B, H, W, C]`, d positions `[B, V, 4]`) from d output `[B, H, W, C]`.
    pub fn antialias(
        color: Tensor<4>,
        rast: Tensor<4>,
        positions: Tensor<3>,
        topology: &Topology,
        grad_out: Tensor<4>,
    ) -> Result<(Tensor<4>, Tensor<3>), RenderError> {
        same_dims("grad_out", grad_out.dims().to_vec(), &color.dims())?;
        check_antialias(&color.dims(), &rast.dims(), &positions.dims(), topology)?;
        let (c, p) = Dispatch::antialias_backward(
            color.into_dispatch(),
            rast.into_dispatch(),
            positions.into_dispatch(),
            topology.triangles().into_dispatch(),
            topology.wings().into_dispatch(),
            grad_out.into_dispatch(),
            true,
        );
        Ok((Tensor::from_dispatch(c), Tensor::from_dispatch(p)))
    }
}

/// The triangle id channel of a rast output as a 0/1 coverage mask `[B, H, W, 1]`.
pub fn coverage(rast: &Tensor<4>) -> Tensor<4> {
    let [b, h, w, _] = rast.dims();
    rast.clone()
        .slice([0..b, 0..h, 0..w, 3..4])
        .greater_elem(0.5)
        .float()
        .detach()
}

/// Triangle ids of a rast output, 0 for background.
pub fn triangle_ids(rast: &Tensor<4>) -> Tensor<4, Int> {
    let [b, h, w, _] = rast.dims();
    rast.clone()
        .slice([0..b, 0..h, 0..w, 3..4])
        .detach()
        .round()
        .int()
}
