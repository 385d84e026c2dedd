//! One person's fit in progress: the prepared photos, the parameters, the log, and the stages,
//! each a [`Session::run_stage`] loop configured by its plan and its loss.

use burn::tensor::{Device, Tensor, TensorData};
use image::RgbImage;

use super::landmark_targets::LandmarkTargets;
use super::losses::{self, LossTerm};
use super::models::Models;
use super::options::{FitOptions, LossWeights};
use super::params::{Initial, Leaves, Params, PhotoParams, Rates, on_device, per_photo};
use super::photo::{self, PhotoTarget};
use super::result::{
    Control, FitResult, FitStage, LogEntry, LossValues, OUTPUT_TEXTURE_HEIGHT, PhotoFit, Preview,
    Progress, TextureCheck,
};
use super::{scene, unwrap};
use crate::device::read_floats;
use crate::error::{Error, Result};
use crate::face_model::{FaceModel, JawConvention};
use crate::nets::FaceNets;
use crate::render::shading::{PhongLight, normalize};
use crate::texture::latent;
use crate::texture::model::TextureModel;
use crate::util::adam::{Adam, Slot};
use crate::util::clock::now_ms;
use crate::util::rng::SplitMix64;

/// What the caller watches a fit with: every report goes through it, and its answer can cancel.
pub type Observer<'a> = dyn FnMut(&Progress) -> Control + 'a;

/// One stage's schedule: which groups move and how fast, for how long, and how it reports.
struct StagePlan {
    stage: FitStage,
    iterations: usize,
    rates: Rates,
    report_every: usize,
    /// Read a preview render every this many iterations (0: never).
    preview_every: usize,
    /// The texture parameters are a GAN latent: put them back on its sphere after each step and
    /// decay their rate (see `texture::latent`).
    sphere_texture: bool,
}

/// A tensor one stage optimises besides [`Params`] (the lighting stage's flat albedo), with the
/// projection applied after each of its steps.
struct StageSlot {
    slot: Slot,
    project: fn(Tensor<2>) -> Tensor<2>,
}

/// One iteration's weighted loss terms, and the render a preview would show.
struct StepLoss {
    terms: Vec<(LossTerm, Tensor<1>)>,
    render: Option<Tensor<4>>,
}

/// Tracking: a frame whose landmarks' closed-form head rotation differs from the last frame's
/// fitted one by more than this (degrees, about any axis) starts from the closed-form one (see
/// [`Session::warm_start`]).
pub const TRACK_JUMP_DEGREES: f32 = 10.0;

/// One person's fit in progress: the prepared photos, the parameters, the log. A clone is an
/// independent copy (the tensors are shared until one of them steps).
#[derive(Clone)]
pub struct Session {
    pub targets: Vec<PhotoTarget>,
    /// The input photo each target came from, numbered from the caller's `first_index`
    /// (faceless photos are left out).
    pub sources: Vec<usize>,
    pub params: Params,
    pub log: Vec<LogEntry>,
    pub warnings: Vec<String>,
    start: f64,
    /// Each photo's 68 points and face-mesh points.
    landmarks: LandmarkTargets,
    /// `[N, 1]`: ln of each photo's initial focal length.
    focal_prior: Tensor<2>,
    last_good: Leaves,
}

impl Session {
    /// Prepares every photo and the initial parameters (`texture_parameters` wide texture rows;
    /// the full stage, the only one that moves them, sets their start). Photos are numbered from
    /// `first_index` in warnings and results.
    pub async fn prepare(
        face: &FaceModel,
        nets: &FaceNets,
        photos: &[RgbImage],
        first_index: usize,
        texture_parameters: usize,
        options: &FitOptions,
        observer: &mut Observer<'_>,
    ) -> Result<Self> {
        options.validate()?;
        let start = now_ms();
        let device = face.device().clone();
        let n = photos.len();
        let mut targets: Vec<PhotoTarget> = Vec::with_capacity(n);
        let mut sources = Vec::with_capacity(n);
        let mut skipped = Vec::new();
        for (i, photo) in photos.iter().enumerate() {
            let elapsed_ms = now_ms() - start;
            notify(
                observer,
                Progress {
                    stage: FitStage::Preparing,
                    iteration: i,
                    iterations: n,
                    losses: None,
                    preview: None,
                    elapsed_ms,
                },
            )?;
            match photo::prepare(nets, face, photo, options).await {
                Ok(target) => {
                    targets.push(target);
                    sources.push(first_index + i);
                }
                // One faceless view should not sink a several-view fit of the same person.
                Err(e) if n > 1 && e.is_no_face() => {
                    skipped.push(no_face_warning(first_index + i, &e))
                }
                Err(e) => return Err(e),
            }
        }
        if targets.is_empty() {
            return Err(Error::NoFace);
        }
        let n = targets.len();
        let mut warnings: Vec<String> = targets
            .iter()
            .zip(&sources)
            .flat_map(|(t, i)| t.warnings.iter().map(move |w| format!("photo {i}: {w}")))
            .collect();
        warnings.extend(skipped);
        let initial: Vec<Initial> = targets
            .iter()
            .map(|t| Initial {
                angles: t.pose.angles,
                translation: t.pose.translation,
                focal: t.focal,
            })
            .collect();
        let params = Params::new(
            1,
            &initial,
            face.num_identity(),
            face.num_expression(),
            texture_parameters,
            &device,
        );
        let landmarks = LandmarkTargets::new(face, &targets, options.weights.mesh_landmarks);
        let focal_logs: Vec<f32> = targets.iter().map(|t| t.focal.ln()).collect();
        let focal_prior = Tensor::<2>::from_data(TensorData::new(focal_logs, [n, 1]), &device);
        let last_good = params.values();
        Ok(Self {
            targets,
            sources,
            params,
            log: Vec::new(),
            warnings,
            start,
            landmarks,
            focal_prior,
            last_good,
        })
    }

