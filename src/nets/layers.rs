//! Building blocks shared by the networks, and where their parameters come from.
//!
//! Each network is written once as a burn [`Module`] whose constructor takes a [`WeightSource`]:
//! [`WeightSource::Empty`] builds zero tensors of the right shapes (then a burnpack record fills them:
//! the runtime path, native and wasm), [`WeightSource::Tfjs`] rearranges the original TensorFlow.js
//! weights into burn's layout (the converter). The tfjs names therefore sit next to the layer
//! that uses them, and the converter cannot disagree with the runtime about the architecture.
//!
//! Layout: burn convolutions are NCHW with filters `[out, in / groups, kh, kw]`; TensorFlow's are
//! NHWC with `[kh, kw, in, out]` (depthwise `[kh, kw, channels, 1]`). TensorFlow's `SAME` padding
//! pads the extra row/column at the bottom/right for stride 2 on even sizes; burn's
//! [`PaddingConfig2d::Same`] computes exactly that split, so it is used as is.

use burn::module::{Module, Param};
use burn::nn::conv::Conv2d;
use burn::nn::{Linear, PRelu, PaddingConfig2d};
use burn::store::ModuleSnapshot;
use burn::tensor::{Device, Tensor, TensorData};

use super::tfjs::TfjsWeights;
use crate::error::{Error, Result};
use crate::io::burnpack;

/// Where a network's parameters come from while it is built.
pub enum WeightSource<'a> {
    /// Zeros, to be overwritten by [`load_record`].
    Empty,
    /// The original weights (conversion).
    Tfjs(&'a mut TfjsWeights),
}

/// TensorFlow padding modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Padding {
    Same,
    Valid,
}

/// What is added after the convolution, folded into its bias (and scale into its filter).
#[derive(Debug, Clone, Copy)]
pub enum Bias<'n> {
    None,
    /// A plain bias vector.
    Plain(&'n str),
    /// Inference batch norm `(x - mean) / sqrt(var + eps) * gamma + beta`.
    BatchNorm {
        gamma: &'n str,
        beta: &'n str,
        mean: &'n str,
        variance: &'n str,
        epsilon: f64,
    },
    /// A per-channel `x * scale + shift` applied after a bias-free convolution: a batch norm
    /// the tfjs converter folded into two vectors but left as separate `Mul` and `Add` nodes
    /// (faceres' depthwise convolutions).
    Affine {
        scale: &'n str,
        shift: &'n str,
    },
    /// A bias, then face-api's per-channel "scale layer" `x * weights + biases`.
    Scaled {
        bias: &'n str,
        scale: &'n str,
        shift: &'n str,
    },
}

/// One convolution as the original defines it.
#[derive(Debug, Clone, Copy)]
pub struct ConvSpec<'n> {
    /// The tfjs name of the filter.
    pub filter: &'n str,
    pub kernel: usize,
    /// Input and output channels (equal for depthwise).
    pub channels: [usize; 2],
    pub stride: usize,
    pub padding: Padding,
    pub depthwise: bool,
    pub bias: Bias<'n>,
    /// For graph models: the ops the tfjs converter fused into this node (checked, so a
    /// different graph is refused instead of silently computing something else).
    pub fused: &'n [&'n str],
}

impl<'n> ConvSpec<'n> {
    pub fn new(
        filter: &'n str,
        kernel: usize,
        channels: [usize; 2],
        stride: usize,
        bias: Bias<'n>,
    ) -> Self {
        Self {
            filter,
            kernel,
            channels,
            stride,
            padding: Padding::Same,
            depthwise: false,
            bias,
            fused: &["BiasAdd"],
        }
    }

    pub fn depthwise(
        filter: &'n str,
        kernel: usize,
        channels: usize,
        stride: usize,
        bias: Bias<'n>,
    ) -> Self {
        Self {
            depthwise: true,
            ..Self::new(filter, kernel, [channels, channels], stride, bias)
        }
    }

    pub fn valid(self) -> Self {
        Self {
            padding: Padding::Valid,
            ..self
        }
    }

