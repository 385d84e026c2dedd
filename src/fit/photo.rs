//! A photo made ready for fitting: detect → landmarks → a square working crop around the face
//! at the fit resolution, the landmarks in that crop, the ArcFace alignment, the identity
//! and a first camera from the landmarks alone.

use burn::tensor::{Tensor, TensorData};
use image::RgbImage;
use serde::{Deserialize, Serialize};

use super::options::FitOptions;
use super::pose_init::{Pose, pose_from_landmarks};
use crate::error::{Error, Result};
use crate::face_model::{FaceModel, JawConvention};
use crate::nets::{self, Affine, FaceAnalysis, FaceNets, LandmarkSource, align};

/// Side of the working crop relative to the landmarks' bounding box: room for the forehead and
/// the head's silhouette, which the 68 points do not reach.
pub const CROP_MARGIN: f64 = 1.8;
/// Horizontal field of view assumed for an unknown camera (a normal lens).
pub const ASSUMED_FOV_DEGREES: f64 = 50.0;
/// Absolute yaw beyond which only one side of the face is visible.
pub const PROFILE_YAW_DEGREES: f32 = 60.0;

/// What the fit knows of one photo.
#[derive(Debug, Clone)]
pub struct PhotoTarget {
    /// The photo's width and height, pixels.
    pub photo_size: [u32; 2],
    pub analysis: FaceAnalysis,
    /// Working-crop pixel → photo pixel.
    pub crop: Affine,
    pub resolution: usize,
    /// `[1, R, R, 3]` in [0, 1].
    pub image: Tensor<4>,
    /// The same crop on the host, RGB in [0, 1], row-major.
    pub pixels: Vec<f32>,
    /// 1 where a crop pixel lies inside the photo, 0 where the crop reaches past the photo's
    /// border (black in `pixels`, not the face's colour): `R²`, row-major.
    pub inside: Vec<f32>,
    /// The 68 points in working-crop pixels.
    pub landmarks: Vec<[f32; 2]>,
    /// The face mesh's 468 points in working-crop pixels, when the mesh saw the face.
    pub mesh_points: Option<Vec<[f32; 2]>>,
    /// The ArcFace crop: 112² crop pixel → working-crop pixel (renders use it too).
    pub arcface: Affine,
    /// Initial focal length, crop pixels, and pose.
    pub focal: f32,
    pub pose: Pose,
    pub warnings: Vec<String>,
}

/// Serializable summary of the preparation, reported with the result.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PhotoSummary {
    pub width: u32,
    pub height: u32,
    pub faces_found: usize,
    /// Every detected face, largest first: x, y, width, height in photo pixels (choose one with
    /// the `face` option).
    pub faces: Vec<[f64; 4]>,
    /// Which of `faces` was fitted.
    pub face: usize,
    pub face_box: [f64; 4],
    pub landmarks: Vec<[f32; 2]>,
    pub crop: Affine,
    pub warnings: Vec<String>,
}

/// The square crop around the landmarks, as crop pixel → photo pixel.
pub fn working_crop(landmarks: &[[f32; 2]], resolution: usize) -> Affine {
    let (mut lo, mut hi) = ([f64::MAX; 2], [f64::MIN; 2]);
    for p in landmarks {
        for k in 0..2 {
            lo[k] = lo[k].min(p[k] as f64);
            hi[k] = hi[k].max(p[k] as f64);
        }
    }
    let side = (hi[0] - lo[0]).max(hi[1] - lo[1]).max(1.0) * CROP_MARGIN;
    // The landmarks sit low in the head: shift the crop up to include the forehead.
    let centre = [(lo[0] + hi[0]) / 2.0, (lo[1] + hi[1]) / 2.0 - 0.08 * side];
    let s = side / resolution as f64;
    Affine {
        a: s,
        b: 0.0,
        c: 0.0,
        d: s,
        tx: centre[0] - 0.5 * side,
        ty: centre[1] - 0.5 * side,
    }
}