    fn photos(&self) -> usize {
        self.targets.len()
    }

    /// Holds a known person's `identity` (tracking: the identity of an earlier fit) and starts
    /// the expression and the head's rotation from `previous`, the last frame's (expression,
    /// angles), when there is one. Translation and focal length stay the closed-form start from
    /// this photo's own landmarks: they are in its working crop's frame, which moves with the
    /// face. The rotation, too, stays the closed-form one when it differs from the last frame's
    /// by more than [`TRACK_JUMP_DEGREES`] about any axis: after a fast turn (or a dropped
    /// frame) the landmarks' own pose is the nearer start, and a short fit would not get there
    /// from the old one.
    pub fn warm_start(
        &mut self,
        identity: &[f32],
        previous: Option<(&[f32], [f32; 3])>,
    ) -> Result<()> {
        let device = self.params.identity.value.device();
        let n = self.photos();
        let row = |values: &[f32], what: &str, expected: usize| -> Result<Tensor<2>> {
            if values.len() != expected {
                return Err(Error::Invalid(format!(
                    "{what}: {} values, the face model has {expected}",
                    values.len()
                )));
            }
            let repeated: Vec<f32> = values.repeat(n);
            Ok(Tensor::from_data(
                TensorData::new(repeated, [n, expected]),
                &device,
            ))
        };
        let ni = self.params.identity.value.dims()[1];
        self.params.identity.value = row(identity, "identity", ni)?.slice([0..1, 0..ni]);
        if let Some((expression, angles)) = previous {
            let ne = self.params.expression.value.dims()[1];
            self.params.expression.value = row(expression, "expression", ne)?;
            let near = self.targets.iter().all(|t| {
                t.pose
                    .angles
                    .iter()
                    .zip(angles)
                    .all(|(a, b)| (a - b).abs().to_degrees() <= TRACK_JUMP_DEGREES)
            });
            if near {
                self.params.angles.value = row(&angles, "angles", 3)?;
            }
        }
        self.last_good = self.params.values();
        Ok(())
    }

    /// The prepared photos' crops `[N, R, R, 3]`.
    fn photo_images(&self) -> Tensor<4> {
        Tensor::cat(self.targets.iter().map(|t| t.image.clone()).collect(), 0)
    }

    /// Where each crop shows its photo, `[N, R, R, 1]`: 1 inside, 0 where the crop reaches past
    /// the photo's border. The pixel loss counts only the inside: the black beyond a border
    /// (a photo cut at the chin or the forehead) would pull the face toward black.
    fn photo_inside(&self) -> Tensor<4> {
        let device = self.targets[0].image.device();
        Tensor::cat(
            self.targets
                .iter()
                .map(|t| {
                    let r = t.resolution;
                    Tensor::from_data(TensorData::new(t.inside.clone(), [1, r, r, 1]), &device)
                })
                .collect(),
            0,
        )
    }

    /// The focal-length prior: log focal lengths near each photo's initial estimate.
    fn focal_prior(&self) -> impl Fn(&Leaves) -> Tensor<1> + use<> {
        let prior = self.focal_prior.clone();
        move |leaves| {
            (leaves.log_focal.clone() - prior.clone())
                .powi_scalar(2)
                .mean()
        }
    }

    /// Stage 1: camera, identity and expression from the landmarks alone.
    pub async fn landmark_stage(
        &mut self,
        face: &FaceModel,
        options: &FitOptions,
        observer: &mut Observer<'_>,
    ) -> Result<()> {
        let (r, w) = (options.resolution, options.weights);
        let targets = self.landmarks.clone();
        let focal_prior = self.focal_prior();
        let plan = StagePlan {
            stage: FitStage::Landmarks,
            iterations: options.landmark_iterations,
            rates: options.landmark_rates,
            report_every: options.report_every,
            preview_every: 0,
            sphere_texture: false,
        };
        self.run_stage(plan, &mut [], r, observer, |leaves, _| {
            let landmarks = landmark_losses(face, leaves, &targets, r)?;
            let mut terms = vec![(LossTerm::Landmarks, landmarks.mean() * w.landmarks)];
            terms.extend(geometry_priors(&w, leaves, &focal_prior));
            Ok(StepLoss {
                terms,
                render: None,
            })
        })
        .await
    }

    /// Lighting and a flat albedo colour from the pixel loss, with the geometry held: the
    /// shading the corpus builder divides out of the photo's colours.
    pub async fn lighting_stage(
        &mut self,
        face: &FaceModel,
        iterations: usize,
        options: &FitOptions,
        observer: &mut Observer<'_>,
    ) -> Result<()> {
        let (n, r) = (self.photos(), options.resolution);
        let photo_images = self.photo_images();
        let inside = self.photo_inside();
        let held = Rates {
            identity: 0.0,
            expression: 0.0,
            texture: 0.0,
            angles: 0.0,
            translation: 0.0,
            log_focal: 0.0,
            light: 0.03,
        };
        let plan = StagePlan {
            stage: FitStage::Full,
            iterations,
            rates: held,
            report_every: options.report_every,
            preview_every: 0,
            sphere_texture: false,
        };
        let albedo = Slot::new(Tensor::<2>::ones([n, 3], face.device()) * 0.6, 0.02);
        let mut extra = [StageSlot {
            slot: albedo,
            project: |v| v.clamp(0.05, 1.0),
        }];
        self.run_stage(plan, &mut extra, r, observer, |leaves, extra| {
            let shape = face.vertices(
                per_photo(leaves.identity.clone(), n),
                leaves.expression.clone(),
            )?;
            let flat = extra[0].clone().reshape([n, 1, 1, 3]);
            let rendered = scene::render(
                face,
                shape,
                &leaves.camera(),
                &leaves.light(),
                flat,
                photo_images.clone(),
                r,
            )?;
            let pixel = losses::masked_l1(
                rendered.image,
                photo_images.clone(),
                rendered.face_mask * inside.clone(),
            );
            Ok(StepLoss {
                terms: vec![(LossTerm::Pixel, pixel)],
                render: None,
            })
        })
        .await
    }

