//! The optimised parameters (GANFit's p_s, p_e, p_t, p_c, p_l) and their serialisable form.

use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use super::adam::Slot;

/// Parameters on the device as Adam slots. Shape and texture have one row per person
/// (`persons` = 1 when the photos show one person), the rest one row per photo.
#[derive(Debug, Clone)]
pub struct Params {
    pub identity: Slot,
    pub expression: Slot,
    pub texture: Slot,
    /// Euler angles (pitch, yaw, roll), radians.
    pub angles: Slot,
    /// Camera-space translation, mm.
    pub translation: Slot,
    /// ln(focal length in pixels of the working crop).
    pub log_focal: Slot,
    /// Ambient RGB.
    pub ambient: Slot,
    /// Directional light RGB.
    pub diffuse: Slot,
    /// Direction towards the light, camera space (normalised when used).
    pub light_direction: Slot,
    /// Specular intensity.
    pub specular: Slot,
}

/// Plain values of one photo's parameters, as written to `params.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhotoParams {
    pub identity: Vec<f32>,
    pub expression: Vec<f32>,
    pub texture: Vec<f32>,
    pub angles: [f32; 3],
    pub translation_mm: [f32; 3],
    pub focal_px: f32,
    pub ambient: [f32; 3],
    pub diffuse: [f32; 3],
    pub light_direction: [f32; 3],
    pub specular: f32,
}

/// Initial values for one photo.
#[derive(Debug, Clone)]
pub struct Initial {
    pub angles: [f32; 3],
    pub translation: [f32; 3],
    pub focal: f32,
}

/// Learning rates of each group, for one stage.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Rates {
    pub identity: f32,
    pub expression: f32,
    pub texture: f32,
    pub angles: f32,
    pub translation: f32,
    pub log_focal: f32,
    pub light: f32,
}

fn tensor(values: Vec<f32>, rows: usize, cols: usize, device: &Device) -> Tensor<2> {
    Tensor::from_data(TensorData::new(values, [rows, cols]), device)
}

impl Params {
    pub fn new(persons: usize, initial: &[Initial], identity: usize, expression: usize, texture: usize, device: &Device) -> Self {
        let n = initial.len();
        let rows = |f: &dyn Fn(&Initial) -> Vec<f32>, cols| tensor(initial.iter().flat_map(f).collect(), n, cols, device);
        Self {
            identity: Slot::new(Tensor::zeros([persons, identity], device), 0.0),
            expression: Slot::new(Tensor::zeros([n, expression], device), 0.0),
            texture: Slot::new(Tensor::zeros([persons, texture], device), 0.0),
            angles: Slot::new(rows(&|i| i.angles.to_vec(), 3), 0.0),
            translation: Slot::new(rows(&|i| i.translation.to_vec(), 3), 0.0),
            log_focal: Slot::new(rows(&|i| vec![i.focal.ln()], 1), 0.0),
            ambient: Slot::new(tensor(vec![0.55; n * 3], n, 3, device), 0.0),
            diffuse: Slot::new(tensor(vec![0.45; n * 3], n, 3, device), 0.0),
            light_direction: Slot::new(tensor([0.0, 0.3, 1.0].repeat(n), n, 3, device), 0.0),
            specular: Slot::new(tensor(vec![0.03; n], n, 1, device), 0.0),
        }
    }

    pub fn set_rates(&mut self, r: &Rates) {
        self.identity.lr = r.identity;
        self.expression.lr = r.expression;
        self.texture.lr = r.texture;
        self.angles.lr = r.angles;
        self.translation.lr = r.translation;
        self.log_focal.lr = r.log_focal;
        self.ambient.lr = r.light;
        self.diffuse.lr = r.light;
        self.light_direction.lr = r.light;
        self.specular.lr = r.light;
    }

    pub fn slots_mut(&mut self) -> [&mut Slot; 10] {
        [
            &mut self.identity,
            &mut self.expression,
            &mut self.texture,
            &mut self.angles,
            &mut self.translation,
            &mut self.log_focal,
            &mut self.ambient,
            &mut self.diffuse,
            &mut self.light_direction,
            &mut self.specular,
        ]
    }

    pub fn slots(&self) -> [&Slot; 10] {
        [
            &self.identity,
            &self.expression,
            &self.texture,
            &self.angles,
            &self.translation,
            &self.log_focal,
            &self.ambient,
            &self.diffuse,
            &self.light_direction,
            &self.specular,
        ]
    }

    pub fn photos(&self) -> usize {
        self.expression.value.dims()[0]
    }

    /// Reads every parameter back (asynchronously) into per-photo plain values.
    pub async fn read(&self) -> crate::Result<Vec<PhotoParams>> {
        use crate::device::read_floats;
        let n = self.photos();
        let read = |s: &Slot| read_floats(s.value.clone());
        let (identity, [p, ni]) = read(&self.identity).await?;
        let (expression, [_, ne]) = read(&self.expression).await?;
        let (texture, [_, nt]) = read(&self.texture).await?;
        let (angles, _) = read(&self.angles).await?;
        let (translation, _) = read(&self.translation).await?;
        let (log_focal, _) = read(&self.log_focal).await?;
        let (ambient, _) = read(&self.ambient).await?;
        let (diffuse, _) = read(&self.diffuse).await?;
        let (direction, _) = read(&self.light_direction).await?;
        let (specular, _) = read(&self.specular).await?;
        let three = |v: &[f32], i: usize| [v[3 * i], v[3 * i + 1], v[3 * i + 2]];
        Ok((0..n)
            .map(|i| {
                let person = if p == 1 { 0 } else { i };
                let d = three(&direction, i);
                let norm = (d[0] * d[0] + d[1] * d[1] + d[2] * d[2]).sqrt().max(1e-12);
                PhotoParams {
                    identity: identity[person * ni..(person + 1) * ni].to_vec(),
                    expression: expression[i * ne..(i + 1) * ne].to_vec(),
                    texture: texture[person * nt..(person + 1) * nt].to_vec(),
                    angles: three(&angles, i),
                    translation_mm: three(&translation, i),
                    focal_px: log_focal[i].exp(),
                    ambient: three(&ambient, i),
                    diffuse: three(&diffuse, i),
                    light_direction: d.map(|c| c / norm),
                    specular: specular[i],
                }
            })
            .collect())
    }

    /// Copies of the current values (the "last good" state kept against divergence).
    pub fn snapshot(&self) -> Vec<Tensor<2>> {
        self.slots().iter().map(|s| s.value.clone()).collect()
    }

    pub fn restore(&mut self, snapshot: &[Tensor<2>]) {
        for (slot, value) in self.slots_mut().into_iter().zip(snapshot) {
            slot.value = value.clone();
        }
    }
}

/// Repeats shared rows `[1, D]` to one per photo `[N, D]` (identity when already `[N, D]`).
pub fn per_photo(shared: Tensor<2>, photos: usize) -> Tensor<2> {
    let [rows, _] = shared.dims();
    if rows == photos { shared } else { shared.repeat_dim(0, photos) }
}