/// Prepares `photo` for a fit at `resolution` on the identity network's device.
pub async fn prepare(
    nets: &FaceNets,
    face: &FaceModel,
    photo: &RgbImage,
    options: &FitOptions,
) -> Result<PhotoTarget> {
    let resolution = options.resolution;
    let analysis = nets
        .analyse_face(photo, options.eyes.unwrap_or(nets.eyes()), options.face)
        .await?;
    let crop = working_crop(&analysis.landmarks, resolution);
    let to_crop = crop
        .inverse()
        .ok_or_else(|| Error::Invalid("degenerate face crop".into()))?;
    let in_crop = |p: [f32; 2]| {
        let q = to_crop.apply([p[0] as f64, p[1] as f64]);
        [q[0] as f32, q[1] as f32]
    };
    let landmarks: Vec<[f32; 2]> = analysis.landmarks.iter().map(|&p| in_crop(p)).collect();
    let mesh_points = analysis
        .mesh
        .as_ref()
        .map(|m| m.points.iter().map(|p| in_crop([p[0], p[1]])).collect());
    let pixels = align::warp_image(photo, &crop, resolution);
    let inside = align::inside_mask(
        &crop,
        resolution,
        [photo.width() as usize, photo.height() as usize],
    );
    let device = nets.device.clone();
    let image = Tensor::<4>::from_data(
        TensorData::new(pixels.clone(), [1, resolution, resolution, 3]),
        &device,
    );
    let points: nets::Points68 = landmarks
        .as_slice()
        .try_into()
        .map_err(|_| Error::Invalid("expected 68 landmarks".into()))?;
    let arcface = align::arcface_transform(&points)?;
    // Focal length of a normal lens for the whole photo, in crop pixels.
    let photo_focal = 0.5 * photo.width().max(photo.height()) as f64
        / (0.5 * ASSUMED_FOV_DEGREES.to_radians()).tan();
    let focal = (photo_focal / crop.scale()) as f32;
    let model_points: Vec<[f32; 3]> = face
        .landmark_indices()
        .iter()
        .map(|&v| face.mean_positions()[v as usize])
        .collect();
    // The jaw points slide along the contour: leave them out of the closed-form pose.
    let pose = pose_from_landmarks(
        &model_points[17..],
        &landmarks[17..],
        resolution as f32,
        resolution as f32,
        focal,
    )
    .unwrap_or(Pose {
        angles: [0.0; 3],
        translation: [0.0, 0.0, -(focal as f64 * 150.0 / resolution as f64) as f32],
    });
    let mut warnings = Vec::new();
    if let Some(flag) = analysis.mesh_rejected {
        warnings.push(format!(
            "the face mesh did not recognise the face (face flag {flag:.2}; often a profile): the landmarks are a mean face posed by the detector's six keypoints, coarse"
        ));
    }
    if analysis.faces_found() > 1 {
        warnings.push(match options.face {
            0 => format!(
                "{} faces found; the largest is fitted (choose another with the face option, numbered from 0 by size)",
                analysis.faces_found()
            ),
            i => format!(
                "{} faces found; face {i} (by size, from 0) is fitted",
                analysis.faces_found()
            ),
        });
    }
    let yaw = pose.angles[1].to_degrees();
    if yaw.abs() > PROFILE_YAW_DEGREES {
        warnings.push(format!(
            "profile view (yaw {yaw:.0}°): only the visible side is constrained by the photo"
        ));
    }
    let face = analysis.face.rect;
    let findable = nets::min_face_width(photo.width(), photo.height());
    if face.width < findable {
        warnings.push(format!(
            "the detected face is {:.0} px wide, under the {findable:.0} px a face needs in a photo this size to be found reliably: it may not be a face",
            face.width
        ));
    }
    // A tenth of the face outside the photo: the model guesses the rest.
    let (w, h) = (photo.width() as f64, photo.height() as f64);
    let slack = 0.1 * face.width;
    if face.x < -slack
        || face.y < -slack
        || face.x + face.width > w + slack
        || face.y + face.height > h + slack
    {
        warnings.push(
            "the face is cut by the photo's border: the fit guesses the part outside".to_string(),
        );
    }
    let face_side = crop.scale() * resolution as f64 / CROP_MARGIN;
    if face_side < 40.0 {
        warnings.push(format!(
            "small face ({face_side:.0} px across): expect a coarse fit"
        ));
    }
    Ok(PhotoTarget {
        photo_size: [photo.width(), photo.height()],
        analysis,
        crop,
        resolution,
        image,
        pixels,
        inside,
        landmarks,
        mesh_points,
        arcface,
        focal,
        pose,
        warnings,
    })
}

impl PhotoTarget {
    /// What the target's jaw landmarks mark: the face mesh's and the keypoint-posed face's
    /// are surface points, face-api's the visible outline.
    pub fn jaw_convention(&self) -> JawConvention {
        match self.analysis.landmarks_by {
            LandmarkSource::MediaPipe | LandmarkSource::Keypoints => JawConvention::Surface,
            LandmarkSource::FaceApi => JawConvention::Contour,
        }
    }

    pub fn summary(&self) -> PhotoSummary {
        let f = &self.analysis.face;
        PhotoSummary {
            width: self.photo_size[0],
            height: self.photo_size[1],
            faces_found: self.analysis.faces_found(),
            faces: self
                .analysis
                .faces
                .iter()
                .map(|r| [r.x, r.y, r.width, r.height])
                .collect(),
            face: self.analysis.index,
            face_box: [f.rect.x, f.rect.y, f.rect.width, f.rect.height],
            landmarks: self.analysis.landmarks.clone(),
            crop: self.crop,
            warnings: self.warnings.clone(),
        }
    }
}
