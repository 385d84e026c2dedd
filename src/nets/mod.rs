//! The pretrained face networks, ported from TensorFlow.js to burn, and the alignment that
//! connects them: detect the face ([`detector`]) → 68 landmarks ([`landmarks68`]) → aligned crops
//! ([`align`]) → identity embeddings ([`faceres`], the fit's identity terms'; [`resnet`],
//! face-api's, kept independent to judge the fits).
//!
//! | network | file | source | input (NHWC, RGB in [0, 1]) | output |
//! |---|---|---|---|---|
//! | [`SsdMobilenetV1`] | `face_detector.bpk` | face-api `ssd_mobilenetv1_model` | 512², padded photo | boxes, scores |
//! | [`FaceLandmark68Net`] | `face_landmarks68.bpk` | face-api `face_landmark_68_model` | 112², padded box | 68 points |
//! | [`FaceRecognitionNet`] | `face_resnet.bpk` | face-api `face_recognition_model` | 150² face-api chip | 128-d |
//! | [`FaceRes`] | `faceres.bpk` | human-models `faceres` | 224² ArcFace crop | 1024-d |
//!
//! The fit's eyes are MediaPipe's (BlazeFace, then the face mesh; [`blazeface`],
//! [`facemesh`]); a face the mesh refuses gets a canonical face posed by BlazeFace's keypoints
//! ([`keypoint_pose`]). face-api's detector and 68-point network remain for `--eyes face-api`
//! and the evaluation.
//!
//! Weights are burnpack records (`burn-store`), loaded from bytes on every platform; the
//! converter ([`Network::convert`], `ganfit nets convert`) writes them from the npm packages.
//! Functions that read results back are `async` (WebGPU cannot block).

pub mod align;
pub mod blazeface;
pub mod detector;
pub mod facemesh;
pub mod faceres;
pub mod keypoint_pose;
pub mod landmarks68;
pub mod layers;
pub mod resnet;
pub mod tfjs;

use burn::tensor::{Device, Tensor, TensorData};
use image::RgbImage;
use serde::{Deserialize, Serialize};

pub use align::{Affine, PixelRect, Rect, SquareCrop};
pub use blazeface::{BlazeFace, BlazeFaceOptions};
pub use detector::{Detection, Detections, DetectorOptions, SsdMobilenetV1};
pub use facemesh::{FaceMesh, Mesh};
pub use faceres::FaceRes;
pub use landmarks68::{FaceLandmark68Net, Points68};
pub use resnet::FaceRecognitionNet;

use crate::error::{Error, Result};
use layers::WeightSource;
use tfjs::TfjsWeights;

/// What an identity network returns.
#[derive(Debug, Clone)]
pub struct IdentityOutput {
    /// `[B, D]`, unit length.
    pub embedding: Tensor<2>,
    /// Intermediate feature maps `[B, C, H, W]` for a content loss (which ones: see each
    /// network's `forward`).
    pub activations: Vec<Tensor<4>>,
}

/// Guards the L2 normalisation of an all-zero embedding (the value tfjs face graphs use).
pub const L2_EPSILON: f32 = 1e-10;

/// `x / sqrt(max(|x|², eps))` along dimension 1.
pub fn l2_normalise(x: Tensor<2>) -> Tensor<2> {
    let norm = x
        .clone()
        .powi_scalar(2)
        .sum_dim(1)
        .clamp_min(L2_EPSILON)
        .sqrt();
    x / norm
}

/// The six networks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Network {
    Detector,
    Landmarks68,
    ResNet,
    FaceRes,
    BlazeFace,
    FaceMesh,
}

impl Network {
    pub const ALL: [Network; 6] = [
        Network::Detector,
        Network::Landmarks68,
        Network::ResNet,
        Network::FaceRes,
        Network::BlazeFace,
        Network::FaceMesh,
    ];