    /// Stage 2: every parameter, every loss (the identity-network terms only when no stage 3
    /// takes them, see [`Session::identity_stage`]).
    pub async fn full_stage(
        &mut self,
        models: &Models,
        options: &FitOptions,
        observer: &mut Observer<'_>,
    ) -> Result<()> {
        let (n, r, w) = (self.photos(), options.resolution, options.weights);
        let device = models.face.device().clone();
        // The texture starts where its model wants it (the GAN's latent on its sphere); the
        // stages before this one leave it alone.
        let persons = self.params.texture.value.dims()[0];
        self.params.texture.value =
            per_photo(on_device(models.texture.start()?, &device), persons).detach();
        self.last_good.texture = self.params.texture.value.clone();
        let targets = self.landmarks.clone();
        let focal_prior = self.focal_prior();
        let photo_images = self.photo_images();
        let inside = self.photo_inside();
        // With an identity stage after this one, the identity network's terms wait for it.
        let identity = match options.identity_iterations {
            0 => self.identity_targets(models, w, r)?,
            _ => None,
        };
        // Each photo's landmark loss at the end of stage 1: the guard's level.
        let level = landmark_losses(&models.face, &self.params.values(), &targets, r)?.detach();
        let mut rng = SplitMix64::new(options.seed);
        let plan = StagePlan {
            stage: FitStage::Full,
            iterations: options.iterations,
            rates: options.rates,
            report_every: options.report_every,
            preview_every: options.preview_every,
            sphere_texture: models.texture.on_sphere(),
        };
        self.run_stage(plan, &mut [], r, observer, |leaves, _| {
            let uv_map = models.texture.uv_map(leaves.texture.clone())?;
            let shape = models.face.vertices(
                per_photo(leaves.identity.clone(), n),
                leaves.expression.clone(),
            )?;
            let camera = leaves.camera();
            let per_photo = targets.per_photo(&models.face, shape.clone(), &camera, r)?;
            let rendered = scene::render(
                &models.face,
                shape.clone(),
                &camera,
                &leaves.light(),
                uv_map,
                photo_images.clone(),
                r,
            )?;
            let landmarks = guarded_landmarks(per_photo, &level);
            let pixel = losses::masked_l1(
                rendered.image.clone(),
                photo_images.clone(),
                rendered.face_mask.clone() * inside.clone(),
            );
            let mut terms = vec![
                (LossTerm::Landmarks, landmarks * w.landmarks),
                (LossTerm::Pixel, pixel * w.pixel),
            ];
            terms.extend(geometry_priors(&w, leaves, &focal_prior));
            terms.push((
                LossTerm::TexturePrior,
                texture_prior(&models.texture, leaves.texture.clone()) * w.texture_prior,
            ));
            if let Some(identity) = &identity {
                // As in GANFit: the terms move everything.
                terms.extend(identity.terms(leaves, rendered.image.clone(), false, &mut rng)?);
            }
            Ok(StepLoss {
                terms,
                render: Some(rendered.image),
            })
        })
        .await
    }

