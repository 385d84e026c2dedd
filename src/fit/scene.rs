//! Rendering the face model with fit parameters: shape → camera → the four render ops →
//! Phong shading, composited over a background. Also the on-device ArcFace alignment of
//! rendered images for the identity network.

use burn::tensor::{Device, Tensor, TensorData};

use crate::error::Result;
use crate::face_model::landmarks::JAW;
use crate::face_model::{FaceArea, FaceModel, JawConvention};
use crate::nets::align::ARCFACE_TEMPLATE_112;
use crate::render::{self, Boundary, camera, shading};

/// Depth range of every fit render, mm: faces sit between a hand's width and ten metres away.
pub const DEPTH: camera::DepthRange = camera::DepthRange {
    near: 10.0,
    far: 10_000.0,
};

/// Per-photo camera `[N, ...]`.
#[derive(Debug, Clone)]
pub struct Camera {
    pub angles: Tensor<2>,
    pub translation: Tensor<2>,
    pub focal: Tensor<2>,
}

impl Camera {
    /// The same camera, cut from the gradient graph.
    pub fn detach(&self) -> Camera {
        Camera {
            angles: self.angles.clone().detach(),
            translation: self.translation.clone().detach(),
            focal: self.focal.clone().detach(),
        }
    }
}

/// A rendered batch.
#[derive(Debug, Clone)]
pub struct Rendered {
    /// `[N, R, R, 3]`, shaded and antialiased, composited over the background.
    pub image: Tensor<4>,
    /// `[N, R, R, 1]`: the face area (pixel-loss region), fractional at its border.
    pub face_mask: Tensor<4>,
    /// `[N, R, R, 1]`: any model surface.
    pub coverage: Tensor<4>,
}

/// Per photo, where the model's jaw landmarks go: the convention of the landmarks it is
/// fitted to.
#[derive(Debug, Clone)]
pub struct JawConventions {
    conventions: Vec<JawConvention>,
    /// `[N, 1, 1]`: 1 where the jaw slides along the contour, 0 where it is fixed.
    contour: Tensor<3>,
}

impl JawConventions {
    pub fn new(conventions: Vec<JawConvention>, device: &Device) -> Self {
        let n = conventions.len();
        let contour: Vec<f32> = conventions
            .iter()
            .map(|&c| (c == JawConvention::Contour) as u8 as f32)
            .collect();
        Self {
            contour: Tensor::from_data(TensorData::new(contour, [n, 1, 1]), device),
            conventions,
        }
    }

    /// The same convention for `n` photos.
    pub fn all(convention: JawConvention, n: usize, device: &Device) -> Self {
        Self::new(vec![convention; n], device)
    }

    /// The 68 landmarks `[N, 68, 3]` of camera-space shape vertices `[N, Vs, 3]` and their
    /// rotations `[N, 3, 3]`, each photo's jaw by its convention.
    fn landmarks(
        &self,
        face: &FaceModel,
        points: Tensor<3>,
        rotation: Tensor<3>,
    ) -> Result<Tensor<3>> {
        let all = |c| self.conventions.iter().all(|&k| k == c);
        if all(JawConvention::Surface) {
            return face.landmarks(points);
        }
        let contour = face.contour_landmarks(points.clone(), rotation)?;
        if all(JawConvention::Contour) {
            return Ok(contour);
        }
        // The inner 51 agree; only the jaw rows differ.
        let surface = face.landmarks(points)?;
        Ok(surface.clone() + (contour - surface) * self.contour.clone())
    }

    /// The 68 a fit reports `[N, 68, 3]` for faces turned by `yaw_degrees` (one per photo):
    /// where annotators put them ([`FaceModel::annotated_landmarks`]), except the jaw of a
    /// photo whose landmarks follow the contour, which stays on the contour as that photo's
    /// annotations would.
    fn reported(
        &self,
        face: &FaceModel,
        points: Tensor<3>,
        rotation: Tensor<3>,
        yaw_degrees: &[f32],
    ) -> Result<Tensor<3>> {
        let annotated = face.annotated_landmarks(points.clone(), yaw_degrees)?;
        if self
            .conventions
            .iter()
            .all(|&k| k == JawConvention::Surface)
        {
            return Ok(annotated);
        }
        let contour = face.contour_landmarks(points, rotation)?;
        let jaw_rows: Vec<f32> = (0..68).map(|i| (i < JAW) as u8 as f32).collect();
        let jaw_rows =
            Tensor::<3>::from_data(TensorData::new(jaw_rows, [1, 68, 1]), &annotated.device());
        Ok(annotated.clone() + (contour - annotated) * (self.contour.clone() * jaw_rows))
    }
}