    /// The record's file name in `models/`.
    pub fn file_name(self) -> &'static str {
        match self {
            Network::Detector => "face_detector.bpk",
            Network::Landmarks68 => "face_landmarks68.bpk",
            Network::ResNet => "face_resnet.bpk",
            Network::FaceRes => "faceres.bpk",
            Network::BlazeFace => "blazeface.bpk",
            Network::FaceMesh => "facemesh.bpk",
        }
    }

    /// The original manifest: which npm package (`face-api` or `human-models`) and its path
    /// inside the package.
    pub fn source_manifest(self) -> (&'static str, &'static str) {
        match self {
            Network::Detector => (
                "face-api",
                "model/ssd_mobilenetv1_model-weights_manifest.json",
            ),
            Network::Landmarks68 => (
                "face-api",
                "model/face_landmark_68_model-weights_manifest.json",
            ),
            Network::ResNet => (
                "face-api",
                "model/face_recognition_model-weights_manifest.json",
            ),
            Network::FaceRes => ("human-models", "models/faceres.json"),
            Network::BlazeFace => ("human-models", "models/blazeface.json"),
            Network::FaceMesh => ("human-models", "models/facemesh.json"),
        }
    }

    /// Converts the original tfjs weights (manifest and shards) into a burnpack record,
    /// optionally stored as f16. Returns the record and the float weights the architecture did
    /// not use (expected empty).
    pub fn convert(
        self,
        manifest: &[u8],
        shards: &[&[u8]],
        half: bool,
        device: &Device,
    ) -> Result<(Vec<u8>, Vec<String>)> {
        let mut weights = TfjsWeights::parse(manifest, shards, self.source_manifest().1)?;
        let mut source = WeightSource::Tfjs(&mut weights);
        let name = self.file_name();
        let record = match self {
            Network::Detector => {
                layers::save_record(&SsdMobilenetV1::build(&mut source, device)?, half, name)?
            }
            Network::Landmarks68 => {
                layers::save_record(&FaceLandmark68Net::build(&mut source, device)?, half, name)?
            }
            Network::ResNet => {
                layers::save_record(&FaceRecognitionNet::build(&mut source, device)?, half, name)?
            }
            Network::FaceRes => {
                layers::save_record(&FaceRes::build(&mut source, device)?, half, name)?
            }
            Network::BlazeFace => {
                layers::save_record(&BlazeFace::build(&mut source, device)?, half, name)?
            }
            Network::FaceMesh => {
                layers::save_record(&FaceMesh::build(&mut source, device)?, half, name)?
            }
        };
        Ok((record, weights.unused()))
    }
}

/// `from_bytes` for each network: built with zero weights, then filled from its record.
macro_rules! from_record {
    ($($net:ident => $network:ident),* $(,)?) => {$(
        impl $net {
            pub fn from_bytes(bytes: Vec<u8>, device: &Device) -> Result<Self> {
                layers::load_record(
                    Self::build(&mut WeightSource::Empty, device)?,
                    bytes,
                    Network::$network.file_name(),
                )
            }
        }
    )*};
}

from_record!(
    SsdMobilenetV1 => Detector,
    FaceLandmark68Net => Landmarks68,
    FaceRecognitionNet => ResNet,
    FaceRes => FaceRes,
    BlazeFace => BlazeFace,
    FaceMesh => FaceMesh,
);

/// The record bytes of the networks (read from `models/` or fetched by the page). Only
/// MediaPipe's are needed for a fit: the ResNet only judges fits (the browser never downloads
/// it), faceres drives the identity terms (the page fetches it when a fit switches them on).
pub struct ModelBytes {
    /// face-api's SSD and 68-point network: evaluation and the CLI's `--eyes face-api` (the
    /// page does without them).
    pub detector: Option<Vec<u8>>,
    pub landmarks68: Option<Vec<u8>>,
    pub resnet: Option<Vec<u8>>,
    pub faceres: Option<Vec<u8>>,
    /// BlazeFace and the face mesh: the fit's eyes when both are given ([`Eyes::MediaPipe`]).
    pub blazeface: Option<Vec<u8>>,
    pub facemesh: Option<Vec<u8>>,
}

/// Where a face's 68 landmarks come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LandmarkSource {
    /// The face mesh's 468 points mapped to the 68 ([`facemesh::MESH_68`]).
    #[serde(rename = "mediapipe")]
    MediaPipe,
    /// face-api's 68-point network.
    FaceApi,
    /// The canonical face posed by BlazeFace's six keypoints, where the mesh refused the face
    /// ([`keypoint_pose`]).
    Keypoints,
}

/// Which networks find a face and its landmarks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum Eyes {
    /// BlazeFace, then the face mesh in two passes, its 468 points mapped to the 68.
    #[serde(rename = "mediapipe")]
    #[cfg_attr(feature = "cli", value(name = "mediapipe"))]
    MediaPipe,
    /// face-api's SSD detector and 68-point network.
    FaceApi,
}

impl Eyes {
    pub fn name(self) -> &'static str {
        match self {
            Eyes::MediaPipe => "mediapipe",
            Eyes::FaceApi => "face-api",
        }
    }
}

