//! What a fit reports while it runs and what it returns.

use image::RgbImage;
use serde::{Deserialize, Serialize};

use super::losses::LossTerm;
use super::options::FitOptions;
use super::params::PhotoParams;
use super::photo::PhotoSummary;

/// Which stage an event comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FitStage {
    Preparing,
    Landmarks,
    Full,
    /// Stage 3: the identity terms on the texture, the light and the identity
    /// (`FitOptions::identity_iterations`, `FitOptions::identity_rates`).
    Identity,
}

/// Loss terms of one report (each already weighted; `total` is their sum).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LossValues {
    pub total: f32,
    pub landmarks: f32,
    pub pixel: f32,
    pub identity: f32,
    pub random_identity: f32,
    pub content: f32,
    pub priors: f32,
}

impl LossValues {
    /// Every value with its name: `total` first, then the terms in declaration order.
    pub fn named(&self) -> [(&'static str, f32); 7] {
        [
            ("total", self.total),
            ("landmarks", self.landmarks),
            ("pixel", self.pixel),
            ("identity", self.identity),
            ("random_identity", self.random_identity),
            ("content", self.content),
            ("priors", self.priors),
        ]
    }

    /// Adds one term's weighted value (every prior into `priors`); `total` is left to the caller.
    pub fn add(&mut self, term: LossTerm, value: f32) {
        match term {
            LossTerm::Landmarks => self.landmarks += value,
            LossTerm::Pixel => self.pixel += value,
            LossTerm::Identity => self.identity += value,
            LossTerm::RandomIdentity => self.random_identity += value,
            LossTerm::Content => self.content += value,
            LossTerm::IdentityPrior
            | LossTerm::ExpressionPrior
            | LossTerm::TexturePrior
            | LossTerm::FocalPrior => self.priors += value,
        }
    }
}

/// A render of the current fit over the working crop of one photo (RGB8, row-major).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Preview {
    pub photo: usize,
    pub width: usize,
    pub height: usize,
    pub rgb: Vec<u8>,
}

/// A progress report.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Progress {
    pub stage: FitStage,
    pub iteration: usize,
    pub iterations: usize,
    pub losses: Option<LossValues>,
    pub preview: Option<Preview>,
    pub elapsed_ms: f64,
}

/// One line of the loss log.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LogEntry {
    pub stage: FitStage,
    pub iteration: usize,
    pub losses: LossValues,
}

/// One photo's share of a result.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PhotoFit {
    /// Which of the input photos (0-based) this is the fit of: photos without a detected face
    /// are left out of a several-photo fit, so the list can be shorter than the input.
    pub index: usize,
    pub photo: PhotoSummary,
    pub params: PhotoParams,
    /// The fitted model's 68 landmarks where annotators put them
    /// (`FaceModel::annotated_landmarks`; the jaw on the visible contour when the photo's
    /// landmarks follow it) projected into the photo,
    /// pixels (centre of the top-left pixel at 0.5).
    pub fitted_landmarks: Vec<[f32; 2]>,
    /// Every shape vertex of the fitted face projected into the photo, pixels (as
    /// `fitted_landmarks`; hidden ones too): what calibrates where the 68 sit on the model
    /// (`ganfit eval embedding --annotated`).
    #[serde(skip)]
    pub vertices_2d: Vec<[f32; 2]>,
    /// Final render over the working crop, RGB8 `resolution²`, and its coverage (0-255).
    #[serde(skip)]
    pub render: Option<(RgbImage, Vec<u8>)>,
    /// What of the render to draw over the photo (0-255, `resolution²`): the face area, faded
    /// at its border, so that the model's scalp and neck do not cover hair and clothes.
    #[serde(skip)]
    pub overlay_alpha: Vec<u8>,
    /// The final textured mesh (the photo-blended texture) rendered from the photo's camera over
    /// the working crop, RGB8 `resolution²` (its coverage is `render`'s); `None` when the photo
    /// texture was not blended in.
    #[serde(skip)]
    pub blended_render: Option<RgbImage>,
}

/// How the final texture came out (when the photo texture is blended in).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TextureCheck {
    /// Mean L1 (RGB in [0, 1]) over the face area between each photo and the fit rendered from
    /// its camera with the model's texture, and with the final texture.
    pub model_photo_l1: f32,
    pub final_photo_l1: f32,
    /// The final texture's seam measure (`fit::unwrap::BlendedTexture::seam`).
    pub seam: Option<f32>,
    /// Seen texels left to the model as not skin.
    pub rejected_texels: usize,
}

/// The least height of a fit's output texture (the width follows the atlas).
pub const OUTPUT_TEXTURE_HEIGHT: u32 = 256;

/// Everything a fit produces.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FitResult {
    pub photos: Vec<PhotoFit>,
    /// Shape vertices of the reconstruction, mm (photo 0's expression; neutral when several
    /// photos share the identity).
    #[serde(skip)]
    pub shape: Vec<[f32; 3]>,
    /// The UV albedo map (RGB8, the model's atlas size, enlarged to at least
    /// [`OUTPUT_TEXTURE_HEIGHT`] texels high).
    #[serde(skip)]
    pub texture: Option<RgbImage>,
    pub texture_model: String,
    /// The final texture against the photos (`None` without the photo blend).
    #[serde(default)]
    pub texture_check: Option<TextureCheck>,
    pub options: FitOptions,
    pub log: Vec<LogEntry>,
    pub warnings: Vec<String>,
    pub milliseconds: f64,
}

/// What the caller's observer answers: go on, or cancel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    Continue,
    Cancel,
}
