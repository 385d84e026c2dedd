//! Face detection: face-api's SSD MobileNetV1 (`ssd_mobilenetv1_model`), a MobileNetV1
//! backbone with six SSD box predictors over 5118 anchors, at a 512×512 input.
//!
//! As face-api: the photo is zero-padded at the bottom/right to a square and resized to 512
//! (area-averaged instead when that shrinks more than 4×: huge photos never reach the device at
//! full size), scaled to [-1, 1]; boxes are decoded against the anchors, scored with the sigmoid
//! of the face class, filtered at 0.5 and suppressed at IoU 0.5 with face-api's own greedy NMS.

use burn::module::{Module, Param};
use burn::nn::conv::Conv2d;
use burn::tensor::{Device, Tensor, TensorData, activation};
use image::RgbImage;
use serde::{Deserialize, Serialize};

use super::align::{PixelRect, Rect, SquareCrop};
use super::layers::{self, Bias, ConvSpec, WeightSource, relu6};
use crate::device::read_floats;
use crate::error::{Error, Result};

/// The detector's input side.
pub const INPUT_SIZE: usize = 512;
const ANCHORS: usize = 5118;
const BATCH_NORM_EPSILON: f64 = 0.0010000000474974513;

/// Output channels of MobileNetV1's 14 pointwise layers; depthwise layers 2, 4, 6, 12 stride 2.
const MOBILENET_CHANNELS: [usize; 14] = [
    32, 64, 128, 128, 256, 256, 512, 512, 512, 512, 512, 512, 1024, 1024,
];
/// SSD's extra feature layers: (kernel, in, out, stride).
const EXTRA_LAYERS: [(usize, usize, usize, usize); 8] = [
    (1, 1024, 256, 1),
    (3, 256, 512, 2),
    (1, 512, 128, 1),
    (3, 128, 256, 2),
    (1, 256, 128, 1),
    (3, 128, 256, 2),
    (1, 256, 64, 1),
    (3, 64, 128, 2),
];
/// Box predictors: input channels and anchors per location, for the feature maps
/// (backbone layer 11, backbone output, extra layers 1, 3, 5, 7).
const PREDICTORS: [(usize, usize); 6] =
    [(512, 3), (1024, 6), (512, 6), (256, 6), (256, 6), (128, 6)];

/// face-api's SSD MobileNetV1 as a burn module.
#[derive(Module, Debug)]
pub struct SsdMobilenetV1 {
    /// `conv_0` (3×3, stride 2) then 13 (depthwise, pointwise) pairs, ReLU6 after each.
    backbone: Vec<Conv2d>,
    /// `Prediction/Conv2d_0..7_pointwise`, ReLU6 after each.
    extra: Vec<Conv2d>,
    box_encoders: Vec<Conv2d>,
    classifiers: Vec<Conv2d>,
    /// `Output/extra_dim`: `[5118, 4]` anchors (ymin, xmin, ymax, xmax), relative to the input.
    anchors: Param<Tensor<2>>,
}