    pub fn fused(self, fused: &'n [&'n str]) -> Self {
        Self { fused, ..self }
    }

    fn burn_shape(&self) -> [usize; 4] {
        let [cin, cout] = self.channels;
        if self.depthwise {
            [cout, 1, self.kernel, self.kernel]
        } else {
            [cout, cin, self.kernel, self.kernel]
        }
    }

    fn tf_shape(&self) -> [usize; 4] {
        let [cin, cout] = self.channels;
        if self.depthwise {
            [self.kernel, self.kernel, cin, 1]
        } else {
            [self.kernel, self.kernel, cin, cout]
        }
    }
}

fn param<const D: usize>(values: Vec<f32>, shape: [usize; D], device: &Device) -> Param<Tensor<D>> {
    Param::from_tensor(Tensor::from_data(TensorData::new(values, shape), device))
}

fn zeros<const D: usize>(shape: [usize; D], device: &Device) -> Param<Tensor<D>> {
    Param::from_tensor(Tensor::zeros(shape, device))
}

fn check_graph_node(weights: &TfjsWeights, spec: &ConvSpec) -> Result<()> {
    if !weights.has_graph() {
        return Ok(());
    }
    let node = weights.conv_node(spec.filter).ok_or_else(|| {
        Error::model(
            &weights.origin,
            format!("no graph node convolves with {}", spec.filter),
        )
    })?;
    let padding = match spec.padding {
        Padding::Same => "SAME",
        Padding::Valid => "VALID",
    };
    let depthwise = node.op.contains("Depthwise");
    if node.strides != [spec.stride; 2]
        || node.padding != padding
        || node.fused_ops != spec.fused
        || depthwise != spec.depthwise
    {
        return Err(Error::model(
            &weights.origin,
            format!(
                "graph node {} ({}, strides {:?}, padding {}, fused {:?}) differs from the architecture (stride {}, padding {padding}, fused {:?}, depthwise {})",
                node.name,
                node.op,
                node.strides,
                node.padding,
                node.fused_ops,
                spec.stride,
                spec.fused,
                spec.depthwise
            ),
        ));
    }
    Ok(())
}

/// Filter and bias in burn layout with any batch norm or scale folded in.
fn conv_weights(
    weights: &mut TfjsWeights,
    spec: &ConvSpec,
) -> Result<(Vec<f32>, Option<Vec<f32>>)> {
    check_graph_node(weights, spec)?;
    let [kh, kw, cin_tf, cout_tf] = spec.tf_shape();
    let filter = weights.take(spec.filter, &spec.tf_shape())?.values;
    let out = spec.channels[1];
    // [kh, kw, in, out] (depthwise: [kh, kw, c, 1]) -> [out, in, kh, kw] (depthwise: [c, 1, kh, kw]).
    let mut burn = vec![0f32; filter.len()];
    for y in 0..kh {
        for x in 0..kw {
            for i in 0..cin_tf {
                for o in 0..cout_tf {
                    let v = filter[((y * kw + x) * cin_tf + i) * cout_tf + o];
                    let (oc, ic) = if spec.depthwise { (i, 0) } else { (o, i) };
                    let ins = if spec.depthwise { 1 } else { cin_tf };
                    burn[((oc * ins + ic) * kh + y) * kw + x] = v;
                }
            }
        }
    }
    let vector = |w: &mut TfjsWeights, name: &str| w.take(name, &[out]).map(|w| w.values);
    let (scale, bias): (Option<Vec<f64>>, Option<Vec<f64>>) = match spec.bias {
        Bias::None => (None, None),
        Bias::Plain(name) => (
            None,
            Some(vector(weights, name)?.iter().map(|&v| v as f64).collect()),
        ),
        Bias::BatchNorm {
            gamma,
            beta,
            mean,
            variance,
            epsilon,
        } => {
            let (g, b, m, v) = (
                vector(weights, gamma)?,
                vector(weights, beta)?,
                vector(weights, mean)?,
                vector(weights, variance)?,
            );
            let s: Vec<f64> = (0..out)
                .map(|c| g[c] as f64 / (v[c] as f64 + epsilon).sqrt())
                .collect();
            let bias = (0..out).map(|c| b[c] as f64 - m[c] as f64 * s[c]).collect();
            (Some(s), Some(bias))
        }
        Bias::Affine { scale, shift } => {
            let (s, t) = (vector(weights, scale)?, vector(weights, shift)?);
            (
                Some(s.iter().map(|&v| v as f64).collect()),
                Some(t.iter().map(|&v| v as f64).collect()),
            )
        }
        Bias::Scaled { bias, scale, shift } => {
            let (b, s, t) = (
                vector(weights, bias)?,
                vector(weights, scale)?,
                vector(weights, shift)?,
            );
            let folded = (0..out)
                .map(|c| b[c] as f64 * s[c] as f64 + t[c] as f64)
                .collect();
            (Some(s.iter().map(|&v| v as f64).collect()), Some(folded))
        }
    };
    if let Some(scale) = scale {
        let per_out = burn.len() / out;
        for (i, w) in burn.iter_mut().enumerate() {
            *w = (*w as f64 * scale[i / per_out]) as f32;
        }
    }
    Ok((
        burn,
        bias.map(|b| b.into_iter().map(|v| v as f32).collect()),
    ))
}

