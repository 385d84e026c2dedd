//! The fitting engine: GANFit's staged optimisation through the differentiable renderer.
//!
//! 1. Every photo is prepared ([`photo`]): face detection, 68 landmarks, a working crop at the
//!    fit resolution, the identity network's features of the photo, and a closed-form pose.
//! 2. Stage 1 fits camera, identity and expression to the landmarks alone (the jaw points slide
//!    along the visible contour); no image is rendered.
//! 3. Stage 2 optimises everything (identity, expression, texture latent, camera, light) with
//!    the pixel (L1 on the face area), landmark and prior terms.
//! 4. Stage 3 ([`FitOptions::identity_iterations`]) adds GANFit's identity-network terms, on
//!    faceres: identity (1 − cos of the embeddings of aligned crops of photo and render),
//!    randomised identity (the same against a render with random expression, pose and light)
//!    and content (intermediate activations). They move the texture, the light and the
//!    identity ([`FitOptions::identity_rates`]), held by the landmark term and an anchor on
//!    the reported 68, on the expression and camera of stage 2: moving everything, they made
//!    the shape and the landmarks worse ([`LossWeights`] says why). With
//!    `identity_iterations` 0 they join stage 2 and move everything, as in GANFit. Each is
//!    computed only when weighted.
//!
//! Photos known to show one person share identity and texture rows (jointly optimised, which
//! averages their gradients as GANFit averages p_s); expression, camera and light are per
//! photo. Everything runs on one device (autodiff CPU, native wgpu, or WebGPU) and never
//! blocks: reads are awaited, so the browser stays responsive and can cancel.

pub mod export;
pub mod landmark_targets;
pub mod losses;
pub mod models;
pub mod options;
pub mod overlay;
pub mod params;
pub mod photo;
pub mod pose_init;
pub mod result;
pub mod scene;
pub mod session;
pub mod track;
pub mod unwrap;

use image::RgbImage;

pub use self::models::Models;
pub use self::options::{FitOptions, LossWeights};
pub use self::params::Rates;
pub use self::result::{
    Control, FitResult, FitStage, LogEntry, LossValues, OUTPUT_TEXTURE_HEIGHT, PhotoFit, Preview,
    Progress,
};
pub use self::session::{Observer, Session};
use crate::error::{Error, Result};
use crate::util::clock::now_ms;

/// Fits `photos` (one person when `options.same_person`, else each photo on its own).
pub async fn fit(
    models: &Models,
    photos: &[RgbImage],
    options: &FitOptions,
    observer: &mut Observer<'_>,
) -> Result<FitResult> {
    if photos.is_empty() {
        return Err(Error::Invalid("no photos to fit".into()));
    }
    if options.same_person || photos.len() == 1 {
        return fit_person(models, photos, 0, options, observer).await;
    }
    let start = now_ms();
    let mut combined: Option<FitResult> = None;
    let mut skipped = Vec::new();
    for (index, photo) in photos.iter().enumerate() {
        let one = match fit_person(
            models,
            std::slice::from_ref(photo),
            index,
            options,
            observer,
        )
        .await
        {
            Ok(one) => one,
            Err(e) if e.is_no_face() => {
                skipped.push(session::no_face_warning(index, &e));
                continue;
            }
            Err(e) => return Err(e),
        };
        match &mut combined {
            None => combined = Some(one),
            Some(all) => {
                all.photos.extend(one.photos);
                all.log.extend(one.log);
                all.warnings.extend(one.warnings);
            }
        }
    }
    // No face in any photo is the caller's error, not an empty result.
    let mut result = combined.ok_or(Error::NoFace)?;
    result.warnings.extend(skipped);
    result.milliseconds = now_ms() - start;
    Ok(result)
}

/// Fits `photos` as one person; `first_index` numbers them among the caller's photos.
async fn fit_person(
    models: &Models,
    photos: &[RgbImage],
    first_index: usize,
    options: &FitOptions,
    observer: &mut Observer<'_>,
) -> Result<FitResult> {
    Ok(
        fit_person_stages(models, photos, first_index, options, observer, false)
            .await?
            .0,
    )
}

/// Fits one photo as [`fit`] does and returns beside it the same fit finished before its stage
/// 3 (the identity stage), which is the fit with the identity terms off: a paired ablation at
/// the cost of one fit. The second is `None` when the options run no stage 3.
pub async fn fit_with_stage_2_result(
    models: &Models,
    photo: &RgbImage,
    options: &FitOptions,
    observer: &mut Observer<'_>,
) -> Result<(FitResult, Option<FitResult>)> {
    fit_person_stages(
        models,
        std::slice::from_ref(photo),
        0,
        options,
        observer,
        true,
    )
    .await
}

/// The stages of one person's fit; with `keep_stage_2`, also the fit finished before stage 3
/// (when it runs).
async fn fit_person_stages(
    models: &Models,
    photos: &[RgbImage],
    first_index: usize,
    options: &FitOptions,
    observer: &mut Observer<'_>,
    keep_stage_2: bool,
) -> Result<(FitResult, Option<FitResult>)> {
    if options.weights.use_identity_network() {
        // Before any work: the identity terms cannot run without their network.
        models.nets.faceres()?;
    }
    let mut session = Session::prepare(
        &models.face,
        &models.nets,
        photos,
        first_index,
        models.texture.parameters(),
        options,
        observer,
    )
    .await?;
    session
        .landmark_stage(&models.face, options, observer)
        .await?;
    session.full_stage(models, options, observer).await?;
    let stage_2 = match keep_stage_2 && session::runs_identity_stage(options) {
        true => Some(session.clone().finish(models, options).await?),
        false => None,
    };
    session.identity_stage(models, options, observer).await?;
    Ok((session.finish(models, options).await?, stage_2))
}
