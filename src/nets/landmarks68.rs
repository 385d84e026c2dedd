//! 68 facial landmarks: face-api's `face_landmark_68_model` (four densely connected blocks of
//! depthwise-separable convolutions, 7×7 average pool, one fully connected layer) at 112×112.
//!
//! As face-api: the detection box is sliced from the photo (clipped, floored), zero-padded to a
//! centred square, resized to 112, normalised by `(x - mean RGB) / 255`. The outputs are the
//! points as fractions of the padded square. face-api maps them back with two approximations
//! (half the padding where it pads an odd difference unevenly, and the unfloored box origin);
//! [`SquareCrop::relative_to_image`] uses the crop actually taken, so the points here can differ
//! from face-api's by up to about 1 px while the network outputs agree.

use burn::module::Module;
use burn::nn::Linear;
use burn::nn::conv::Conv2d;
use burn::tensor::module::avg_pool2d;
use burn::tensor::ops::AvgPoolOptions;
use burn::tensor::{Device, Tensor, TensorData, activation::relu};
use image::RgbImage;

use super::align::SquareCrop;
use super::detector::Detection;
use super::layers::{self, Bias, ConvSpec, WeightSource};
use crate::device::read_floats;
use crate::error::{Error, Result};

/// The network's input side.
pub const INPUT_SIZE: usize = 112;
/// face-api's mean RGB (0–255), shared by the landmark and recognition networks.
pub const FACE_API_MEAN_RGB: [f32; 3] = [122.782, 117.001, 104.298];

/// 68 points `(x, y)` in image pixels, pixel centres at `+0.5` (see [`super::align`]).
pub type Points68 = [[f32; 2]; 68];

/// A depthwise-separable convolution (tf.separableConv2d), or a plain one without `depthwise`.
#[derive(Module, Debug)]
pub struct SeparableConv {
    depthwise: Option<Conv2d>,
    conv: Conv2d,
}

impl SeparableConv {
    fn build(
        source: &mut WeightSource,
        prefix: &str,
        channels: [usize; 2],
        stride: usize,
        separable: bool,
        device: &Device,
    ) -> Result<Self> {
        let bias = format!("{prefix}/bias");
        if !separable {
            let filters = format!("{prefix}/filters");
            let conv = layers::conv(
                source,
                ConvSpec::new(&filters, 3, channels, stride, Bias::Plain(&bias)),
                device,
            )?;
            return Ok(Self {
                depthwise: None,
                conv,
            });
        }
        let (dw, pw) = (
            format!("{prefix}/depthwise_filter"),
            format!("{prefix}/pointwise_filter"),
        );
        let depthwise = layers::conv(
            source,
            ConvSpec::depthwise(&dw, 3, channels[0], stride, Bias::None),
            device,
        )?;
        let conv = layers::conv(
            source,
            ConvSpec::new(&pw, 1, channels, 1, Bias::Plain(&bias)),
            device,
        )?;
        Ok(Self {
            depthwise: Some(depthwise),
            conv,
        })
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let x = match &self.depthwise {
            Some(d) => d.forward(x),
            None => x,
        };
        self.conv.forward(x)
    }
}

/// face-api's `denseBlock4`: each convolution sees the sum of all previous outputs.
#[derive(Module, Debug)]
pub struct DenseBlock {
    convs: Vec<SeparableConv>,
}

impl DenseBlock {
    fn build(
        source: &mut WeightSource,
        prefix: &str,
        channels: [usize; 2],
        first: bool,
        device: &Device,
    ) -> Result<Self> {
        let mut convs = vec![SeparableConv::build(
            source,
            &format!("{prefix}/conv0"),
            channels,
            2,
            !first,
            device,
        )?];
        for i in 1..4 {
            convs.push(SeparableConv::build(
                source,
                &format!("{prefix}/conv{i}"),
                [channels[1]; 2],
                1,
                true,
                device,
            )?);
        }
        Ok(Self { convs })
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let mut input = relu(self.convs[0].forward(x));
        // The sum is rectified only where it is fed on, never accumulated rectified.
        let mut total = input.clone();
        for conv in &self.convs[1..] {
            total = total + conv.forward(input);
            input = relu(total.clone());
        }
        input
    }
}

/// face-api's FaceLandmark68Net.
#[derive(Module, Debug)]
pub struct FaceLandmark68Net {
    blocks: Vec<DenseBlock>,
    fc: Linear,
}

impl FaceLandmark68Net {
    pub fn build(source: &mut WeightSource, device: &Device) -> Result<Self> {
        let channels = [3, 32, 64, 128, 256];
        let blocks = (0..4)
            .map(|i| {
                DenseBlock::build(
                    source,
                    &format!("dense{i}"),
                    [channels[i], channels[i + 1]],
                    i == 0,
                    device,
                )
            })
            .collect::<Result<_>>()?;
        let fc = layers::linear(source, "fc/weights", Some("fc/bias"), [256, 136], device)?;
        Ok(Self { blocks, fc })
    }

    /// NHWC `[B, 112, 112, 3]` in [0, 1] to `[B, 136]`: (x, y) of each point as a fraction of
    /// the input side.
    pub fn forward(&self, input: Tensor<4>) -> Result<Tensor<2>> {
        layers::check_input("the landmark network", &input, INPUT_SIZE)?;
        let device = input.device();
        let mean = Tensor::<1>::from_data(
            TensorData::new(FACE_API_MEAN_RGB.map(|m| m / 255.0).to_vec(), [3]),
            &device,
        );
        let mut x = layers::nhwc_to_nchw(input - mean.reshape([1, 1, 1, 3]));
        for block in &self.blocks {
            x = block.forward(x);
        }
        let pooled = avg_pool2d(x, AvgPoolOptions::new([7, 7]).with_stride([2, 2]));
        let [b, c, h, w] = pooled.dims();
        Ok(self.fc.forward(pooled.reshape([b, c * h * w])))
    }

    /// The 68 points of a detected face, in image pixels.
    pub async fn landmarks68(
        &self,
        image: &RgbImage,
        face: &Detection,
        device: &Device,
    ) -> Result<Points68> {
        let crop = input_crop(face, image.width(), image.height())?;
        let input = Tensor::<4>::from_data(
            TensorData::new(crop.sample(image), [1, INPUT_SIZE, INPUT_SIZE, 3]),
            device,
        );
        let (raw, _) = read_floats(self.forward(input)?).await?;
        points_in_image(&raw, &crop)
    }
}

/// The crop face-api feeds the landmark network for a detection.
pub fn input_crop(face: &Detection, image_width: u32, image_height: u32) -> Result<SquareCrop> {
    let rect = face
        .rect
        .clip_to_pixels(image_width, image_height)
        .ok_or(Error::NoFace)?;
    Ok(SquareCrop::new(rect, INPUT_SIZE, true))
}

/// Network outputs (136 fractions of the input side) to image pixels.
pub fn points_in_image(raw: &[f32], crop: &SquareCrop) -> Result<Points68> {
    if raw.len() != 136 || raw.iter().any(|v| !v.is_finite()) {
        return Err(Error::Execution(format!(
            "the landmark network returned {} values (finite: {})",
            raw.len(),
            raw.iter().all(|v| v.is_finite())
        )));
    }
    Ok(std::array::from_fn(|i| {
        let [x, y] = crop.relative_to_image([raw[2 * i] as f64, raw[2 * i + 1] as f64]);
        [x as f32, y as f32]
    }))
}