    /// Stage 3, when `options.identity_iterations` is not 0 and an identity-network term is on:
    /// the identity terms refine what `options.identity_rates` moves: by default the texture, the
    /// light and the identity, on the expression and camera stage 2 fitted.
    /// The pixel term and the texture prior keep the texture on the photo; while any geometry
    /// moves, the landmark term (with its guard at the level stage 2 ended on, and an anchor
    /// holding the reported 68 where stage 2 left them: [`REPORTED_ANCHOR`]) and the identity
    /// and expression priors hold it. With no geometry rate the shape and the camera are
    /// constants of the stage.
    pub async fn identity_stage(
        &mut self,
        models: &Models,
        options: &FitOptions,
        observer: &mut Observer<'_>,
    ) -> Result<()> {
        let (n, r, w) = (self.photos(), options.resolution, options.weights);
        if !runs_identity_stage(options) {
            return Ok(());
        }
        let Some(identity) = self.identity_targets(models, w, r)? else {
            return Ok(());
        };
        let photo_images = self.photo_images();
        let inside = self.photo_inside();
        let rates = options.identity_rates;
        let moves_geometry = identity_stage_moves_geometry(&rates);
        // Held geometry: the shape and camera are constants of the stage.
        let fitted = self.params.leaves();
        let held_shape = models
            .face
            .vertices(
                per_photo(fitted.identity.clone(), n),
                fitted.expression.clone(),
            )?
            .detach();
        let held_camera = fitted.camera().detach();
        let targets = self.landmarks.clone();
        // While the geometry moves: each photo's landmark loss (the guard's level) and where
        // its reported 68 lie now (the anchor), both as stage 2 left them.
        let held = match moves_geometry {
            true => {
                let level = landmark_losses(&models.face, &self.params.values(), &targets, r)?;
                let yaws: Vec<f32> = self
                    .params
                    .read()
                    .await?
                    .iter()
                    .map(PhotoParams::yaw_degrees)
                    .collect();
                let reported = scene::project_reported_landmarks(
                    &models.face,
                    held_shape.clone(),
                    &held_camera,
                    &targets.jaw,
                    &yaws,
                    r,
                )?;
                Some((level.detach(), reported.detach(), yaws))
            }
            false => None,
        };
        let focal_prior = self.focal_prior();
        let mut rng = SplitMix64::new(options.seed ^ IDENTITY_STAGE_SEED);
        let plan = StagePlan {
            stage: FitStage::Identity,
            iterations: options.identity_iterations,
            rates,
            report_every: options.report_every,
            preview_every: options.preview_every,
            sphere_texture: models.texture.on_sphere(),
        };
        self.run_stage(plan, &mut [], r, observer, |leaves, _| {
            let uv_map = models.texture.uv_map(leaves.texture.clone())?;
            let (shape, camera) = match moves_geometry {
                true => (
                    models.face.vertices(
                        per_photo(leaves.identity.clone(), n),
                        leaves.expression.clone(),
                    )?,
                    leaves.camera(),
                ),
                false => (held_shape.clone(), held_camera.clone()),
            };
            let rendered = scene::render(
                &models.face,
                shape.clone(),
                &camera,
                &leaves.light(),
                uv_map,
                photo_images.clone(),
                r,
            )?;
            let pixel = losses::masked_l1(
                rendered.image.clone(),
                photo_images.clone(),
                rendered.face_mask * inside.clone(),
            );
            let mut terms = vec![
                (LossTerm::Pixel, pixel * w.pixel),
                (
                    LossTerm::TexturePrior,
                    texture_prior(&models.texture, leaves.texture.clone()) * w.texture_prior,
                ),
            ];
            if let Some((level, reported, yaws)) = &held {
                let per_photo = targets.per_photo(&models.face, shape.clone(), &camera, r)?;
                let moved = scene::project_reported_landmarks(
                    &models.face,
                    shape,
                    &camera,
                    &targets.jaw,
                    yaws,
                    r,
                )?;
                let anchor = losses::landmarks_per_photo(
                    moved,
                    reported.clone(),
                    Tensor::ones([68], &reported.device()),
                    r as f32,
                )
                .mean();
                let landmarks = guarded_landmarks(per_photo, level) + anchor * REPORTED_ANCHOR;
                terms.push((LossTerm::Landmarks, landmarks * w.landmarks));
                terms.extend(geometry_priors(&w, leaves, &focal_prior));
            }
            let hold_identity = rates.identity == 0.0;
            terms.extend(identity.terms(
                leaves,
                rendered.image.clone(),
                hold_identity,
                &mut rng,
            )?);
            Ok(StepLoss {
                terms,
                render: Some(rendered.image),
            })
        })
        .await
    }