/// A convolution as `spec` describes it.
pub fn conv(source: &mut WeightSource, spec: ConvSpec, device: &Device) -> Result<Conv2d> {
    let shape = spec.burn_shape();
    let has_bias = !matches!(spec.bias, Bias::None);
    let (weight, bias) = match source {
        WeightSource::Empty => (
            zeros(shape, device),
            has_bias.then(|| zeros([shape[0]], device)),
        ),
        WeightSource::Tfjs(weights) => {
            let (w, b) = conv_weights(weights, &spec)?;
            (
                param(w, shape, device),
                b.map(|b| param(b, [shape[0]], device)),
            )
        }
    };
    Ok(Conv2d {
        weight,
        bias,
        stride: [spec.stride; 2],
        kernel_size: [spec.kernel; 2],
        dilation: [1, 1],
        groups: if spec.depthwise { spec.channels[0] } else { 1 },
        padding: match spec.padding {
            Padding::Same => PaddingConfig2d::Same,
            Padding::Valid => PaddingConfig2d::Valid,
        },
    })
}

/// A fully connected layer; tfjs and burn both store the matrix as `[in, out]`.
pub fn linear(
    source: &mut WeightSource,
    weight: &str,
    bias: Option<&str>,
    [inputs, outputs]: [usize; 2],
    device: &Device,
) -> Result<Linear> {
    Ok(match source {
        WeightSource::Empty => Linear {
            weight: zeros([inputs, outputs], device),
            bias: bias.map(|_| zeros([outputs], device)),
        },
        WeightSource::Tfjs(weights) => {
            let w = weights.take(weight, &[inputs, outputs])?.values;
            let b = bias
                .map(|name| weights.take(name, &[outputs]))
                .transpose()?;
            Linear {
                weight: param(w, [inputs, outputs], device),
                bias: b.map(|b| param(b.values, [outputs], device)),
            }
        }
    })
}

/// PReLU whose slopes are `slope(value)` of the weight `name` (tfjs shape `tf_shape`, C values).
fn prelu_with(
    source: &mut WeightSource,
    name: &str,
    tf_shape: &[usize],
    slope: impl Fn(f32) -> f32,
    device: &Device,
) -> Result<PRelu> {
    let channels = tf_shape.iter().product();
    let alpha = match source {
        WeightSource::Empty => zeros([channels], device),
        WeightSource::Tfjs(weights) => param(
            weights
                .take(name, tf_shape)?
                .values
                .into_iter()
                .map(slope)
                .collect(),
            [channels],
            device,
        ),
    };
    Ok(PRelu {
        alpha,
        alpha_value: 0.0,
    })
}

/// PReLU from a graph that decomposed it as `relu(x) + mul * (x - |x|)`, i.e. alpha = 2 * mul.
pub fn prelu_from_decomposed(
    source: &mut WeightSource,
    mul: &str,
    channels: usize,
    device: &Device,
) -> Result<PRelu> {
    prelu_with(source, mul, &[channels], |m| 2.0 * m, device)
}

