//! The second identity network: face-api's `face_recognition_model`, a ResNet-34-like network
//! (dlib's face descriptor architecture) on 150×150 chips, 128-d descriptor.
//!
//! Input as face-api: the chip of [`super::align::faceapi_chip`], `(x - mean RGB) / 255`.
//! Every convolution is followed by a bias and a per-channel scale layer (folded into the
//! filter by the converter). Down-sampling blocks add an average-pooled, zero-channel-padded
//! shortcut; when the strided convolution comes out one row/column short (3×3 from 8×8, 1×1
//! from 4×4) face-api pads it with zeros at the bottom/right, and so does this port.

use burn::module::Module;
use burn::nn::Linear;
use burn::nn::conv::Conv2d;
use burn::tensor::module::{avg_pool2d, max_pool2d};
use burn::tensor::ops::{AvgPoolOptions, MaxPoolOptions, PadMode};
use burn::tensor::{Device, Tensor, TensorData, activation::relu};

use super::IdentityOutput;
use super::landmarks68::FACE_API_MEAN_RGB;
use super::layers::{self, Bias, ConvSpec, WeightSource};
use crate::error::Result;

/// The network's input side.
pub const INPUT_SIZE: usize = 150;
/// Descriptor length.
pub const EMBEDDING_SIZE: usize = 128;

fn conv_layer(
    source: &mut WeightSource,
    prefix: &str,
    kernel: usize,
    channels: [usize; 2],
    stride: usize,
    device: &Device,
) -> Result<Conv2d> {
    let names = ["conv/filters", "conv/bias", "scale/weights", "scale/biases"]
        .map(|n| format!("{prefix}/{n}"));
    let bias = Bias::Scaled {
        bias: &names[1],
        scale: &names[2],
        shift: &names[3],
    };
    let spec = ConvSpec::new(&names[0], kernel, channels, stride, bias);
    // face-api's strided convolutions use VALID padding, the others SAME.
    layers::conv(
        source,
        if stride == 2 { spec.valid() } else { spec },
        device,
    )
}

/// Two 3×3 convolutions with a shortcut.
#[derive(Module, Debug)]
pub struct Residual {
    conv1: Conv2d,
    conv2: Conv2d,
    down: bool,
}

impl Residual {
    fn build(
        source: &mut WeightSource,
        prefix: &str,
        channels: [usize; 2],
        down: bool,
        device: &Device,
    ) -> Result<Self> {
        let conv1 = conv_layer(
            source,
            &format!("{prefix}/conv1"),
            3,
            channels,
            if down { 2 } else { 1 },
            device,
        )?;
        let conv2 = conv_layer(
            source,
            &format!("{prefix}/conv2"),
            3,
            [channels[1]; 2],
            1,
            device,
        )?;
        Ok(Self { conv1, conv2, down })
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let out = self.conv2.forward(relu(self.conv1.forward(x.clone())));
        if !self.down {
            return relu(out + x);
        }
        let mut pooled = avg_pool2d(x, AvgPoolOptions::new([2, 2]));
        let [_, c, h, w] = pooled.dims();
        let [_, co, ho, wo] = out.dims();
        if co != c {
            pooled = Tensor::cat(vec![pooled.clone(), pooled.zeros_like()], 1);
        }
        let out = if (ho, wo) != (h, w) {
            out.pad(
                [(0, h.saturating_sub(ho)), (0, w.saturating_sub(wo))],
                PadMode::Constant(0.0),
            )
        } else {
            out
        };
        relu(pooled + out)
    }
}

/// face-api's FaceRecognitionNet.
#[derive(Module, Debug)]
pub struct FaceRecognitionNet {
    stem: Conv2d,
    /// Residual blocks by width: 32, 64, 128, 256 channels.
    stages: Vec<Vec<Residual>>,
    /// `conv256_down_out`: the last down-sampling block (4² to 2²).
    head: Residual,
    fc: Linear,
}

impl FaceRecognitionNet {
    pub fn build(source: &mut WeightSource, device: &Device) -> Result<Self> {
        let stem = conv_layer(source, "conv32_down", 7, [3, 32], 2, device)?;
        let layout: [(&str, usize, usize, &[&str]); 4] = [
            ("conv32", 32, 32, &["_1", "_2", "_3"]),
            ("conv64", 32, 64, &["_down", "_1", "_2", "_3"]),
            ("conv128", 64, 128, &["_down", "_1", "_2"]),
            ("conv256", 128, 256, &["_down", "_1", "_2"]),
        ];
        let mut stages = Vec::new();
        for (name, cin, cout, blocks) in layout {
            let mut stage = Vec::new();
            for (i, suffix) in blocks.iter().enumerate() {
                let channels = [if i == 0 { cin } else { cout }, cout];
                stage.push(Residual::build(
                    source,
                    &format!("{name}{suffix}"),
                    channels,
                    *suffix == "_down",
                    device,
                )?);
            }
            stages.push(stage);
        }
        let head = Residual::build(source, "conv256_down_out", [256, 256], true, device)?;
        let fc = layers::linear(source, "fc", None, [256, EMBEDDING_SIZE], device)?;
        Ok(Self {
            stem,
            stages,
            head,
            fc,
        })
    }

    /// NHWC `[B, 150, 150, 3]` RGB in [0, 1] (a face-api chip) to the L2-normalised 128-d
    /// descriptor and, as activations, the output of each stage (NCHW): 32×35², 64×17²,
    /// 128×8², 256×4². Differentiable in the input.
    pub fn forward(&self, input: Tensor<4>) -> Result<IdentityOutput> {
        layers::check_input("the recognition ResNet", &input, INPUT_SIZE)?;
        let (raw, activations) = self.descriptor_with_activations(input);
        Ok(IdentityOutput {
            embedding: super::l2_normalise(raw),
            activations,
        })
    }

    /// face-api's raw (unnormalised) descriptor and the stage activations.
    pub fn descriptor_with_activations(&self, input: Tensor<4>) -> (Tensor<2>, Vec<Tensor<4>>) {
        let device = input.device();
        let mean = Tensor::<1>::from_data(
            TensorData::new(FACE_API_MEAN_RGB.map(|m| m / 255.0).to_vec(), [3]),
            &device,
        );
        let x = layers::nhwc_to_nchw(input - mean.reshape([1, 1, 1, 3]));
        let mut x = max_pool2d(
            relu(self.stem.forward(x)),
            MaxPoolOptions::new([3, 3]).with_stride([2, 2]),
        );
        let mut activations = Vec::new();
        for stage in &self.stages {
            for block in stage {
                x = block.forward(x);
            }
            activations.push(x.clone());
        }
        let x = self.head.forward(x);
        let [b, c, _, _] = x.dims();
        let pooled = x.mean_dim(3).mean_dim(2).reshape([b, c]);
        (self.fc.forward(pooled), activations)
    }
}