    /// The photos' side of the identity-network terms, or `None` when every one of them is off.
    fn identity_targets<'m>(
        &self,
        models: &'m Models,
        weights: LossWeights,
        resolution: usize,
    ) -> Result<Option<IdentityTargets<'m>>> {
        if !weights.use_identity_network() {
            return Ok(None);
        }
        let network = models.nets.faceres()?;
        let input = crate::nets::faceres::INPUT_SIZE;
        // The photos' ArcFace crops (kept at the template's 112²) at the network's size.
        let arcface: Vec<_> = self
            .targets
            .iter()
            .map(|t| {
                t.arcface
                    .crop_resized(crate::nets::align::ARCFACE_SIZE, input)
            })
            .collect();
        let photo = network.forward(crate::nets::align::warp(
            self.photo_images(),
            &arcface,
            input,
        )?)?;
        Ok(Some(IdentityTargets {
            models,
            weights,
            resolution,
            network,
            arcface,
            embedding: photo.embedding.detach(),
            activations: photo.activations.into_iter().map(|a| a.detach()).collect(),
        }))
    }

    /// The loop every stage runs: leaves → loss terms → backward → report → Adam step. A
    /// non-finite loss ends the stage with the last good parameters (see [`Session::report`]).
    async fn run_stage(
        &mut self,
        plan: StagePlan,
        extra: &mut [StageSlot],
        resolution: usize,
        observer: &mut Observer<'_>,
        mut loss: impl FnMut(&Leaves, &[Tensor<2>]) -> Result<StepLoss>,
    ) -> Result<()> {
        self.params.set_rates(&plan.rates);
        let mut adam = Adam::default();
        let due = |it: usize, every: usize| {
            every > 0 && ((it + 1).is_multiple_of(every) || it + 1 == plan.iterations)
        };
        for it in 0..plan.iterations {
            let leaves = self.params.leaves();
            let extra_leaves: Vec<Tensor<2>> = extra.iter().map(|e| e.slot.leaf()).collect();
            let StepLoss { terms, render } = loss(&leaves, &extra_leaves)?;
            let total = terms
                .iter()
                .map(|(_, t)| t.clone())
                .reduce(|a, b| a + b)
                .expect("every stage has a loss term");
            let grads = total.backward();
            if due(it, plan.report_every) {
                let preview = render.filter(|_| due(it, plan.preview_every));
                if !self
                    .report(
                        plan.stage,
                        it,
                        plan.iterations,
                        &terms,
                        preview,
                        resolution,
                        observer,
                    )
                    .await?
                {
                    return Ok(());
                }
            }
            if plan.sphere_texture {
                self.params.texture.lr = plan.rates.texture
                    * latent::decayed_rate(it, plan.iterations, latent::FINAL_RATE_FRACTION);
            }
            step(&mut adam, &mut self.params, &leaves, &grads);
            if plan.sphere_texture {
                let width = self.params.texture.value.dims()[1];
                self.params.texture.value =
                    latent::onto_sphere(self.params.texture.value.clone(), width);
            }
            for (stage_slot, leaf) in extra.iter_mut().zip(&extra_leaves) {
                if let Some(grad) = leaf.grad(&grads) {
                    adam.update(&mut stage_slot.slot, grad, stage_slot.project);
                }
            }
        }
        Ok(())
    }

    /// Reports the terms; on a non-finite loss restores the last good parameters and returns
    /// `false` (the stage stops, the result keeps them, and a warning says so).
    async fn report(
        &mut self,
        stage: FitStage,
        iteration: usize,
        iterations: usize,
        terms: &[(LossTerm, Tensor<1>)],
        preview: Option<Tensor<4>>,
        resolution: usize,
        observer: &mut Observer<'_>,
    ) -> Result<bool> {
        match read_losses(terms).await? {
            Some(losses) => {
                self.last_good = self.params.values();
                let preview = match preview {
                    Some(images) => Some(preview_of(images, 0, resolution).await?),
                    None => None,
                };
                self.log.push(LogEntry {
                    stage,
                    iteration,
                    losses: losses.clone(),
                });
                let elapsed_ms = now_ms() - self.start;
                notify(
                    observer,
                    Progress {
                        stage,
                        iteration: iteration + 1,
                        iterations,
                        losses: Some(losses),
                        preview,
                        elapsed_ms,
                    },
                )?;
                Ok(true)
            }
            None => {
                self.params.restore(&self.last_good);
                self.warnings.push(format!(
                    "the {stage:?} stage diverged (non-finite loss) at iteration {iteration}; kept the last good parameters"
                ));
                Ok(false)
            }
        }
    }

    /// Reads the fit back: parameters, the reconstruction's shape, renders, texture.
    pub async fn finish(mut self, models: &Models, options: &FitOptions) -> Result<FitResult> {
        let n = self.photos();
        let r = options.resolution;
        let device = models.face.device().clone();
        let plain = self.params.read().await?;
        let values = self.params.values();
        let camera = values.camera();
        let uv_map = models.texture.uv_map(values.texture.clone())?.detach();
        let shape = models
            .face
            .vertices(
                per_photo(values.identity.clone(), n),
                values.expression.clone(),
            )?
            .detach();
        let photo_images = self.photo_images();
        let rendered = scene::render(
            &models.face,
            shape.clone(),
            &camera,
            &values.light(),
            uv_map.clone(),
            photo_images.clone(),
            r,
        )?;
        let (image_values, _) = read_floats(rendered.image.clone().detach()).await?;
        let (coverage_values, _) = read_floats(rendered.coverage.detach()).await?;
        let (face_values, _) = read_floats(rendered.face_mask.clone().detach()).await?;
        let (landmark_values, _) = read_floats(
            scene::project_reported_landmarks(
                &models.face,
                shape.clone(),
                &camera,
                &self.landmarks.jaw,
                &plain
                    .iter()
                    .map(PhotoParams::yaw_degrees)
                    .collect::<Vec<_>>(),
                r,
            )?
            .detach(),
        )
        .await?;
        // Where the fit pulled its landmarks (the detector's convention): the plausibility
        // check compares them with the detected ones.
        let (pulled_values, _) = read_floats(
            scene::project_landmarks(&models.face, shape.clone(), &camera, &self.landmarks.jaw, r)?
                .detach(),
        )
        .await?;
        let (vertex_values, _) =
            read_floats(scene::project_vertices(shape.clone(), &camera, r).detach()).await?;
        let vs = models.face.num_shape_vertices();
        // The reconstruction: one photo's expression, or the neutral face of a shared identity.
        let mesh_shape = if n == 1 {
            shape.clone()
        } else {
            let neutral = Tensor::zeros([1, models.face.num_expression()], &device);
            models
                .face
                .vertices(values.identity.clone(), neutral)?
                .detach()
        };
        let (shape_values, _) = read_floats(mesh_shape).await?;
        let shape_points: Vec<[f32; 3]> = shape_values[..vs * 3]
            .chunks_exact(3)
            .map(|c| [c[0], c[1], c[2]])
            .collect();

        let mut texture = unwrap::to_rgb8(uv_map).await?;
        if texture.height() < OUTPUT_TEXTURE_HEIGHT {
            // A coarse texture model (the CPU-trained GAN is 64 texels high) still gets a
            // texture fine enough to carry the photo's detail when it is blended in below.
            let factor = OUTPUT_TEXTURE_HEIGHT.div_ceil(texture.height().max(1));
            let (w, h) = (texture.width() * factor, texture.height() * factor);
            texture =
                image::imageops::resize(&texture, w, h, image::imageops::FilterType::Triangle);
        }
        let mut texture_check = None;
        let mut blended_values = None;
        if options.blend_photo_texture {
            let (all_shapes, _) = read_floats(shape.clone()).await?;
            let per_photo_shapes: Vec<Vec<[f32; 3]>> = all_shapes
                .chunks_exact(vs * 3)
                .map(|s| s.chunks_exact(3).map(|c| [c[0], c[1], c[2]]).collect())
                .collect();
            match unwrap::blend_photo_texture(
                &models.face,
                &self.targets,
                &plain,
                &per_photo_shapes,
                &texture,
                options.seamless_blend,
            ) {
                Ok(blended) => {
                    texture = blended.image;
                    // The final texture seen from each photo's camera, against the photo.
                    let final_map = unwrap::from_rgb8(&texture, &device);
                    let final_render = scene::render(
                        &models.face,
                        shape,
                        &camera,
                        &values.light(),
                        final_map,
                        photo_images.clone(),
                        r,
                    )?;
                    let inside = self.photo_inside();
                    let face_l1 = |image: Tensor<4>, mask: Tensor<4>| {
                        losses::masked_l1(
                            image.detach(),
                            photo_images.clone(),
                            mask.detach() * inside.clone(),
                        )
                    };
                    blended_values =
                        Some(read_floats(final_render.image.clone().detach()).await?.0);
                    let (l1, _) = read_floats(Tensor::cat(
                        vec![
                            face_l1(rendered.image, rendered.face_mask),
                            face_l1(final_render.image, final_render.face_mask),
                        ],
                        0,
                    ))
                    .await?;
                    texture_check = Some(TextureCheck {
                        model_photo_l1: l1[0],
                        final_photo_l1: l1[1],
                        seam: blended.seam,
                        rejected_texels: blended.rejected_texels,
                    });
                }
                Err(e) => self.warnings.push(format!("kept the model texture: {e}")),
            }
        }
        let frame = r * r;
        let to_u8 = |v: &f32| (v.clamp(0.0, 1.0) * 255.0).round() as u8;
        let frame_rgb = |values: &[f32], i: usize| {
            let rgb: Vec<u8> = values[i * frame * 3..(i + 1) * frame * 3]
                .iter()
                .map(to_u8)
                .collect();
            RgbImage::from_raw(r as u32, r as u32, rgb).expect("sized")
        };
        let photos_out: Vec<PhotoFit> = (0..n)
            .map(|i| {
                let alpha: Vec<u8> = coverage_values[i * frame..(i + 1) * frame]
                    .iter()
                    .map(|v| (v.clamp(0.0, 1.0) * 255.0) as u8)
                    .collect();
                let crop = self.targets[i].crop;
                let to_photo = |c: &[f32]| {
                    let [x, y] = crop.apply([c[0] as f64, c[1] as f64]);
                    [x as f32, y as f32]
                };
                let fitted_landmarks = landmark_values[i * 136..(i + 1) * 136]
                    .chunks_exact(2)
                    .map(to_photo)
                    .collect();
                let vertices_2d = vertex_values[i * vs * 2..(i + 1) * vs * 2]
                    .chunks_exact(2)
                    .map(to_photo)
                    .collect();
                PhotoFit {
                    overlay_alpha: super::overlay::faded_alpha(
                        &face_values[i * frame..(i + 1) * frame],
                        r,
                    ),
                    index: self.sources[i],
                    photo: self.targets[i].summary(),
                    params: plain[i].clone(),
                    fitted_landmarks,
                    vertices_2d,
                    render: Some((frame_rgb(&image_values, i), alpha)),
                    blended_render: blended_values.as_ref().map(|v| frame_rgb(v, i)),
                }
            })
            .collect();
        for (i, (fit, target)) in photos_out.iter().zip(&self.targets).enumerate() {
            let pulled: Vec<[f32; 2]> = pulled_values[i * 136..(i + 1) * 136]
                .chunks_exact(2)
                .map(|c| {
                    let [x, y] = target.crop.apply([c[0] as f64, c[1] as f64]);
                    [x as f32, y as f32]
                })
                .collect();
            self.warnings.extend(
                implausible(fit, &pulled, target)
                    .into_iter()
                    .map(|w| format!("photo {}: {w}", fit.index)),
            );
        }
        Ok(FitResult {
            photos: photos_out,
            shape: shape_points,
            texture: Some(texture),
            texture_model: models.texture.name().to_string(),
            texture_check,
            options: options.clone(),
            log: self.log,
            warnings: self.warnings,
            milliseconds: now_ms() - self.start,
        })
    }
}