/// The networks on one device (the ResNet and faceres only when their records were given).
#[derive(Debug)]
pub struct FaceNets {
    detector: Option<SsdMobilenetV1>,
    landmarks: Option<FaceLandmark68Net>,
    resnet: Option<FaceRecognitionNet>,
    faceres: Option<FaceRes>,
    mediapipe: Option<(BlazeFace, FaceMesh)>,
    pub device: Device,
}

/// The narrowest face BlazeFace finds reliably in a `width`×`height` photo, pixels: about 1/30
/// of the longer side (the corner tiles of a large photo are reduced about 3× for the
/// detector), and 16 px in small photos (`smallest_face_found` in `tests/nets.rs` measures
/// it). Below that it misses faces and finds faces where there are none.
pub fn min_face_width(width: u32, height: u32) -> f64 {
    (width.max(height) as f64 / 30.0).max(16.0)
}

/// The largest face of a photo, its landmarks and its crop for each identity network.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FaceAnalysis {
    pub face: Detection,
    /// Every detected face's box, largest first; `face` is number `index` of them.
    pub faces: Vec<Rect>,
    pub index: usize,
    /// Which networks found the face ([`Eyes::MediaPipe`]: BlazeFace) and its 68 landmarks
    /// (the mesh, or BlazeFace's keypoints where the mesh refused the face).
    pub detected_by: Eyes,
    pub landmarks_by: LandmarkSource,
    /// The face mesh's face flag when it refused the face (the keypoint-posed face's
    /// landmarks are used).
    pub mesh_rejected: Option<f32>,
    /// 68 points in image pixels (pixel centres at +0.5); a `Vec` for serialisation.
    pub landmarks: Vec<[f32; 2]>,
    /// The face mesh ([`Eyes::MediaPipe`]).
    pub mesh: Option<Mesh>,
    /// The ArcFace crop at the template's 112² ([`align::ARCFACE_SIZE`], crop to image);
    /// faceres takes it scaled to 224².
    pub arcface: Affine,
    /// The ResNet's face-api chip, `None` when it falls outside the image.
    pub chip: Option<SquareCrop>,
}

impl FaceAnalysis {
    /// How many faces were detected.
    pub fn faces_found(&self) -> usize {
        self.faces.len()
    }

    pub fn points(&self) -> Result<Points68> {
        self.landmarks
            .as_slice()
            .try_into()
            .map_err(|_| Error::Invalid(format!("{} landmarks, expected 68", self.landmarks.len())))
    }
}

impl FaceNets {
    pub fn from_bytes(bytes: ModelBytes, device: &Device) -> Result<Self> {
        Ok(Self {
            detector: bytes
                .detector
                .map(|b| SsdMobilenetV1::from_bytes(b, device))
                .transpose()?,
            landmarks: bytes
                .landmarks68
                .map(|b| FaceLandmark68Net::from_bytes(b, device))
                .transpose()?,
            resnet: bytes
                .resnet
                .map(|b| FaceRecognitionNet::from_bytes(b, device))
                .transpose()?,
            faceres: bytes
                .faceres
                .map(|b| FaceRes::from_bytes(b, device))
                .transpose()?,
            mediapipe: match (bytes.blazeface, bytes.facemesh) {
                (Some(detector), Some(mesh)) => Some((
                    BlazeFace::from_bytes(detector, device)?,
                    FaceMesh::from_bytes(mesh, device)?,
                )),
                (None, None) => None,
                _ => {
                    return Err(Error::model(
                        Network::FaceMesh.file_name(),
                        "BlazeFace and the face mesh work together: give both records or neither",
                    ));
                }
            },
            device: device.clone(),
        })
    }

