//! Tracking: a known person's expression and head pose, frame after frame (`ganfit track`, the
//! page's live mirror). Each frame gets its own detection and landmarks, then a short
//! landmark-only fit of expression and pose with the identity held at the person's, started
//! from the previous frame's expression and head rotation. A frame without a face holds the
//! last pose and says so.

use image::RgbImage;
use serde::{Deserialize, Serialize};

use super::models::Models;
use super::options::FitOptions;
use super::result::Control;
use super::session::Session;
use crate::error::{Error, Result};
use crate::util::clock::now_ms;

/// Landmark iterations per frame by default: enough to follow a face from the last frame's
/// expression, few enough for a live view.
pub const DEFAULT_ITERATIONS: usize = 30;

/// One frame's expression and pose.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FrameTrack {
    /// Whether a face was found; when not, the values are the last frame's (or neutral).
    pub face_found: bool,
    /// One weight per expression blendshape, the face model's order (`expression_names`).
    pub expression: Vec<f32>,
    /// Pitch, yaw, roll, radians.
    pub angles: [f32; 3],
    /// Camera-space translation of this frame's working crop, mm.
    pub translation_mm: [f32; 3],
    pub focal_px: f32,
    /// The landmark loss the frame's fit ended at (none without a face).
    pub landmark_loss: Option<f32>,
    pub milliseconds: f64,
    pub warnings: Vec<String>,
}

/// Follows one person through frames; see the module's documentation. It keeps no reference to
/// the models (each frame is given them), so an engine that owns its models can keep a tracker
/// beside them between frames.
pub struct Tracker {
    identity: Vec<f32>,
    num_expression: usize,
    options: FitOptions,
    previous: Option<FrameTrack>,
}

impl Tracker {
    /// `identity`: the person's identity coefficients (a fit's `params.identity`);
    /// `iterations`: landmark iterations per frame; `options`: the rest of the fit's options
    /// (resolution, the eyes, rates), of which only the landmark stage is used.
    pub fn new(
        models: &Models,
        identity: Vec<f32>,
        iterations: usize,
        options: &FitOptions,
    ) -> Result<Self> {
        if identity.len() != models.face.num_identity() {
            return Err(Error::Invalid(format!(
                "identity: {} values, the face model has {}",
                identity.len(),
                models.face.num_identity()
            )));
        }
        let mut options = options.clone();
        options.landmark_iterations = iterations;
        options.iterations = 0;
        options.report_every = iterations.max(1);
        options.landmark_rates.identity = 0.0;
        options.validate()?;
        Ok(Self {
            identity,
            num_expression: models.face.num_expression(),
            options,
            previous: None,
        })
    }

    /// The person's identity coefficients.
    pub fn identity(&self) -> &[f32] {
        &self.identity
    }

    /// Fits one frame with `models` (the ones the tracker was made with).
    pub async fn frame(&mut self, models: &Models, frame: &RgbImage) -> Result<FrameTrack> {
        let start = now_ms();
        if models.face.num_identity() != self.identity.len() {
            return Err(Error::Invalid(
                "tracker: these models are not the ones it was made with".into(),
            ));
        }
        let (face, nets) = (&models.face, &models.nets);
        let mut quiet = |_: &super::result::Progress| Control::Continue;
        let prepared = Session::prepare(
            face,
            nets,
            std::slice::from_ref(frame),
            0,
            models.texture.parameters(),
            &self.options,
            &mut quiet,
        )
        .await;
        let mut session = match prepared {
            Ok(session) => session,
            Err(e) if e.is_no_face() || matches!(e, Error::MeshRejected(_)) => {
                return Ok(self.held(format!("{e}: the head holds its last pose"), start));
            }
            Err(e) => return Err(e),
        };
        // `previous` only ever holds a frame with a face: a held frame is not kept.
        let previous = self
            .previous
            .as_ref()
            .map(|p| (p.expression.as_slice(), p.angles));
        session.warm_start(&self.identity, previous)?;
        session
            .landmark_stage(face, &self.options, &mut quiet)
            .await?;
        let params = session
            .params
            .read()
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| Error::Invalid("the frame's fit holds no photo".into()))?;
        let track = FrameTrack {
            face_found: true,
            expression: params.expression,
            angles: params.angles,
            translation_mm: params.translation_mm,
            focal_px: params.focal_px,
            landmark_loss: session.log.last().map(|e| e.losses.landmarks),
            milliseconds: now_ms() - start,
            warnings: session.warnings.clone(),
        };
        self.previous = Some(track.clone());
        Ok(track)
    }

    /// A frame without a usable face: the last pose (or the neutral face), with `warning`.
    fn held(&self, warning: String, start: f64) -> FrameTrack {
        let mut track = self.previous.clone().unwrap_or(FrameTrack {
            face_found: false,
            expression: vec![0.0; self.num_expression],
            angles: [0.0; 3],
            translation_mm: [0.0; 3],
            focal_px: 0.0,
            landmark_loss: None,
            milliseconds: 0.0,
            warnings: Vec::new(),
        });
        track.face_found = false;
        track.landmark_loss = None;
        track.milliseconds = now_ms() - start;
        track.warnings = vec![warning];
        track
    }
}