impl SsdMobilenetV1 {
    pub fn build(source: &mut WeightSource, device: &Device) -> Result<Self> {
        let mut backbone = Vec::new();
        let name = |i: usize, what: &str| format!("MobilenetV1/Conv2d_{i}_{what}");
        let pointwise = |source: &mut WeightSource,
                         i: usize,
                         kernel: usize,
                         channels: [usize; 2],
                         stride: usize| {
            let (filter, offset) = (
                format!("{}/weights", name(i, "pointwise")),
                format!("{}/convolution_bn_offset", name(i, "pointwise")),
            );
            layers::conv(
                source,
                ConvSpec::new(&filter, kernel, channels, stride, Bias::Plain(&offset)),
                device,
            )
        };
        backbone.push(pointwise(source, 0, 3, [3, MOBILENET_CHANNELS[0]], 2)?);
        for i in 1..14 {
            let channels = MOBILENET_CHANNELS[i - 1];
            let stride = if [2, 4, 6, 12].contains(&i) { 2 } else { 1 };
            let prefix = name(i, "depthwise");
            let (filter, gamma, beta, mean, variance) = (
                format!("{prefix}/depthwise_weights"),
                format!("{prefix}/BatchNorm/gamma"),
                format!("{prefix}/BatchNorm/beta"),
                format!("{prefix}/BatchNorm/moving_mean"),
                format!("{prefix}/BatchNorm/moving_variance"),
            );
            let bias = Bias::BatchNorm {
                gamma: &gamma,
                beta: &beta,
                mean: &mean,
                variance: &variance,
                epsilon: BATCH_NORM_EPSILON,
            };
            backbone.push(layers::conv(
                source,
                ConvSpec::depthwise(&filter, 3, channels, stride, bias),
                device,
            )?);
            backbone.push(pointwise(
                source,
                i,
                1,
                [channels, MOBILENET_CHANNELS[i]],
                1,
            )?);
        }
        let mut extra = Vec::new();
        for (i, (kernel, cin, cout, stride)) in EXTRA_LAYERS.into_iter().enumerate() {
            let prefix = format!("Prediction/Conv2d_{i}_pointwise");
            let (filter, offset) = (
                format!("{prefix}/weights"),
                format!("{prefix}/convolution_bn_offset"),
            );
            extra.push(layers::conv(
                source,
                ConvSpec::new(&filter, kernel, [cin, cout], stride, Bias::Plain(&offset)),
                device,
            )?);
        }
        let (mut box_encoders, mut classifiers) = (Vec::new(), Vec::new());
        for (i, (channels, anchors)) in PREDICTORS.into_iter().enumerate() {
            for (what, outputs, list) in [
                ("BoxEncodingPredictor", 4, &mut box_encoders),
                ("ClassPredictor", 3, &mut classifiers),
            ] {
                let prefix = format!("Prediction/BoxPredictor_{i}/{what}");
                let (filter, bias) = (format!("{prefix}/weights"), format!("{prefix}/biases"));
                list.push(layers::conv(
                    source,
                    ConvSpec::new(
                        &filter,
                        1,
                        [channels, anchors * outputs],
                        1,
                        Bias::Plain(&bias),
                    ),
                    device,
                )?);
            }
        }
        let anchors = layers::constant(
            source,
            "Output/extra_dim",
            &[1, ANCHORS, 4],
            [ANCHORS, 4],
            device,
        )?;
        Ok(Self {
            backbone,
            extra,
            box_encoders,
            classifiers,
            anchors,
        })
    }

    /// NHWC `[B, 512, 512, 3]` in [0, 1] to decoded boxes `[B, 5118, 4]` (ymin, xmin, ymax,
    /// xmax relative to the input) and face scores `[B, 5118]`.
    pub fn forward(&self, input: Tensor<4>) -> Result<(Tensor<3>, Tensor<2>)> {
        layers::check_input("the detector", &input, INPUT_SIZE)?;
        let mut x = layers::nhwc_to_nchw(input) * 2.0 - 1.0;
        let mut layer11 = None;
        for (i, conv) in self.backbone.iter().enumerate() {
            x = relu6(conv.forward(x));
            // Index 22 is the pointwise conv of pair 11.
            if i == 22 {
                layer11 = Some(x.clone());
            }
        }
        let layer11 =
            layer11.ok_or_else(|| Error::Invalid("detector backbone is too short".into()))?;
        let mut maps = vec![layer11, x.clone()];
        for (i, conv) in self.extra.iter().enumerate() {
            x = relu6(conv.forward(x));
            if i % 2 == 1 {
                maps.push(x.clone());
            }
        }
        let batch = maps[0].dims()[0];
        let flatten = |conv: &Conv2d, map: &Tensor<4>, per_anchor: usize| {
            // TensorFlow's NHWC reshape order: location-major, then anchor.
            let out = conv.forward(map.clone()).permute([0, 2, 3, 1]);
            let [b, h, w, c] = out.dims();
            out.reshape([b, h * w * c / per_anchor, per_anchor])
        };
        let encodings = Tensor::cat(
            self.box_encoders
                .iter()
                .zip(&maps)
                .map(|(c, m)| flatten(c, m, 4))
                .collect(),
            1,
        );
        let classes = Tensor::cat(
            self.classifiers
                .iter()
                .zip(&maps)
                .map(|(c, m)| flatten(c, m, 3))
                .collect(),
            1,
        );
        let scores = activation::sigmoid(classes.slice([0..batch, 0..ANCHORS, 1..2]))
            .reshape([batch, ANCHORS]);
        Ok((decode_boxes(encodings, self.anchors.val()), scores))
    }
}

