//! The UV texture generator: a progressive-growing GAN (Karras et al. 2018, "Progressive Growing
//! of GANs") in burn, written once for training (native), the fitter and the browser.
//!
//! PGGAN's ingredients are all here: pixelwise feature normalisation in the generator, the
//! equalised learning rate (weights drawn from N(0, 1) and scaled by He's constant at run time,
//! so Adam's per-parameter step sizes treat every layer alike), minibatch standard deviation in
//! the discriminator, and growth from 4×4 to the final resolution with a linear fade-in of each
//! new block. Images are NCHW RGB in about [-1, 1].

use burn::module::{Module, Param};
use burn::tensor::activation::leaky_relu;
use burn::tensor::module::{avg_pool2d, conv2d};
use burn::tensor::ops::{AvgPoolOptions, ConvOptions};
use burn::tensor::{Device, Distribution, Tensor, TensorData};
use serde::{Deserialize, Serialize};

const LRELU: f64 = 0.2;

/// Shape of a generator/discriminator pair.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PgganConfig {
    /// Latent size (512 as in GANFit and PGGAN).
    pub latent: usize,
    /// Final output height; a power of two ≥ 8.
    pub resolution: usize,
    /// Width ÷ height of the outputs: the face model's UV atlas (2 for ICT's face and
    /// back-of-head tiles side by side).
    #[serde(default = "one")]
    pub aspect: usize,
    /// Channels of the 4×4 block; halved per level above `full_channel_levels`.
    pub base_channels: usize,
    /// Number of levels (from 4×4) that keep `base_channels`.
    pub full_channel_levels: usize,
    /// Smallest channel count of any block.
    pub min_channels: usize,
}

fn one() -> usize {
    1
}

impl Default for PgganConfig {
    fn default() -> Self {
        Self {
            latent: 512,
            resolution: 256,
            aspect: 2,
            base_channels: 256,
            full_channel_levels: 4,
            min_channels: 32,
        }
    }
}

/// Largest output height a generator file may declare.
pub const MAX_RESOLUTION: usize = 2048;
/// Largest latent size or channel count a generator file may declare.
pub const MAX_WIDTH: usize = 4096;
/// Largest width ÷ height of the outputs.
pub const MAX_ASPECT: usize = 8;

impl PgganConfig {
    /// Number of resolution levels: 4×4 is level 0, `resolution` is `levels() - 1`.
    pub fn levels(&self) -> usize {
        (self.resolution.trailing_zeros() - 1) as usize
    }

    /// Channels of the block at `level`.
    pub fn channels(&self, level: usize) -> usize {
        if level < self.full_channel_levels {
            self.base_channels
        } else {
            (self.base_channels >> (level + 1 - self.full_channel_levels)).max(self.min_channels)
        }
    }

    /// Checks the configuration before anything is allocated from it: a file's metadata drives
    /// these numbers, so each has an upper bound far above any trainable generator.
    pub fn validate(&self) -> Result<(), String> {
        if !self.resolution.is_power_of_two() || !(8..=MAX_RESOLUTION).contains(&self.resolution) {
            return Err(format!(
                "resolution {} must be a power of two from 8 to {MAX_RESOLUTION}",
                self.resolution
            ));
        }
        if self.latent == 0 || self.base_channels == 0 || self.min_channels == 0 || self.aspect == 0
        {
            return Err("latent and channel counts must be positive".into());
        }
        if self.latent > MAX_WIDTH || self.base_channels > MAX_WIDTH || self.aspect > MAX_ASPECT {
            return Err(format!(
                "latent {} and channels {} must be at most {MAX_WIDTH}, aspect {} at most \
                 {MAX_ASPECT}",
                self.latent, self.base_channels, self.aspect
            ));
        }
        if self.min_channels > self.base_channels {
            return Err(format!(
                "min_channels {} exceeds base_channels {}",
                self.min_channels, self.base_channels
            ));
        }
        Ok(())
    }