/// Pulled landmarks further than this from the detected ones (mean distance over the face's
/// size, as NME) mean the fit did not follow its photo. On 60 development AFLW2000-3D fits
/// (`eval landmarks --fitted --per-yaw-bin 20`, which printed each residual while the reported
/// 68 were the pulled ones) the 53 faces the mesh accepted ended at most 4.2 % from their
/// landmarks; the five fits over 5 % were all faces it refused, four of them 39–55 % off the
/// annotations.
pub const RESIDUAL_WARNING: f64 = 0.05;
/// A fitted head turned further than this (degrees of yaw) from the pose the landmarks give in
/// closed form was pulled by something other than the landmarks.
pub const POSE_WARNING_DEGREES: f32 = 30.0;

/// Warnings for a fit that does not agree with its own photo: the landmarks it pulled
/// (`pulled`, photo pixels; not the reported ones, which sit where annotators put them) far
/// from the detected ones, or a head turned far from where the landmarks put it.
fn implausible(fit: &PhotoFit, pulled: &[[f32; 2]], target: &PhotoTarget) -> Vec<String> {
    let mut warnings = Vec::new();
    let residual = crate::util::nme::nme(pulled, &target.analysis.landmarks);
    if let Some(residual) = residual.filter(|&r| r > RESIDUAL_WARNING) {
        warnings.push(format!(
            "the fitted face ends {:.1} % of the face size from the detected landmarks: check the overlay",
            100.0 * residual
        ));
    }
    let turned = (fit.params.angles[1] - target.pose.angles[1]).to_degrees();
    if turned.abs() > POSE_WARNING_DEGREES {
        warnings.push(format!(
            "the fit turned the head {turned:.0}° away from the pose of its landmarks: check the overlay"
        ));
    }
    warnings
}

/// Each photo's landmark loss `[N]` with parameters `leaves` (no rendering): stage 1's term,
/// and the stage-2 guard's level.
fn landmark_losses(
    face: &FaceModel,
    leaves: &Leaves,
    targets: &LandmarkTargets,
    r: usize,
) -> Result<Tensor<1>> {
    let [n, _, _] = targets.points68.dims();
    let shape = face.vertices(
        per_photo(leaves.identity.clone(), n),
        leaves.expression.clone(),
    )?;
    targets.per_photo(face, shape, &leaves.camera(), r)
}