/// SSD box decoding with face-api's constants (centre offsets / 10, log sizes / 5).
fn decode_boxes(encodings: Tensor<3>, anchors: Tensor<2>) -> Tensor<3> {
    let [batch, n, _] = encodings.dims();
    let anchors = anchors.unsqueeze_dim::<3>(0);
    let part = |t: &Tensor<3>, i: usize| t.clone().slice([0..t.dims()[0], 0..n, i..i + 1]);
    let size_y = part(&anchors, 2) - part(&anchors, 0);
    let size_x = part(&anchors, 3) - part(&anchors, 1);
    let centre_y = part(&anchors, 0) + size_y.clone() / 2.0;
    let centre_x = part(&anchors, 1) + size_x.clone() / 2.0;
    let half_y = (part(&encodings, 2) / 5.0).exp() * size_y.clone() / 2.0;
    let half_x = (part(&encodings, 3) / 5.0).exp() * size_x.clone() / 2.0;
    let y = part(&encodings, 0) / 10.0 * size_y + centre_y;
    let x = part(&encodings, 1) / 10.0 * size_x + centre_x;
    Tensor::cat(
        vec![
            y.clone() - half_y.clone(),
            x.clone() - half_x.clone(),
            y + half_y,
            x + half_x,
        ],
        2,
    )
    .reshape([batch, n, 4])
}

/// One detected face.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Detection {
    pub score: f32,
    /// The box in image pixels.
    pub rect: Rect,
    /// BlazeFace's six keypoints in image pixels (eyes, nose tip, mouth, ear tragions; see
    /// [`super::blazeface::KEYPOINTS`]); `None` from the SSD detector.
    #[serde(default)]
    pub keypoints: Option<[[f32; 2]; 6]>,
}

impl Detection {
    /// The same detection with its box scaled by `factor` about its centre.
    pub fn enlarged(&self, factor: f64) -> Self {
        let r = self.rect;
        Self {
            rect: Rect {
                x: r.x + r.width * (1.0 - factor) / 2.0,
                y: r.y + r.height * (1.0 - factor) / 2.0,
                width: r.width * factor,
                height: r.height * factor,
            },
            ..*self
        }
    }
}

/// The faces of one photo, largest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Detections {
    pub faces: Vec<Detection>,
    pub image_width: u32,
    pub image_height: u32,
}

impl Detections {
    /// `faces` sorted largest first.
    pub fn largest_first(mut faces: Vec<Detection>, image_width: u32, image_height: u32) -> Self {
        faces.sort_by(|a, b| b.rect.area().total_cmp(&a.rect.area()));
        Self {
            faces,
            image_width,
            image_height,
        }
    }

    /// The face the pipeline uses: the largest, or [`Error::NoFace`].
    pub fn largest(&self) -> Result<&Detection> {
        self.faces.first().ok_or(Error::NoFace)
    }
}

/// Detection thresholds (face-api's defaults).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DetectorOptions {
    pub min_confidence: f32,
    pub max_results: usize,
    pub iou_threshold: f64,
}

impl Default for DetectorOptions {
    fn default() -> Self {
        Self {
            min_confidence: 0.5,
            max_results: 100,
            iou_threshold: 0.5,
        }
    }
}

/// face-api's greedy NMS (`ssdMobilenetv1/nonMaxSuppression.ts`): indices in score order.
pub fn non_max_suppression(
    boxes: &[[f64; 4]],
    scores: &[f32],
    options: &DetectorOptions,
) -> Vec<usize> {
    let iou = |i: usize, j: usize| {
        let (a, b) = (boxes[i], boxes[j]);
        let (ay0, ax0, ay1, ax1) = (
            a[0].min(a[2]),
            a[1].min(a[3]),
            a[0].max(a[2]),
            a[1].max(a[3]),
        );
        let (by0, bx0, by1, bx1) = (
            b[0].min(b[2]),
            b[1].min(b[3]),
            b[0].max(b[2]),
            b[1].max(b[3]),
        );
        let (area_a, area_b) = ((ay1 - ay0) * (ax1 - ax0), (by1 - by0) * (bx1 - bx0));
        if area_a <= 0.0 || area_b <= 0.0 {
            return 0.0;
        }
        let inter = (ay1.min(by1) - ay0.max(by0)).max(0.0) * (ax1.min(bx1) - ax0.max(bx0)).max(0.0);
        inter / (area_a + area_b - inter)
    };
    let mut candidates: Vec<usize> = (0..scores.len())
        .filter(|&i| scores[i] > options.min_confidence)
        .collect();
    // JavaScript's sort is stable: equal scores keep index order.
    candidates.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let limit = options.max_results.min(boxes.len());
    let mut selected: Vec<usize> = Vec::new();
    for c in candidates {
        if selected.len() >= limit {
            break;
        }
        if selected.iter().all(|&s| iou(c, s) <= options.iou_threshold) {
            selected.push(c);
        }
    }
    selected
}