/// Camera-space shape vertices and the rotations that put them there.
pub fn to_camera(shape: Tensor<3>, camera: &Camera) -> (Tensor<3>, Tensor<3>) {
    let rotation = camera::euler_rotation(camera.angles.clone());
    (
        camera::transform(shape, rotation.clone(), camera.translation.clone()),
        rotation,
    )
}

/// The 68 landmarks projected to pixels `[N, 68, 2]` (no rasterization needed), each photo's
/// jaw by its convention.
pub fn project_landmarks(
    face: &FaceModel,
    shape: Tensor<3>,
    camera: &Camera,
    jaw: &JawConventions,
    resolution: usize,
) -> Result<Tensor<3>> {
    let (points, rotation) = to_camera(shape, camera);
    let landmarks = jaw.landmarks(face, points, rotation)?;
    Ok(to_pixels(landmarks, camera.focal.clone(), resolution))
}

/// Camera-space points `[N, P, 3]` projected to pixels `[N, P, 2]` of a `resolution²` image.
fn to_pixels(points: Tensor<3>, focal: Tensor<2>, resolution: usize) -> Tensor<3> {
    let clip = camera::project(points, focal, resolution, resolution, DEPTH);
    camera::clip_to_pixels(clip, resolution, resolution)
}

/// The 68 landmarks a fit reports ([`JawConventions::reported`]) projected to pixels
/// `[N, 68, 2]`; `yaw_degrees`: each photo's fitted yaw.
pub fn project_reported_landmarks(
    face: &FaceModel,
    shape: Tensor<3>,
    camera: &Camera,
    jaw: &JawConventions,
    yaw_degrees: &[f32],
    resolution: usize,
) -> Result<Tensor<3>> {
    let (points, rotation) = to_camera(shape, camera);
    let landmarks = jaw.reported(face, points, rotation, yaw_degrees)?;
    Ok(to_pixels(landmarks, camera.focal.clone(), resolution))
}

/// Every shape vertex `[N, Vs, 3]` projected to pixels `[N, Vs, 2]` (no visibility test).
pub fn project_vertices(shape: Tensor<3>, camera: &Camera, resolution: usize) -> Tensor<3> {
    let (points, _) = to_camera(shape, camera);
    to_pixels(points, camera.focal.clone(), resolution)
}

/// Renders `shape` `[N, Vs, 3]` with `uv_map` `[1 or N, Ht, Wt, 3]` under Phong `light`.
pub fn render(
    face: &FaceModel,
    shape: Tensor<3>,
    camera: &Camera,
    light: &shading::PhongLight,
    uv_map: Tensor<4>,
    background: Tensor<4>,
    resolution: usize,
) -> Result<Rendered> {
    let topology = face.topology();
    let (points, rotation) = to_camera(shape.clone(), camera);
    let normals = face.vertex_normals(shape)?.matmul(rotation.swap_dims(1, 2));
    let render_points = face.render_positions(points)?;
    let clip = camera::project(
        render_points.clone(),
        camera.focal.clone(),
        resolution,
        resolution,
        DEPTH,
    );
    let rast = render::rasterize(clip.clone(), topology, resolution, resolution)?;
    let uv = render::interpolate(face.uvs(), rast.clone(), topology)?;
    let albedo = render::texture(uv_map, uv, Boundary::Clamp)?;
    let pixel_normals =
        render::interpolate(face.render_positions(normals)?, rast.clone(), topology)?;
    let view = render::interpolate(render_points, rast.clone(), topology)?.neg();
    let shaded = shading::phong(albedo, pixel_normals, view, light);
    let coverage = render::coverage(&rast);
    let face_mask = render::interpolate(face.face_mask(FaceArea::Narrow), rast.clone(), topology)?
        * coverage.clone();
    let composite = shaded * coverage.clone() + background * (coverage.clone().neg() + 1.0);
    let image = render::antialias(composite, rast, clip, topology)?;
    Ok(Rendered {
        image,
        face_mask,
        coverage,
    })
}