    /// The generator's weights, biases aside (each stored in at least 2 bytes, as f16): what a
    /// file must be large enough to hold before a generator is built from its metadata.
    pub fn generator_weights(&self) -> u64 {
        let (c0, aspect, latent) = (
            self.channels(0) as u64,
            self.aspect as u64,
            self.latent as u64,
        );
        let blocks: u64 = (0..self.levels())
            .map(|level| {
                let c = self.channels(level) as u64;
                let c_in = if level == 0 {
                    c0
                } else {
                    self.channels(level - 1) as u64
                };
                9 * c_in * c + 9 * c * c + 3 * c
            })
            .sum();
        latent * c0 * 16 * aspect + blocks
    }
}

/// Where in the growth schedule a forward pass runs: output side `4 << level`, with the
/// newest block blended in by `alpha` (1 = fully grown).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Stage {
    pub level: usize,
    pub alpha: f32,
}

impl Stage {
    pub fn full(config: &PgganConfig) -> Self {
        Self {
            level: config.levels() - 1,
            alpha: 1.0,
        }
    }

    /// Output height at this stage (the width is `aspect` times more).
    pub fn resolution(&self) -> usize {
        4 << self.level
    }
}

/// Convolution with the equalised learning rate.
#[derive(Module, Debug)]
pub struct EqConv2d {
    pub weight: Param<Tensor<4>>,
    pub bias: Param<Tensor<1>>,
    #[module(skip)]
    scale: f32,
    #[module(skip)]
    padding: usize,
}

impl EqConv2d {
    pub fn new(channels_in: usize, channels_out: usize, kernel: usize, device: &Device) -> Self {
        let weight = Tensor::random(
            [channels_out, channels_in, kernel, kernel],
            Distribution::Normal(0.0, 1.0),
            device,
        );
        Self {
            weight: Param::from_tensor(weight),
            bias: Param::from_tensor(Tensor::zeros([channels_out], device)),
            scale: (2.0 / (channels_in * kernel * kernel) as f32).sqrt(),
            padding: kernel / 2,
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let p = self.padding;
        conv2d(
            x,
            self.weight.val() * self.scale,
            Some(self.bias.val()),
            ConvOptions::new([1, 1], [p, p], [1, 1], 1),
        )
    }
}

/// Fully connected layer with the equalised learning rate.
#[derive(Module, Debug)]
pub struct EqLinear {
    pub weight: Param<Tensor<2>>,
    pub bias: Param<Tensor<1>>,
    #[module(skip)]
    scale: f32,
}

impl EqLinear {
    pub fn new(inputs: usize, outputs: usize, gain: f32, device: &Device) -> Self {
        Self {
            weight: Param::from_tensor(Tensor::random(
                [inputs, outputs],
                Distribution::Normal(0.0, 1.0),
                device,
            )),
            bias: Param::from_tensor(Tensor::zeros([outputs], device)),
            scale: gain * (1.0 / inputs as f32).sqrt(),
        }
    }

    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let [_, n] = self.weight.dims();
        x.matmul(self.weight.val() * self.scale) + self.bias.val().reshape([1, n])
    }
}

/// Normalises each pixel's feature vector to unit average square (PGGAN §4.2).
pub fn pixel_norm(x: Tensor<4>) -> Tensor<4> {
    let mean_square = x.clone().powi_scalar(2).mean_dim(1);
    x / (mean_square + 1e-8).sqrt()
}

fn upsample2(x: Tensor<4>) -> Tensor<4> {
    let [b, c, h, w] = x.dims();
    x.reshape([b, c, h, 1, w, 1])
        .repeat_dim(3, 2)
        .repeat_dim(5, 2)
        .reshape([b, c, 2 * h, 2 * w])
}

/// Channels the discriminator reads: the texture times its confidence mask (3), the mask (1)
/// and the texel's UV position (2). A photo's unwrap is only known where the photo saw it; the
/// rest is mirror or push-pull fill, which the discriminator must not learn to call real. Fakes
/// are seen through the real batch's masks, so both sides show the same texels, and the
/// position tells the discriminator which part of the face a texel is.
pub const DISCRIMINATOR_INPUTS: usize = 6;

