//! A small texture generator with weights drawn from a seeded SplitMix64 (not from a backend's
//! random source, so every backend builds the same network), its input latents, and reference
//! values of its output computed once on the CPU backend. The native suite checks the CPU still
//! gives them; the browser suite checks WebGPU does.

use burn::module::{Module, ModuleMapper, Param};
use burn::tensor::{Device, Tensor, TensorData};
use ganfit::texture::pggan::{Generator, PgganConfig, Stage};
use ganfit::util::rng::SplitMix64;

pub fn config() -> PgganConfig {
    PgganConfig {
        latent: 16,
        resolution: 16,
        aspect: 2,
        base_channels: 16,
        full_channel_levels: 1,
        min_channels: 8,
    }
}

struct Seeded(SplitMix64);

impl ModuleMapper for Seeded {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let rng = &mut self.0;
        param.map(|t| {
            let shape = t.shape();
            // Biases get small values too, so that a backend dropping them would show.
            let values: Vec<f32> = (0..shape.num_elements())
                .map(|_| rng.normal() * 0.5)
                .collect();
            Tensor::from_data(TensorData::new(values, shape), &t.device())
        })
    }
}

pub fn generator(device: &Device) -> Generator {
    Generator::new(&config(), device).map(&mut Seeded(SplitMix64::new(7)))
}

pub fn latents(device: &Device) -> Tensor<2> {
    let mut rng = SplitMix64::new(11);
    let values: Vec<f32> = (0..2 * config().latent).map(|_| rng.normal()).collect();
    Tensor::from_data(TensorData::new(values, [2, config().latent]), device)
}

/// The fully grown output and one mid-fade-in stage, as the fitter and training run them.
pub fn stages() -> [Stage; 2] {
    [
        Stage::full(&config()),
        Stage {
            level: 1,
            alpha: 0.3,
        },
    ]
}

/// Every 97th value of an output (`[2, 3, H, 2H]`, NCHW), and its mean absolute value.
pub fn probe(values: &[f32]) -> Vec<f32> {
    let mut out: Vec<f32> = values.iter().step_by(97).copied().collect();
    out.push(values.iter().map(|v| v.abs()).sum::<f32>() / values.len() as f32);
    out
}

/// `probe` of the outputs at `stages()`, on the CPU backend.
pub const EXPECTED: [&[f32]; 2] = [
    &[
        -0.6128254,
        -0.20983648,
        -0.60350734,
        -0.4203549,
        0.07548953,
        -0.17204957,
        0.1921667,
        0.056806102,
        0.14652254,
        -0.072167724,
        -0.19572036,
        -1.3570426,
        -1.370607,
        -0.8575301,
        -0.7595776,
        -1.2175224,
        -0.6105152,
        -0.57560086,
        -0.51999336,
        -0.52052337,
        -0.23621175,
        -0.20364738,
        0.12978004,
        0.2179087,
        0.14959954,
        0.2437772,
        -0.056251988,
        -1.335324,
        -1.2843986,
        -1.3286576,
        -1.2117093,
        -0.7664633,
        0.57024795,
    ],
    &[
        0.4645066,
        -0.1789112,
        0.35209215,
        -0.33879885,
        -0.073864534,
        0.13224259,
        0.63536596,
        -0.1681183,
        0.42264035,
    ],
];

/// The largest difference between two probes (infinite when their lengths differ).
pub fn max_gap(a: &[f32], b: &[f32]) -> f32 {
    if a.len() != b.len() {
        return f32::INFINITY;
    }
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}