    /// Loads the networks' records from a folder (`models/` by default). The networks the fit
    /// can do without (face-api's SSD detector, 68-point network and ResNet, faceres) are left
    /// out when their file is absent, and name it when asked for; a file that is there must
    /// load.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn load(dir: &std::path::Path, device: &Device) -> Result<Self> {
        let read = |n: Network| crate::io::read_model_file(dir, n.file_name());
        let optional = |n: Network| {
            dir.join(n.file_name())
                .exists()
                .then(|| read(n))
                .transpose()
        };
        Self::from_bytes(
            ModelBytes {
                detector: optional(Network::Detector)?,
                landmarks68: optional(Network::Landmarks68)?,
                resnet: optional(Network::ResNet)?,
                faceres: optional(Network::FaceRes)?,
                blazeface: Some(read(Network::BlazeFace)?),
                facemesh: Some(read(Network::FaceMesh)?),
            },
            device,
        )
    }

    /// face-api's ResNet (evaluation only); [`Error::ModelFile`] when it was not loaded.
    pub fn resnet(&self) -> Result<&FaceRecognitionNet> {
        self.resnet.as_ref().ok_or_else(|| {
            Error::model(
                Network::ResNet.file_name(),
                "not loaded (the fitter does not need it; `make models` converts it)",
            )
        })
    }

    /// face-api's SSD detector; [`Error::ModelFile`] when it was not loaded.
    pub fn ssd(&self) -> Result<&SsdMobilenetV1> {
        self.detector.as_ref().ok_or_else(|| {
            Error::model(
                Network::Detector.file_name(),
                "not loaded (`make models` converts it)",
            )
        })
    }

    /// face-api's 68-point network; [`Error::ModelFile`] when it was not loaded.
    pub fn landmarks_net(&self) -> Result<&FaceLandmark68Net> {
        self.landmarks.as_ref().ok_or_else(|| {
            Error::model(
                Network::Landmarks68.file_name(),
                "not loaded (`--eyes face-api` and the evaluation need it; `make models` converts it)",
            )
        })
    }

    /// faceres, the identity terms' network; [`Error::ModelFile`] when it was not loaded.
    pub fn faceres(&self) -> Result<&FaceRes> {
        self.faceres.as_ref().ok_or_else(|| {
            Error::model(
                Network::FaceRes.file_name(),
                "not loaded: the identity terms (on by default; `ganfit fit --no-identity` turns them off) and the identity evaluation need it (`make models` converts it)",
            )
        })
    }

    /// Whether faceres is loaded (the identity terms can run).
    pub fn has_faceres(&self) -> bool {
        self.faceres.is_some()
    }

    /// Loads faceres after the others (the page fetches it only when a fit asks for the
    /// identity terms).
    pub fn load_faceres(&mut self, bytes: Vec<u8>) -> Result<()> {
        self.faceres = Some(FaceRes::from_bytes(bytes, &self.device)?);
        Ok(())
    }

    /// The eyes [`Self::analyse`] uses: MediaPipe's when loaded.
    pub fn eyes(&self) -> Eyes {
        match self.mediapipe {
            Some(_) => Eyes::MediaPipe,
            None => Eyes::FaceApi,
        }
    }

    /// BlazeFace and the face mesh; [`Error::ModelFile`] when they were not loaded.
    pub fn mediapipe(&self) -> Result<&(BlazeFace, FaceMesh)> {
        self.mediapipe.as_ref().ok_or_else(|| {
            Error::model(
                Network::BlazeFace.file_name(),
                "BlazeFace and the face mesh are not loaded",
            )
        })
    }

    /// All faces, largest first, found by the default eyes.
    pub async fn detect(&self, image: &RgbImage) -> Result<Detections> {
        self.detect_with(image, self.eyes()).await
    }

    /// All faces, largest first, found by `eyes`' detector.
    pub async fn detect_with(&self, image: &RgbImage, eyes: Eyes) -> Result<Detections> {
        match eyes {
            Eyes::MediaPipe => {
                let (detector, _) = self.mediapipe()?;
                detector
                    .detect(image, &self.device, &BlazeFaceOptions::default())
                    .await
            }
            Eyes::FaceApi => {
                self.ssd()?
                    .detect(image, &self.device, &DetectorOptions::default())
                    .await
            }
        }
    }

    /// For a photo without an upright face: the clockwise turn (90, 180 or 270°) that shows
    /// one, if any. BlazeFace is trained on upright faces (about ±45° of roll), so a photo on
    /// its side or upside down, whose EXIF data does not say so, would otherwise read as "no
    /// face". Three more BlazeFace passes, only when the first found nothing (MediaPipe's eyes
    /// only).
    async fn turned_face(&self, image: &RgbImage, eyes: Eyes) -> Result<Option<u32>> {
        use image::imageops::{rotate90, rotate180, rotate270};
        // BlazeFace passes cost milliseconds; the SSD's a second on a CPU: not for every
        // faceless photo of a batch.
        if eyes != Eyes::MediaPipe {
            return Ok(None);
        }
        for (degrees, turn) in [
            (180, rotate180 as fn(&RgbImage) -> RgbImage),
            (90, rotate90),
            (270, rotate270),
        ] {
            // BlazeFace alone also "finds" faces in textures and in faces too small to see:
            // the turn counts only for a face of a findable size that the mesh recognises.
            let turned = turn(image);
            let detections = self.detect_with(&turned, eyes).await?;
            let findable = min_face_width(image.width(), image.height());
            if let Some(face) = detections
                .faces
                .first()
                .filter(|f| f.rect.width >= findable)
            {
                match self.mesh(&turned, face).await {
                    Ok(_) => return Ok(Some(degrees)),
                    Err(Error::MeshRejected(_)) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(None)
    }

    /// The face mesh of a detected face (two passes; see [`FaceMesh::landmarks`]).
    pub async fn mesh(&self, image: &RgbImage, face: &Detection) -> Result<Mesh> {
        let (_, mesh) = self.mediapipe()?;
        mesh.landmarks(image, face, &self.device).await
    }

    /// face-api's 68 points of a detected face, in image pixels.
    pub async fn landmarks68(&self, image: &RgbImage, face: &Detection) -> Result<Points68> {
        self.landmarks_net()?
            .landmarks68(image, face, &self.device)
            .await
    }

    /// Detect → largest face → landmarks → crops, with the default eyes. [`Error::NoFace`]
    /// when nothing is found.
    pub async fn analyse(&self, image: &RgbImage) -> Result<FaceAnalysis> {
        self.analyse_with(image, self.eyes()).await
    }

    /// [`Self::analyse`] with the given eyes.
    pub async fn analyse_with(&self, image: &RgbImage, eyes: Eyes) -> Result<FaceAnalysis> {
        self.analyse_face(image, eyes, 0).await
    }

    /// [`Self::analyse_with`] for the detected face `index` (0: the largest, then by size).
    /// [`Error::NoFace`] without faces, [`Error::Invalid`] naming the count when `index` is
    /// beyond them.
    pub async fn analyse_face(
        &self,
        image: &RgbImage,
        eyes: Eyes,
        index: usize,
    ) -> Result<FaceAnalysis> {
        let detections = self.detect_with(image, eyes).await?;
        let face = match detections.faces.get(index) {
            Some(face) => *face,
            None if detections.faces.is_empty() => {
                return Err(self
                    .turned_face(image, eyes)
                    .await?
                    .map_or(Error::NoFace, Error::FaceRotated));
            }
            None => {
                return Err(Error::Invalid(format!(
                    "face {index} was asked for; {} found (numbered from 0, largest first)",
                    detections.faces.len()
                )));
            }
        };
        // A face the mesh refuses (in profile, mostly) still has BlazeFace's keypoints: the
        // canonical face posed by them stands in (see `keypoint_pose` for why not face-api's
        // 68-point network), and the analysis says so.
        let (points, mesh, landmarks_by, mesh_rejected) = match eyes {
            Eyes::MediaPipe => match self.mesh(image, &face).await {
                Ok(mesh) => (
                    facemesh::to_68(&mesh.points),
                    Some(mesh),
                    LandmarkSource::MediaPipe,
                    None,
                ),
                Err(Error::MeshRejected(flag)) => {
                    let posed = face
                        .keypoints
                        .as_ref()
                        .and_then(keypoint_pose::landmarks_from_keypoints)
                        .ok_or(Error::MeshRejected(flag))?;
                    (posed.landmarks, None, LandmarkSource::Keypoints, Some(flag))
                }
                Err(e) => return Err(e),
            },
            Eyes::FaceApi => (
                self.landmarks68(image, &face).await?,
                None,
                LandmarkSource::FaceApi,
                None,
            ),
        };
        Ok(FaceAnalysis {
            face,
            faces: detections.faces.iter().map(|d| d.rect).collect(),
            index,
            detected_by: eyes,
            landmarks_by,
            mesh_rejected,
            mesh,
            landmarks: points.to_vec(),
            arcface: align::arcface_transform(&points)?,
            chip: align::faceapi_chip(&points, image.width(), image.height(), resnet::INPUT_SIZE),
        })
    }

    /// faceres' input for a photo: the ArcFace crop at 224², `[1, 224, 224, 3]` (the 112²
    /// template scaled ×2).
    pub fn faceres_input(&self, image: &RgbImage, analysis: &FaceAnalysis) -> Tensor<4> {
        let n = faceres::INPUT_SIZE;
        let transform = analysis.arcface.crop_resized(align::ARCFACE_SIZE, n);
        let crop = align::warp_image(image, &transform, n);
        Tensor::from_data(TensorData::new(crop, [1, n, n, 3]), &self.device)
    }

    /// The ResNet's input for a photo: face-api's chip `[1, 150, 150, 3]`.
    pub fn resnet_input(&self, image: &RgbImage, analysis: &FaceAnalysis) -> Result<Tensor<4>> {
        let chip = analysis.chip.ok_or(Error::NoFace)?;
        let n = resnet::INPUT_SIZE;
        Ok(Tensor::from_data(
            TensorData::new(chip.sample(image), [1, n, n, 3]),
            &self.device,
        ))
    }
}
