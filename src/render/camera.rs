//! Pinhole camera in burn ops: rigid transform, then OpenGL-style perspective projection.
//!
//! Camera space looks down -z with y up (OpenGL). Focal lengths are in pixels of the target
//! image, the principal point is the image centre. All functions are batched and
//! differentiable with respect to every tensor argument.

use burn::tensor::Tensor;

/// Depth range of the projection, in the same unit as the geometry.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DepthRange {
    pub near: f32,
    pub far: f32,
}

/// Rotation matrices `[B, 3, 3]` from Euler angles `[B, 3]` = (pitch about x, yaw about y,
/// roll about z) in radians, applied in the order x, then y, then z: R = Rz · Ry · Rx.
pub fn euler_rotation(angles: Tensor<2>) -> Tensor<3> {
    let [b, _] = angles.dims();
    let col = |i: usize| angles.clone().slice([0..b, i..i + 1]);
    let (cx, sx) = (col(0).cos(), col(0).sin());
    let (cy, sy) = (col(1).cos(), col(1).sin());
    let (cz, sz) = (col(2).cos(), col(2).sin());
    let zero = cx.clone().zeros_like();
    let one = zero.clone().ones_like();
    let matrix = |rows: [[Tensor<2>; 3]; 3]| {
        let rows: Vec<Tensor<2>> = rows
            .into_iter()
            .map(|r| Tensor::cat(r.to_vec(), 1))
            .collect();
        Tensor::stack::<3>(rows, 1)
    };
    let rx = matrix([
        [one.clone(), zero.clone(), zero.clone()],
        [zero.clone(), cx.clone(), -sx.clone()],
        [zero.clone(), sx, cx],
    ]);
    let ry = matrix([
        [cy.clone(), zero.clone(), sy.clone()],
        [zero.clone(), one.clone(), zero.clone()],
        [-sy, zero.clone(), cy],
    ]);
    let rz = matrix([
        [cz.clone(), -sz.clone(), zero.clone()],
        [sz, cz, zero.clone()],
        [zero.clone(), zero, one],
    ]);
    rz.matmul(ry).matmul(rx)
}

/// `R · p + t` for points `[B, V, 3]`, rotations `[B, 3, 3]`, translations `[B, 3]`.
pub fn transform(points: Tensor<3>, rotation: Tensor<3>, translation: Tensor<2>) -> Tensor<3> {
    let [b, _, _] = points.dims();
    points.matmul(rotation.swap_dims(1, 2)) + translation.reshape([b, 1, 3])
}

/// Clip-space positions `[B, V, 4]` of camera-space points `[B, V, 3]`, for images of
/// `width × height` pixels and focal lengths `[B, 1]` in pixels.
pub fn project(
    points: Tensor<3>,
    focal: Tensor<2>,
    width: usize,
    height: usize,
    depth: DepthRange,
) -> Tensor<3> {
    let [b, v, _] = points.dims();
    let coord = |i: usize| points.clone().slice([0..b, 0..v, i..i + 1]);
    let (x, y, z) = (coord(0), coord(1), coord(2));
    let focal = focal.reshape([b, 1, 1]);
    let fx = focal.clone() * (2.0 / width as f32);
    let fy = focal * (2.0 / height as f32);
    let DepthRange { near, far } = depth;
    let a = -(far + near) / (far - near);
    let c = -2.0 * far * near / (far - near);
    Tensor::cat(vec![x * fx, y * fy, z.clone() * a + c, -z], 2)
}

/// Pixel coordinates `[B, V, 2]` (x right, y down, pixel centres at +0.5) of clip positions.
pub fn clip_to_pixels(clip: Tensor<3>, width: usize, height: usize) -> Tensor<3> {
    let [b, v, _] = clip.dims();
    let coord = |i: usize| clip.clone().slice([0..b, 0..v, i..i + 1]);
    let w = coord(3);
    let x = (coord(0) / w.clone() + 1.0) * (0.5 * width as f32);
    let y = (-(coord(1) / w) + 1.0) * (0.5 * height as f32);
    Tensor::cat(vec![x, y], 2)
}