/// PReLU with its slopes stored as a graph constant `[1, 1, C]` (the tfjs converter's fused
/// `Prelu` operand, named after the Keras layer's `Neg` node but holding the slopes themselves:
/// the parity tests pin the sign).
pub fn prelu(
    source: &mut WeightSource,
    alpha: &str,
    channels: usize,
    device: &Device,
) -> Result<PRelu> {
    prelu_with(source, alpha, &[1, 1, channels], |a| a, device)
}

/// Checks that the graph's `Pad` node `paddings` (`[4, 2]`, NHWC) pads only the channels, at
/// the end, from `from` to `to`: the zero channels a BlazeBlock's shortcut gains when its
/// width grows ([`pad_channels`]).
pub fn check_channel_padding(
    source: &mut WeightSource,
    paddings: &str,
    [from, to]: [usize; 2],
) -> Result<()> {
    let WeightSource::Tfjs(weights) = source else {
        return Ok(());
    };
    let values = weights.take(paddings, &[4, 2])?.values;
    let expected = [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, (to - from) as f32];
    if values != expected {
        return Err(Error::model(
            &weights.origin,
            format!("{paddings} pads {values:?}, not the channels {from} → {to} at the end"),
        ));
    }
    Ok(())
}

/// Zero channels appended to NCHW `x` up to `channels`.
pub fn pad_channels(x: Tensor<4>, channels: usize) -> Tensor<4> {
    let [b, c, h, w] = x.dims();
    if c >= channels {
        return x;
    }
    let zeros = Tensor::<4>::zeros([b, channels - c, h, w], &x.device());
    Tensor::cat(vec![x, zeros], 1)
}

/// 2×2 max pooling with stride 2 (TensorFlow's `SAME` and `VALID` agree on even sizes, which
/// is all these networks pool).
pub fn max_pool_2x2(x: Tensor<4>) -> Tensor<4> {
    burn::tensor::module::max_pool2d(
        x,
        burn::tensor::ops::MaxPoolOptions::new([2, 2]).with_stride([2, 2]),
    )
}

/// A constant tensor the original keeps with the weights (e.g. detector anchors), reshaped.
pub fn constant<const D: usize>(
    source: &mut WeightSource,
    name: &str,
    tf_shape: &[usize],
    shape: [usize; D],
    device: &Device,
) -> Result<Param<Tensor<D>>> {
    Ok(match source {
        WeightSource::Empty => zeros(shape, device),
        WeightSource::Tfjs(weights) => param(weights.take(name, tf_shape)?.values, shape, device),
    })
}

/// `min(max(x, 0), 6)`.
pub fn relu6(x: Tensor<4>) -> Tensor<4> {
    x.clamp(0.0, 6.0)
}

/// NHWC images `[B, H, W, 3]` to the NCHW layout of burn's convolutions.
pub fn nhwc_to_nchw(x: Tensor<4>) -> Tensor<4> {
    x.permute([0, 3, 1, 2])
}

/// Checks an NHWC input `[B, size, size, 3]` before a network runs on it.
pub fn check_input(what: &str, x: &Tensor<4>, size: usize) -> Result<()> {
    let [b, h, w, c] = x.dims();
    if b == 0 || h != size || w != size || c != 3 {
        return Err(Error::Invalid(format!(
            "{what} expects NHWC [B, {size}, {size}, 3] with B > 0, got {:?}",
            x.dims()
        )));
    }
    Ok(())
}

/// Fills a freshly built (zero) network with the parameters of a burnpack record (any float
/// storage widened to f32). Parameters are frozen: the networks are fixed losses.
pub fn load_record<M: Module + ModuleSnapshot>(module: M, bytes: Vec<u8>, name: &str) -> Result<M> {
    Ok(burnpack::read(module, bytes, name, "record does not fit the network")?.no_grad())
}

/// Serialises a network into burnpack bytes, optionally storing floats as f16.
pub fn save_record<M: Module + ModuleSnapshot>(
    module: &M,
    half: bool,
    name: &str,
) -> Result<Vec<u8>> {
    burnpack::write(module, half, &[("network", name.to_string())], name)
}