/// The discriminator's input `[B, 6, H, W]` from textures `[B, 3, H, W]` in [-1, 1] and masks
/// `[B, 1, H, W]` in [0, 1].
pub fn discriminator_input(images: Tensor<4>, masks: Tensor<4>) -> Tensor<4> {
    let [b, _, h, w] = images.dims();
    let position = uv_position(b, h, w, &images.device());
    Tensor::cat(vec![images * masks.clone(), masks, position], 1)
}

/// Each texel's (u, v) position in [-1, 1], `[B, 2, H, W]`.
fn uv_position(b: usize, h: usize, w: usize, device: &Device) -> Tensor<4> {
    let along = |n: usize, i: usize| 2.0 * i as f32 / (n.max(2) - 1) as f32 - 1.0;
    let mut values = Vec::with_capacity(2 * h * w);
    values.extend((0..h * w).map(|p| along(w, p % w)));
    values.extend((0..h * w).map(|p| along(h, p / w)));
    Tensor::<4>::from_data(TensorData::new(values, [1, 2, h, w]), device).repeat_dim(0, b)
}

fn downsample2(x: Tensor<4>) -> Tensor<4> {
    avg_pool2d(x, AvgPoolOptions::new([2, 2]))
}

fn act(x: Tensor<4>) -> Tensor<4> {
    leaky_relu(x, LRELU)
}

/// One generator block: (upsample) conv, conv, each followed by leaky ReLU and pixel norm.
#[derive(Module, Debug)]
pub struct GeneratorBlock {
    pub conv1: EqConv2d,
    pub conv2: EqConv2d,
    pub to_rgb: EqConv2d,
}

#[derive(Module, Debug)]
pub struct Generator {
    /// Latent → 4×4 feature map.
    pub input: EqLinear,
    pub blocks: Vec<GeneratorBlock>,
    #[module(skip)]
    config: PgganConfig,
}

impl Generator {
    pub fn new(config: &PgganConfig, device: &Device) -> Self {
        let c0 = config.channels(0);
        let input = EqLinear::new(
            config.latent,
            c0 * 16 * config.aspect,
            std::f32::consts::SQRT_2 / 4.0,
            device,
        );
        let blocks = (0..config.levels())
            .map(|level| {
                let c_in = if level == 0 {
                    c0
                } else {
                    config.channels(level - 1)
                };
                let c = config.channels(level);
                GeneratorBlock {
                    // The 4×4 block's first layer is the dense input; its conv1 refines it.
                    conv1: EqConv2d::new(c_in, c, 3, device),
                    conv2: EqConv2d::new(c, c, 3, device),
                    to_rgb: EqConv2d::new(c, 3, 1, device),
                }
            })
            .collect();
        Self {
            input,
            blocks,
            config: config.clone(),
        }
    }

    pub fn config(&self) -> &PgganConfig {
        &self.config
    }

    /// Images `[B, 3, R, aspect·R]` (R = stage resolution) from latents `[B, latent]`.
    pub fn forward(&self, latent: Tensor<2>, stage: Stage) -> Tensor<4> {
        let [b, _] = latent.dims();
        let c0 = self.config.channels(0);
        let z = latent.clone() / (latent.powi_scalar(2).mean_dim(1) + 1e-8).sqrt();
        let mut x = pixel_norm(act(self.input.forward(z).reshape([
            b,
            c0,
            4,
            4 * self.config.aspect,
        ])));
        let mut previous_rgb = None;
        for (level, block) in self.blocks.iter().enumerate().take(stage.level + 1) {
            if level > 0 {
                if level == stage.level && stage.alpha < 1.0 {
                    previous_rgb =
                        Some(upsample2(self.blocks[level - 1].to_rgb.forward(x.clone())));
                }
                x = upsample2(x);
            }
            x = pixel_norm(act(block.conv1.forward(x)));
            x = pixel_norm(act(block.conv2.forward(x)));
        }
        let rgb = self.blocks[stage.level].to_rgb.forward(x);
        match previous_rgb {
            Some(old) => old * (1.0 - stage.alpha) + rgb * stage.alpha,
            None => rgb,
        }
    }
}

