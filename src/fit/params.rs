//! The optimised parameters (GANFit's p_s, p_e, p_t, p_c, p_l) and their serialisable form.

use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use super::scene::Camera;
use crate::render::shading::PhongLight;
use crate::util::adam::Slot;

/// Defines [`ParamSet`] from one list of the parameter groups: the struct, and the conversions
/// to and from an array in that order, on which every other method is built.
macro_rules! param_groups {
    ($($(#[$doc:meta])* $name:ident,)+) => {
        /// One `T` per parameter group (GANFit's p_s, p_e, p_t, the camera p_c and the light p_l):
        /// the device values as Adam [`Slot`]s ([`Params`]), a step's gradient-recording leaves
        /// ([`Leaves`]), learning rates, snapshots. Shape and texture have one row per person
        /// (`persons` = 1 when the photos show one person), the rest one row per photo.
        #[derive(Debug, Clone, Copy, PartialEq, Default)]
        pub struct ParamSet<T> {
            $($(#[$doc])* pub $name: T,)+
        }

        impl<T> ParamSet<T> {
            /// The groups' names, in the order of [`ParamSet::into_array`].
            pub const NAMES: [&'static str; GROUPS] = [$(stringify!($name)),+];

            pub fn into_array(self) -> [T; GROUPS] {
                [$(self.$name),+]
            }

            pub fn from_array(array: [T; GROUPS]) -> Self {
                let [$($name),+] = array;
                Self { $($name),+ }
            }

            pub fn refs(&self) -> ParamSet<&T> {
                ParamSet { $($name: &self.$name),+ }
            }

            pub fn refs_mut(&mut self) -> ParamSet<&mut T> {
                ParamSet { $($name: &mut self.$name),+ }
            }
        }
    };
}

/// How many parameter groups a fit optimises.
pub const GROUPS: usize = 10;

param_groups! {
    identity,
    expression,
    texture,
    /// Euler angles (pitch, yaw, roll), radians.
    angles,
    /// Camera-space translation, mm.
    translation,
    /// ln(focal length in pixels of the working crop).
    log_focal,
    /// Ambient RGB.
    ambient,
    /// Directional light RGB.
    diffuse,
    /// Direction towards the light, camera space (normalised when used).
    light_direction,
    /// Specular intensity.
    specular,
}

impl<T> ParamSet<T> {
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> ParamSet<U> {
        ParamSet::from_array(self.into_array().map(f))
    }

    /// Pairs each group's value with the other set's.
    pub fn zip<U>(self, other: ParamSet<U>) -> ParamSet<(T, U)> {
        let mut other = other.into_array().into_iter();
        self.map(|t| (t, other.next().expect("both sets have every group")))
    }

    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.refs().into_array().into_iter()
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut T> {
        self.refs_mut().into_array().into_iter()
    }
}

/// The optimised parameters on the device.
pub type Params = ParamSet<Slot>;

/// One step's parameters as gradient-recording leaves (or any set of parameter values).
pub type Leaves = ParamSet<Tensor<2>>;

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

impl PhotoParams {
    /// The head's yaw (degrees; Euler angles as `util::rotation` builds them), the turn that
    /// AFLW2000-3D's poses and `ganfit eval landmarks`' yaw bins measure.
    pub fn yaw_degrees(&self) -> f32 {
        self.angles[1].to_degrees()
    }
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
#[serde(deny_unknown_fields)]
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
    pub fn new(
        persons: usize,
        initial: &[Initial],
        identity: usize,
        expression: usize,
        texture: usize,
        device: &Device,
    ) -> Self {
        let n = initial.len();
        let rows = |f: &dyn Fn(&Initial) -> Vec<f32>, cols| {
            tensor(initial.iter().flat_map(f).collect(), n, cols, device)
        };
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

    /// Sets every group's learning rate (0 holds a group).
    pub fn set_rates(&mut self, rates: &Rates) {
        for (slot, lr) in self.refs_mut().zip(rates.per_group()).into_array() {
            slot.lr = lr;
        }
    }

    pub fn photos(&self) -> usize {
        self.expression.value.dims()[0]
    }

    /// The current values as fresh leaves that record gradients for one step.
    pub fn leaves(&self) -> Leaves {
        self.refs().map(Slot::leaf)
    }

    /// The current values (also the "last good" state kept against divergence).
    pub fn values(&self) -> Leaves {
        self.refs().map(|s| s.value.clone())
    }

    pub fn restore(&mut self, values: &Leaves) {
        for (slot, value) in self.refs_mut().zip(values.refs()).into_array() {
            slot.value = value.clone();
        }
    }

    /// Reads every parameter back (asynchronously) into per-photo plain values.
    pub async fn read(&self) -> crate::Result<Vec<PhotoParams>> {
        let n = self.photos();
        let mut read = Vec::with_capacity(GROUPS);
        for slot in self.iter() {
            read.push(crate::device::read_floats(slot.value.clone()).await?);
        }
        let read = ParamSet::from_array(read.try_into().expect("one read per group"));
        let [persons, ni] = read.identity.1;
        let [_, ne] = read.expression.1;
        let [_, nt] = read.texture.1;
        let v = read.map(|(values, _)| values);
        let three = |v: &[f32], i: usize| [v[3 * i], v[3 * i + 1], v[3 * i + 2]];
        Ok((0..n)
            .map(|i| {
                let person = if persons == 1 { 0 } else { i };
                let d = three(&v.light_direction, i);
                let norm = (d[0] * d[0] + d[1] * d[1] + d[2] * d[2]).sqrt().max(1e-12);
                PhotoParams {
                    identity: v.identity[person * ni..(person + 1) * ni].to_vec(),
                    expression: v.expression[i * ne..(i + 1) * ne].to_vec(),
                    texture: v.texture[person * nt..(person + 1) * nt].to_vec(),
                    angles: three(&v.angles, i),
                    translation_mm: three(&v.translation, i),
                    focal_px: v.log_focal[i].exp(),
                    ambient: three(&v.ambient, i),
                    diffuse: three(&v.diffuse, i),
                    light_direction: d.map(|c| c / norm),
                    specular: v.specular[i],
                }
            })
            .collect())
    }
}

impl Leaves {
    /// The camera these values describe.
    pub fn camera(&self) -> Camera {
        Camera {
            angles: self.angles.clone(),
            translation: self.translation.clone(),
            focal: self.log_focal.clone().exp(),
        }
    }

    /// The light these values describe, with skin's fixed [`SHININESS`].
    pub fn light(&self) -> PhongLight {
        PhongLight {
            ambient: self.ambient.clone(),
            diffuse: self.diffuse.clone(),
            direction: self.light_direction.clone(),
            specular: self.specular.clone(),
            shininess: SHININESS,
        }
    }
}

/// Phong exponent of skin in every render (GANFit fits colour and direction, not this).
pub const SHININESS: f32 = 20.0;

impl Rates {
    /// Every rate with its name, in declaration order.
    pub fn named(&self) -> [(&'static str, f32); 7] {
        [
            ("identity", self.identity),
            ("expression", self.expression),
            ("texture", self.texture),
            ("angles", self.angles),
            ("translation", self.translation),
            ("log_focal", self.log_focal),
            ("light", self.light),
        ]
    }

    /// The rate of each group (the four light groups share one).
    pub fn per_group(&self) -> ParamSet<f32> {
        ParamSet {
            identity: self.identity,
            expression: self.expression,
            texture: self.texture,
            angles: self.angles,
            translation: self.translation,
            log_focal: self.log_focal,
            ambient: self.light,
            diffuse: self.light,
            light_direction: self.light,
            specular: self.light,
        }
    }
}

/// `tensor` on `device`, recording gradients there when `device` does.
pub fn on_device(tensor: Tensor<2>, device: &Device) -> Tensor<2> {
    let moved = tensor.to_device(device);
    if device.is_autodiff() {
        moved.autodiff()
    } else {
        moved
    }
}

/// Repeats shared rows `[1, D]` to one per photo `[N, D]` (identity when already `[N, D]`).
pub fn per_photo(shared: Tensor<2>, photos: usize) -> Tensor<2> {
    let [rows, _] = shared.dims();
    if rows == photos {
        shared
    } else {
        shared.repeat_dim(0, photos)
    }
}