/// The landmark term of stages 2 and 3: the mean of `per_photo` `[N]`, whose slope is
/// `1 + LANDMARK_GUARD` fold wherever a photo's loss rises above its `level` `[N]` (where the
/// stage before left it), so the image terms pay dearly for landmark accuracy.
fn guarded_landmarks(per_photo: Tensor<1>, level: &Tensor<1>) -> Tensor<1> {
    per_photo.clone().mean() + losses::landmark_guard(per_photo, level.clone(), LANDMARK_GUARD)
}

/// The priors that keep the geometry plausible wherever it moves: the squared identity and
/// expression weights, and the focal length near its initial estimate (`focal_prior`).
fn geometry_priors(
    w: &LossWeights,
    leaves: &Leaves,
    focal_prior: &impl Fn(&Leaves) -> Tensor<1>,
) -> [(LossTerm, Tensor<1>); 3] {
    [
        (
            LossTerm::IdentityPrior,
            losses::squared(leaves.identity.clone()) * w.identity_prior,
        ),
        (
            LossTerm::ExpressionPrior,
            losses::squared(leaves.expression.clone()) * w.expression_prior,
        ),
        (LossTerm::FocalPrior, focal_prior(leaves) * w.focal_prior),
    ]
}

/// The warning for a photo left out of a several-photo fit.
pub(super) fn no_face_warning(index: usize, reason: &Error) -> String {
    match reason {
        Error::FaceRotated(_) => format!("photo {index}: {reason}; left out of the fit"),
        _ => format!("photo {index}: no face found; left out of the fit"),
    }
}

fn notify(observer: &mut Observer<'_>, progress: Progress) -> Result<()> {
    match observer(&progress) {
        Control::Continue => Ok(()),
        Control::Cancel => Err(Error::Cancelled),
    }
}

/// How much steeper the landmark term of stages 2 and 3 gets where a photo's landmark loss
/// rises above its level at the start of the stage ([`losses::landmark_guard`]).
const LANDMARK_GUARD: f32 = 2.0;

/// Applies one Adam step from `grads` to every group with a non-zero rate.
fn step(adam: &mut Adam, params: &mut Params, leaves: &Leaves, grads: &burn::tensor::Gradients) {
    adam.begin_step();
    for (slot, leaf) in params.refs_mut().zip(leaves.refs()).into_array() {
        if slot.lr == 0.0 {
            continue;
        }
        if let Some(grad) = leaf.grad(grads) {
            adam.update(slot, grad, |v| v);
        }
    }
    // Blendshape weights are activations: keep them in [0, 1].
    params.expression.value = params.expression.value.clone().clamp(0.0, 1.0);
    // Lights stay physical.
    params.ambient.value = params.ambient.value.clone().clamp(0.0, 2.0);
    params.diffuse.value = params.diffuse.value.clone().clamp(0.0, 2.0);
    params.specular.value = params.specular.value.clone().clamp(0.0, 1.0);
}

/// Reads the loss terms at once; `None` if any is not finite.
async fn read_losses(terms: &[(LossTerm, Tensor<1>)]) -> Result<Option<LossValues>> {
    let stacked = Tensor::cat(
        terms
            .iter()
            .map(|(_, t)| t.clone().detach().reshape([1]))
            .collect(),
        0,
    );
    let (values, _) = read_floats(stacked).await?;
    if values.iter().any(|v| !v.is_finite()) {
        return Ok(None);
    }
    let mut out = LossValues::default();
    for ((term, _), v) in terms.iter().zip(&values) {
        out.add(*term, *v);
    }
    out.total = values.iter().sum();
    Ok(Some(out))
}

/// Keeps the GAN latent near the sphere the generator was trained on (its input is
/// normalised) and PCA coefficients near their unit-variance prior.
fn texture_prior(model: &TextureModel, texture: Tensor<2>) -> Tensor<1> {
    match model {
        TextureModel::Gan(_) => (texture.powi_scalar(2).mean_dim(1) - 1.0)
            .powi_scalar(2)
            .mean(),
        TextureModel::Pca(_) => losses::squared(texture),
    }
}

/// Whether a fit with `options` runs stage 3 ([`Session::identity_stage`]).
pub fn runs_identity_stage(options: &FitOptions) -> bool {
    options.identity_iterations > 0 && options.weights.use_identity_network()
}

/// How strongly stage 3 holds the reported 68 where stage 2 left them while the identity terms
/// move the geometry: this times their mean squared displacement in crop sides (a pixel at 224²
/// costs 0.2, forty times a typical gain of the identity terms). The guard alone did not do it:
/// the detector's landmarks stayed fitted while the annotation-style points drifted (on 10
/// AFLW2000-3D photos per yaw bin, near-frontal NME 2.10 % → 2.15 %, 2.14 % with the guard's
/// slope at 100 instead of 2; with this anchor 2.11 %).
const REPORTED_ANCHOR: f32 = 1e4;

/// Whether stage 3 with `rates` moves the shape, the expression or the camera.
pub fn identity_stage_moves_geometry(rates: &Rates) -> bool {
    [
        rates.identity,
        rates.expression,
        rates.angles,
        rates.translation,
        rates.log_focal,
    ]
    .iter()
    .any(|&rate| rate != 0.0)
}

/// Seeds the identity stage's random renders apart from stage 2's.
const IDENTITY_STAGE_SEED: u64 = 0x1D57_A6E3;

/// The photos' side of the identity-network terms (constants of a stage): the models, the
/// weights, the render resolution, the network, each photo's ArcFace crop at the network's input
/// size, and its embedding and activations.
struct IdentityTargets<'m> {
    models: &'m Models,
    weights: LossWeights,
    resolution: usize,
    network: &'m crate::nets::faceres::FaceRes,
    arcface: Vec<crate::nets::align::Affine>,
    embedding: Tensor<2>,
    activations: Vec<Tensor<4>>,
}