/// One discriminator block: conv, conv, downsample (the 4×4 block ends in dense layers).
#[derive(Module, Debug)]
pub struct DiscriminatorBlock {
    pub from_rgb: EqConv2d,
    pub conv1: EqConv2d,
    pub conv2: EqConv2d,
}

#[derive(Module, Debug)]
pub struct Discriminator {
    pub blocks: Vec<DiscriminatorBlock>,
    /// 4×4 features (+ minibatch stddev) → hidden → score.
    pub dense: EqLinear,
    pub output: EqLinear,
    #[module(skip)]
    config: PgganConfig,
}

impl Discriminator {
    pub fn new(config: &PgganConfig, device: &Device) -> Self {
        let blocks = (0..config.levels())
            .map(|level| {
                let c = config.channels(level);
                if level == 0 {
                    // Input channels + the minibatch-stddev feature.
                    DiscriminatorBlock {
                        from_rgb: EqConv2d::new(DISCRIMINATOR_INPUTS, c, 1, device),
                        conv1: EqConv2d::new(c + 1, c, 3, device),
                        conv2: EqConv2d::new(c, c, 3, device),
                    }
                } else {
                    let c_out = config.channels(level - 1);
                    DiscriminatorBlock {
                        from_rgb: EqConv2d::new(DISCRIMINATOR_INPUTS, c, 1, device),
                        conv1: EqConv2d::new(c, c, 3, device),
                        conv2: EqConv2d::new(c, c_out, 3, device),
                    }
                }
            })
            .collect();
        let c0 = config.channels(0);
        Self {
            blocks,
            dense: EqLinear::new(
                c0 * 16 * config.aspect,
                c0,
                std::f32::consts::SQRT_2,
                device,
            ),
            output: EqLinear::new(c0, 1, 1.0, device),
            config: config.clone(),
        }
    }

    /// Scores `[B, 1]` of inputs `[B, DISCRIMINATOR_INPUTS, R, aspect·R]` at `stage` (see
    /// [`discriminator_input`]).
    pub fn forward(&self, images: Tensor<4>, stage: Stage) -> Tensor<2> {
        let top = stage.level;
        let mut x = act(self.blocks[top].from_rgb.forward(images.clone()));
        for level in (1..=top).rev() {
            let block = &self.blocks[level];
            x = act(block.conv1.forward(x));
            x = downsample2(act(block.conv2.forward(x)));
            if level == top && stage.alpha < 1.0 {
                let skip = act(self.blocks[level - 1]
                    .from_rgb
                    .forward(downsample2(images.clone())));
                x = skip * (1.0 - stage.alpha) + x * stage.alpha;
            }
        }
        let x = minibatch_stddev(x);
        let block = &self.blocks[0];
        let x = act(block.conv1.forward(x));
        let x = act(block.conv2.forward(x));
        let [b, c, h, w] = x.dims();
        let x = leaky_relu(self.dense.forward(x.reshape([b, c * h * w])), LRELU);
        self.output.forward(x)
    }
}

/// Appends the average (over features and pixels) of the per-feature standard deviation across
/// the minibatch as one more constant feature map (PGGAN §3): it lets the discriminator see
/// batch diversity and so discourages mode collapse.
pub fn minibatch_stddev(x: Tensor<4>) -> Tensor<4> {
    let [b, _, h, w] = x.dims();
    let mean = x.clone().mean_dim(0);
    let std = ((x.clone() - mean).powi_scalar(2).mean_dim(0) + 1e-8).sqrt();
    let feature = std
        .mean()
        .reshape([1, 1, 1, 1])
        .repeat_dim(0, b)
        .repeat_dim(2, h)
        .repeat_dim(3, w);
    Tensor::cat(vec![x, feature], 1)
}
