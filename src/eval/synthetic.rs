//! Synthetic faces with known shape: random identity, expression, texture, pose (yaw up to
//! ±60°) and light, rendered by the project's own renderer over a random gradient, for
//! `ganfit eval synthetic`.

use burn::tensor::{Tensor, TensorData};
use image::RgbImage;

use crate::error::Result;
use crate::fit::{Models, scene};
use crate::render::shading::{PhongLight, normalize};
use crate::util::rng::SplitMix64;

/// A rendered synthetic face and its ground truth.
#[derive(Debug, Clone)]
pub struct SyntheticFace {
    pub identity: Vec<f32>,
    pub expression: Vec<f32>,
    pub texture: Vec<f32>,
    pub yaw_degrees: f32,
    pub image: RgbImage,
    /// Every shape vertex of the true shape projected into the image, pixels (pixel centres at
    /// +0.5, as landmarks), visible or not.
    pub vertices_2d: Vec<[f32; 2]>,
}

/// The person of a synthetic face: shape and texture coefficients.
#[derive(Debug, Clone)]
pub struct SyntheticPerson {
    pub identity: Vec<f32>,
    pub texture: Vec<f32>,
}

pub fn random_person(models: &Models, rng: &mut SplitMix64) -> SyntheticPerson {
    let identity = (0..models.face.num_identity())
        .map(|_| 0.8 * rng.normal())
        .collect();
    let texture = (0..models.texture.parameters())
        .map(|_| 0.6 * rng.normal())
        .collect();
    SyntheticPerson { identity, texture }
}

/// Renders `person` with a random expression, pose, light and background at `size²`.
pub async fn render_face(
    models: &Models,
    person: &SyntheticPerson,
    rng: &mut SplitMix64,
    size: usize,
) -> Result<SyntheticFace> {
    let device = models.face.device().clone();
    let t2 = |v: Vec<f32>, c: usize| Tensor::<2>::from_data(TensorData::new(v, [1, c]), &device);
    let ne = models.face.num_expression();
    let expression: Vec<f32> = (0..ne)
        .map(|_| {
            if rng.uniform() < 0.1 {
                rng.range(0.0, 0.5)
            } else {
                0.0
            }
        })
        .collect();
    let yaw = rng.range(-60.0f32, 60.0).to_radians();
    let angles = vec![rng.range(-0.25, 0.25), yaw, rng.range(-0.17, 0.17)];
    let focal = 1.8 * size as f32;
    // The face (about 150 mm wide) spans half the image.
    let distance = focal * 230.0 / (0.5 * size as f32);
    let translation = vec![rng.range(-10.0, 10.0), rng.range(-5.0, 15.0), -distance];
    let tint = [rng.range(0.9, 1.1), 1.0, rng.range(0.9, 1.1)];
    let ambient = rng.range(0.35, 0.65);
    let diffuse = rng.range(0.25, 0.55);
    let light = PhongLight {
        ambient: t2(tint.map(|t| t * ambient).to_vec(), 3),
        diffuse: t2(tint.map(|t| t * diffuse).to_vec(), 3),
        direction: normalize(
            t2(vec![rng.range(-0.7, 0.7), rng.range(-0.3, 0.8), 1.0], 3),
            1,
        ),
        specular: t2(vec![rng.range(0.0, 0.08)], 1),
        shininess: 20.0,
    };
    let camera = scene::Camera {
        angles: t2(angles, 3),
        translation: t2(translation, 3),
        focal: t2(vec![focal], 1),
    };
    let shape = models.face.vertices(
        t2(person.identity.clone(), models.face.num_identity()),
        t2(expression.clone(), ne),
    )?;
    let uv_map = models
        .texture
        .uv_map(t2(person.texture.clone(), models.texture.parameters()))?;
    let (top, bottom) = (
        [rng.uniform(), rng.uniform(), rng.uniform()],
        [rng.uniform(), rng.uniform(), rng.uniform()],
    );
    let background: Vec<f32> = (0..size * size)
        .flat_map(|p| {
            let f = (p / size) as f32 / size as f32;
            [0, 1, 2].map(|k| 0.2 + 0.6 * (top[k] * (1.0 - f) + bottom[k] * f))
        })
        .collect();
    let background =
        Tensor::<4>::from_data(TensorData::new(background, [1, size, size, 3]), &device);
    let (projected, _) =
        crate::device::read_floats(scene::project_vertices(shape.clone(), &camera, size)).await?;
    let rendered = scene::render(
        &models.face,
        shape,
        &camera,
        &light,
        uv_map,
        background,
        size,
    )?;
    let (values, _) = crate::device::read_floats(rendered.image.detach()).await?;
    let bytes = values
        .iter()
        .map(|v| (v.clamp(0.0, 1.0) * 255.0).round() as u8)
        .collect();
    let image = RgbImage::from_raw(size as u32, size as u32, bytes).expect("sized");
    Ok(SyntheticFace {
        identity: person.identity.clone(),
        expression,
        texture: person.texture.clone(),
        yaw_degrees: yaw.to_degrees(),
        image,
        vertices_2d: projected.chunks_exact(2).map(|p| [p[0], p[1]]).collect(),
    })
}