impl IdentityTargets<'_> {
    /// The weighted identity, content and randomised-identity terms (those whose weight is not
    /// 0) of `image` (`[N, R, R, 3]`, the fit's render over the photo) and of a random render of
    /// the current identity and texture; `texture_only` holds the identity in the random render.
    fn terms(
        &self,
        leaves: &Leaves,
        image: Tensor<4>,
        texture_only: bool,
        rng: &mut SplitMix64,
    ) -> Result<Vec<(LossTerm, Tensor<1>)>> {
        let (models, w, r) = (self.models, self.weights, self.resolution);
        let n = self.arcface.len();
        let input = crate::nets::faceres::INPUT_SIZE;
        let device = image.device();
        let mut terms = Vec::new();
        if w.identity != 0.0 || w.content != 0.0 {
            let crops = crate::nets::align::warp(image, &self.arcface, input)?;
            let features = self.network.forward(crops)?;
            terms.push((
                LossTerm::Identity,
                losses::identity(features.embedding, self.embedding.clone()) * w.identity,
            ));
            if let Some(content) = losses::content(&features.activations, &self.activations) {
                terms.push((LossTerm::Content, content * w.content));
            }
        }
        if w.random_identity != 0.0 {
            // GANFit's randomised identity: same identity and texture, random expression, pose
            // and light.
            let (random, landmarks) =
                random_render(models, leaves, texture_only, rng, n, r, &device)?;
            let crops = scene::arcface_crops(random.image, landmarks, input)?;
            let features = self.network.forward(crops)?;
            let term = losses::identity(features.embedding, self.embedding.clone());
            terms.push((LossTerm::RandomIdentity, term * w.random_identity));
        }
        Ok(terms)
    }
}

/// A batch of renders with the fitted identity and texture but random expression, pose and
/// lighting, over grey, and their landmarks `[N, 68, 2]` (for the ArcFace crops, which use
/// the inner points only); with `texture_only` the identity is held still.
fn random_render(
    models: &Models,
    leaves: &Leaves,
    texture_only: bool,
    rng: &mut SplitMix64,
    n: usize,
    r: usize,
    device: &Device,
) -> Result<(scene::Rendered, Tensor<3>)> {
    let ne = models.face.num_expression();
    let expression: Vec<f32> = (0..n * ne)
        .map(|_| {
            if rng.uniform() < 0.15 {
                rng.range(0.0, 0.6)
            } else {
                0.0
            }
        })
        .collect();
    let angles: Vec<f32> = (0..n)
        .flat_map(|_| {
            [
                rng.range(-0.25, 0.25),
                rng.range(-0.6, 0.6),
                rng.range(-0.1, 0.1),
            ]
        })
        .collect();
    let light: Vec<f32> = (0..n)
        .flat_map(|_| [rng.range(-0.6, 0.6), rng.range(-0.3, 0.7), 1.0])
        .collect();
    let level = |lo: f32, hi: f32, rng: &mut SplitMix64| {
        (0..n)
            .flat_map(|_| [rng.range(lo, hi); 3])
            .collect::<Vec<f32>>()
    };
    let t = |v: Vec<f32>, c: usize| Tensor::<2>::from_data(TensorData::new(v, [n, c]), device);
    let identity = match texture_only {
        true => leaves.identity.clone().detach(),
        false => leaves.identity.clone(),
    };
    let shape = models
        .face
        .vertices(per_photo(identity, n), t(expression, ne))?;
    // Keep the fitted distance and focal length so the face fills the frame as in the photo.
    let translation = leaves.translation.clone().detach() * t([0.0f32, 0.0, 1.0].repeat(n), 3);
    let camera = scene::Camera {
        angles: t(angles, 3),
        translation,
        focal: leaves.log_focal.clone().detach().exp(),
    };
    let light = PhongLight {
        ambient: t(level(0.35, 0.7, rng), 3),
        diffuse: t(level(0.2, 0.6, rng), 3),
        direction: normalize(t(light, 3), 1),
        specular: t(vec![0.03; n], 1),
        shininess: super::params::SHININESS,
    };
    let uv_map = models.texture.uv_map(leaves.texture.clone())?;
    let jaw = scene::JawConventions::all(JawConvention::Surface, n, device);
    let landmarks = scene::project_landmarks(&models.face, shape.clone(), &camera, &jaw, r)?;
    let rendered = scene::render(
        &models.face,
        shape,
        &camera,
        &light,
        uv_map,
        scene::grey(n, r, device),
        r,
    )?;
    Ok((rendered, landmarks))
}

async fn preview_of(images: Tensor<4>, index: usize, r: usize) -> Result<Preview> {
    let [_, h, w, c] = images.dims();
    let (values, _) =
        read_floats(images.detach().slice([index..index + 1, 0..h, 0..w, 0..c])).await?;
    Ok(Preview {
        photo: index,
        width: r,
        height: r,
        rgb: values
            .iter()
            .map(|v| (v.clamp(0.0, 1.0) * 255.0).round() as u8)
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_landmark_residual_is_relative_to_the_face_size() {
        // A 40×90 box (size 60); every point 3 px off: 5 %, the warning's threshold.
        let detected = [[0.0, 0.0], [40.0, 90.0], [20.0, 45.0]];
        let fitted = detected.map(|[x, y]| [x, y + 3.0]);
        let residual = crate::util::nme::nme(&fitted, &detected).unwrap();
        assert!((residual - super::RESIDUAL_WARNING).abs() < 1e-12);
        assert!(crate::util::nme::nme(&[], &[]).is_none());
    }
}