impl SsdMobilenetV1 {
    /// The detector's input for a photo and how it sits in the photo.
    pub fn prepare(image: &RgbImage) -> Result<(SquareCrop, Vec<f32>)> {
        if image.width() == 0 || image.height() == 0 {
            return Err(Error::Image("the image is empty".into()));
        }
        let crop = SquareCrop::new(
            PixelRect {
                x: 0,
                y: 0,
                width: image.width(),
                height: image.height(),
            },
            INPUT_SIZE,
            false,
        );
        let input = crop.sample(image);
        Ok((crop, input))
    }

    /// All faces in the photo, largest first. Reads the scores back (asynchronously on wasm).
    pub async fn detect(
        &self,
        image: &RgbImage,
        device: &Device,
        options: &DetectorOptions,
    ) -> Result<Detections> {
        let (_, input) = Self::prepare(image)?;
        let input = Tensor::<4>::from_data(
            TensorData::new(input, [1, INPUT_SIZE, INPUT_SIZE, 3]),
            device,
        );
        let (boxes, scores) = self.forward(input)?;
        let (boxes, _) = read_floats(boxes).await?;
        let (scores, _) = read_floats(scores).await?;
        Ok(boxes_in_image(
            &boxes,
            &scores,
            image.width(),
            image.height(),
            options,
        ))
    }
}

/// NMS, then face-api's mapping from the padded 512² input back to the photo: relative boxes
/// are clamped to [0, 1], stretched by `512 / round(side * 512 / longest side)` and scaled by the
/// photo size.
pub fn boxes_in_image(
    boxes: &[f32],
    scores: &[f32],
    width: u32,
    height: u32,
    options: &DetectorOptions,
) -> Detections {
    let boxes: Vec<[f64; 4]> = boxes
        .chunks_exact(4)
        .map(|b| [b[0] as f64, b[1] as f64, b[2] as f64, b[3] as f64])
        .collect();
    let kept = non_max_suppression(&boxes, scores, options);
    let scale = INPUT_SIZE as f64 / width.max(height) as f64;
    let pad_x = INPUT_SIZE as f64 / (width as f64 * scale).round();
    let pad_y = INPUT_SIZE as f64 / (height as f64 * scale).round();
    let faces: Vec<Detection> = kept
        .into_iter()
        .map(|i| {
            let b = boxes[i];
            let (top, bottom) = (b[0].max(0.0) * pad_y, b[2].min(1.0) * pad_y);
            let (left, right) = (b[1].max(0.0) * pad_x, b[3].min(1.0) * pad_x);
            let rect = Rect {
                x: left * width as f64,
                y: top * height as f64,
                width: (right - left) * width as f64,
                height: (bottom - top) * height as f64,
            };
            Detection {
                score: scores[i],
                rect,
                keypoints: None,
            }
        })
        .filter(|d| d.rect.area() > 0.0)
        .collect();
    Detections::largest_first(faces, width, height)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nms_keeps_the_best_of_overlapping_boxes() {
        let boxes = [
            [0.0, 0.0, 1.0, 1.0],
            [0.05, 0.0, 1.0, 1.0],
            [2.0, 2.0, 3.0, 3.0],
            [0.0, 0.0, 0.1, 0.1],
        ];
        let scores = [0.8, 0.9, 0.7, 0.4];
        assert_eq!(
            non_max_suppression(&boxes, &scores, &DetectorOptions::default()),
            vec![1, 2]
        );
        let one = DetectorOptions {
            max_results: 1,
            ..Default::default()
        };
        assert_eq!(non_max_suppression(&boxes, &scores, &one), vec![1]);
    }

    #[test]
    fn boxes_map_back_through_the_padding() {
        // A 1000×500 photo fills the top half of the square input: y is stretched by 2.
        let d = boxes_in_image(
            &[0.1, 0.2, 0.3, 0.6, 0.0, 0.0, 0.05, 0.05],
            &[0.9, 0.6],
            1000,
            500,
            &DetectorOptions::default(),
        );
        assert_eq!(d.faces.len(), 2);
        let r = d.faces[0].rect;
        assert!(
            (r.x - 200.0).abs() < 1e-3 && (r.y - 100.0).abs() < 1e-3,
            "{r:?}"
        );
        assert!(
            (r.width - 400.0).abs() < 1e-3 && (r.height - 200.0).abs() < 1e-3,
            "{r:?}"
        );
        assert!(d.faces[0].rect.area() > d.faces[1].rect.area());
    }
}