/// Crops `[N, 112, 112, 3]` of images `[N, R, R, 3]`, each aligned to the ArcFace template by
/// the similarity fitted to its own landmarks `[N, 68, 2]` (treated as constants), all on the
/// device: no read-back, differentiable with respect to the images.
pub fn arcface_crops(images: Tensor<4>, landmarks: Tensor<3>, size: usize) -> Result<Tensor<4>> {
    let [n, h, w, _] = images.dims();
    let device = images.device();
    let lm = landmarks.detach();
    let point = |range: std::ops::Range<usize>| lm.clone().slice([0..n, range, 0..2]).mean_dim(1);
    // Eye centres, nose tip, mouth corners: [N, 5, 2].
    let five = Tensor::cat(
        vec![
            point(36..42),
            point(42..48),
            point(30..31),
            point(48..49),
            point(54..55),
        ],
        1,
    );
    let scale = size as f64 / 112.0;
    let template: Vec<[f64; 2]> = ARCFACE_TEMPLATE_112
        .iter()
        .map(|[x, y]| [(x + 0.5) * scale, (y + 0.5) * scale])
        .collect();
    let mf = [
        template.iter().map(|p| p[0]).sum::<f64>() / 5.0,
        template.iter().map(|p| p[1]).sum::<f64>() / 5.0,
    ];
    let fc: Vec<[f32; 2]> = template
        .iter()
        .map(|p| [(p[0] - mf[0]) as f32, (p[1] - mf[1]) as f32])
        .collect();
    let norm: f32 = fc.iter().map(|p| p[0] * p[0] + p[1] * p[1]).sum();
    let col = |v: Vec<f32>| Tensor::<3>::from_data(TensorData::new(v, [1, 5, 1]), &device);
    let (fx, fy) = (
        col(fc.iter().map(|p| p[0]).collect()),
        col(fc.iter().map(|p| p[1]).collect()),
    );
    let mt = five.clone().mean_dim(1); // [N, 1, 2]
    let tc = five - mt.clone();
    let tx = tc.clone().slice([0..n, 0..5, 0..1]);
    let ty = tc.slice([0..n, 0..5, 1..2]);
    // Complex least squares: image − mt ≈ (a + ic)(template − mf).
    let a = (fx.clone() * tx.clone() + fy.clone() * ty.clone())
        .sum_dim(1)
        .reshape([n, 1])
        / norm;
    let c = (fx * ty - fy * tx).sum_dim(1).reshape([n, 1]) / norm;
    let mtx = mt.clone().slice([0..n, 0..1, 0..1]).reshape([n, 1]);
    let mty = mt.slice([0..n, 0..1, 1..2]).reshape([n, 1]);
    let grid = |axis: usize, centre: f64| -> Tensor<2> {
        let values: Vec<f32> = (0..size * size)
            .map(|p| {
                let (i, j) = (p / size, p % size);
                let v = if axis == 0 { j } else { i } as f64 + 0.5;
                (v - centre) as f32
            })
            .collect();
        Tensor::from_data(TensorData::new(values, [1, size * size]), &device)
    };
    let (gx, gy) = (grid(0, mf[0]), grid(1, mf[1]));
    let x = a.clone() * gx.clone() - c.clone() * gy.clone() + mtx;
    let y = c * gx + a * gy + mty;
    let inside = x.clone().greater_equal_elem(0.0).float()
        * x.clone().lower_equal_elem(w as f32).float()
        * y.clone().greater_equal_elem(0.0).float()
        * y.clone().lower_equal_elem(h as f32).float();
    let uv = Tensor::stack::<3>(vec![x / w as f32, y / h as f32], 2).reshape([n, size, size, 2]);
    let crops = render::texture(images, uv, Boundary::Clamp)?;
    Ok(crops * inside.reshape([n, size, size, 1]))
}

/// A uniform grey background `[N, R, R, 3]`.
pub fn grey(n: usize, resolution: usize, device: &Device) -> Tensor<4> {
    Tensor::ones([n, resolution, resolution, 3], device) * 0.5
}
