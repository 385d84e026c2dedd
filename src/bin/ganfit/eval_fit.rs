//! Evaluations of whole fits: synthetic faces with known shape, and (with `--fitted`) the
//! landmark and identity evaluations run on the fitted model instead of the networks alone.

use std::path::Path;

use ganfit::device::block_on;
use ganfit::eval::shape::aligned_error;
use ganfit::eval::synthetic::{SyntheticFace, random_person, render_face};
use ganfit::face_model::FaceArea;
use ganfit::fit::{self, Control, FitOptions, FitResult, Models};
use ganfit::util::rng::SplitMix64;
use ganfit::{Error, Result};

fn mean_std(values: &[f64]) -> (f64, f64) {
    let n = values.len().max(1) as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
    (mean, var.sqrt())
}

fn shape_of(models: &Models, identity: &[f32], expression: &[f32]) -> Result<Vec<[f32; 3]>> {
    let device = models.face.device().clone();
    let t2 = |v: &[f32]| {
        burn::tensor::Tensor::<2>::from_data(
            burn::tensor::TensorData::new(v.to_vec(), [1, v.len()]),
            &device,
        )
    };
    let shape = models.face.vertices(t2(identity), t2(expression))?;
    let (values, _) = ganfit::device::read_floats_blocking(shape)?;
    Ok(values.chunks_exact(3).map(|c| [c[0], c[1], c[2]]).collect())
}

/// The options of an evaluation that reads the fitted geometry alone (shape, landmarks): stage 3
/// by default moves only the texture and the light (`tests/fit.rs` checks that the geometry is
/// the same before and after it), so it is left out, which `say` prints. A stage 3 whose rates
/// move the geometry is kept.
fn geometry_only(options: &FitOptions, say: bool) -> FitOptions {
    let mut options = options.clone();
    if fit::session::runs_identity_stage(&options)
        && !fit::session::identity_stage_moves_geometry(&options.identity_rates)
    {
        if say {
            println!("# stage 3 left out: it moves the texture and the light, not the geometry");
        }
        options.weights = options.weights.without_identity_network();
    }
    options
}

fn quiet(_: &fit::Progress) -> Control {
    Control::Continue
}

/// `ganfit eval synthetic`: faces rendered from random parameters, fitted from the image alone.
pub fn synthetic(
    models: &Models,
    count: usize,
    seed: u64,
    options: &FitOptions,
    same_person: bool,
    size: usize,
    save: Option<&Path>,
) -> Result<()> {
    let mut rng = SplitMix64::new(seed);
    let mask = models.face.shape_face_mask(FaceArea::Narrow);
    let ne = models.face.num_expression();
    let (mut fitted_errors, mut mean_errors, mut neutral_errors, mut mean_neutral_errors) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut failures = 0;
    let start = ganfit::util::clock::now_ms();
    let mean_shape = models.face.mean_positions().to_vec();
    let options = &geometry_only(options, true);
    for case in 0..count {
        let person = random_person(models, &mut rng);
        let views = if same_person { 3 } else { 1 };
        let faces: Vec<SyntheticFace> = (0..views)
            .map(|_| block_on(render_face(models, &person, &mut rng, size)))
            .collect::<Result<_>>()?;
        if let Some(dir) = save {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
            for (v, f) in faces.iter().enumerate() {
                f.image
                    .save(dir.join(format!("synthetic_{case:03}_{v}.png")))
                    .map_err(|e| Error::Image(e.to_string()))?;
            }
        }
        let photos: Vec<_> = faces.iter().map(|f| f.image.clone()).collect();
        let options = FitOptions {
            same_person,
            blend_photo_texture: false,
            ..options.clone()
        };
        let result: FitResult = match block_on(fit::fit(models, &photos, &options, &mut quiet)) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("case {case}: not fitted ({e})");
                failures += 1;
                continue;
            }
        };
        let truth_neutral = shape_of(models, &person.identity, &vec![0.0; ne])?;
        let fitted_neutral = shape_of(models, &result.photos[0].params.identity, &vec![0.0; ne])?;
        let e_neutral = aligned_error(&fitted_neutral, &truth_neutral, &mask).unwrap_or(f64::NAN);
        let e_mean_neutral = aligned_error(&mean_shape, &truth_neutral, &mask).unwrap_or(f64::NAN);
        neutral_errors.push(e_neutral);
        mean_neutral_errors.push(e_mean_neutral);
        if !same_person {
            let truth = shape_of(models, &person.identity, &faces[0].expression)?;
            let fitted = shape_of(
                models,
                &result.photos[0].params.identity,
                &result.photos[0].params.expression,
            )?;
            fitted_errors.push(aligned_error(&fitted, &truth, &mask).unwrap_or(f64::NAN));
            mean_errors.push(aligned_error(&mean_shape, &truth, &mask).unwrap_or(f64::NAN));
        }
        eprintln!(
            "case {case}: yaw {:.0}°, identity shape error {e_neutral:.2} mm (mean face {e_mean_neutral:.2} mm)",
            faces[0].yaw_degrees
        );
    }
    let label = if same_person {
        "same-person (3 views)"
    } else {
        "single image"
    };
    println!("synthetic cases: {count} ({label}), not fitted: {failures}");
    if !fitted_errors.is_empty() {
        let (m, s) = mean_std(&fitted_errors);
        let (bm, bs) = mean_std(&mean_errors);
        println!("synthetic shape error fitted: {m:.2} ± {s:.2} mm");
        println!("synthetic shape error mean face: {bm:.2} ± {bs:.2} mm");
    }
    let (m, s) = mean_std(&neutral_errors);
    let (bm, bs) = mean_std(&mean_neutral_errors);
    println!("synthetic identity shape error fitted: {m:.2} ± {s:.2} mm");
    println!("synthetic identity shape error mean face: {bm:.2} ± {bs:.2} mm");
    println!(
        "synthetic time per case: {:.1} s",
        (ganfit::util::clock::now_ms() - start) / 1000.0 / count.max(1) as f64
    );
    Ok(())
}

/// `ganfit eval landmarks --fitted`: NME of the fitted model's projected landmarks, next to the
/// detector's own landmarks on the same images, by yaw bin.
pub fn landmarks(
    models: &Models,
    data: &Path,
    pixel_centre: f32,
    limit: Option<usize>,
    per_yaw_bin: Option<std::ops::Range<usize>>,
    options: &FitOptions,
    jobs: usize,
    points_file: Option<&Path>,
) -> Result<()> {
    use ganfit::eval::landmarks::{NmeAccumulator, YAW_BINS};
    use std::io::Write;
    let mut points_out = points_file
        .map(|path| {
            std::fs::File::create(path)
                .map(std::io::BufWriter::new)
                .map_err(|e| ganfit::Error::io(path, e))
        })
        .transpose()?;
    let (mut fitted, mut detector) = (NmeAccumulator::default(), NmeAccumulator::default());
    // Per yaw bin of the annotations: the photos' summed |annotated yaw| and |fitted yaw|, and
    // their count (how far the fits turn the heads against the annotations).
    let mut turns = [(0.0, 0.0, 0usize); YAW_BINS.len()];
    let start = ganfit::util::clock::now_ms();
    let options = FitOptions {
        blend_photo_texture: false,
        ..geometry_only(options, true)
    };
    let items = crate::eval_data::annotated_list(data, pixel_centre, limit, per_yaw_bin)?;
    let images = items.len();
    // Each worker reads its photo: only the `jobs` photos being fitted are in memory.
    let fit_one = |(a, _): &(_, _)| {
        crate::eval_data::read_annotated(data, a).map(|image| {
            block_on(fit::fit(
                models,
                std::slice::from_ref(&image),
                &options,
                &mut quiet,
            ))
        })
    };
    // Fits run `jobs` at once; this thread prints and tallies them as they finish.
    ganfit::util::jobs::run(&items, jobs, fit_one, |(a, truth), outcome| -> Result<()> {
        let Some(outcome) = outcome else {
            fitted.add_skipped();
            detector.add_skipped();
            return Ok(());
        };
        match outcome {
            Ok(result) => {
                let photo = &result.photos[0];
                if let (Some(out), Some(path)) = (points_out.as_mut(), points_file) {
                    let line = serde_json::json!({
                        "image": a.image,
                        "yaw": a.yaw,
                        "fitted": photo.fitted_landmarks,
                        "detected": photo.photo.landmarks,
                        "annotated": truth,
                        "fitted_yaw": photo.params.yaw_degrees(),
                        "vertices": photo.vertices_2d,
                    });
                    writeln!(out, "{line}").map_err(|e| ganfit::Error::io(path, e))?;
                }
                fitted.add(&photo.fitted_landmarks, truth, a.yaw);
                detector.add(&photo.photo.landmarks, truth, a.yaw);
                let fitted_yaw = photo.params.yaw_degrees();
                let turn = &mut turns[ganfit::eval::landmarks::yaw_bin(a.yaw)];
                turn.0 += a.yaw.abs();
                turn.1 += f64::from(fitted_yaw.abs());
                turn.2 += 1;
                let n = |p: &[[f32; 2]]| {
                    ganfit::eval::landmarks::nme(p, truth).unwrap_or(f64::NAN) * 100.0
                };
                let part = |p: &[[f32; 2]], points| {
                    ganfit::eval::landmarks::part_nme(p, truth, points).unwrap_or(f64::NAN) * 100.0
                };
                eprintln!(
                    "{}: yaw {:.0}° (fitted {:.0}°), NME fitted {:.2} %, detector {:.2} % (jaw {:.2} / {:.2}, inner {:.2} / {:.2}), residual {:.2} %, warnings {:?}",
                    a.image,
                    a.yaw,
                    fitted_yaw,
                    n(&photo.fitted_landmarks),
                    n(&photo.photo.landmarks),
                    part(&photo.fitted_landmarks, 0..17),
                    part(&photo.photo.landmarks, 0..17),
                    part(&photo.fitted_landmarks, 17..68),
                    part(&photo.photo.landmarks, 17..68),
                    100.0
                        * ganfit::eval::landmarks::nme(
                            &photo.fitted_landmarks,
                            &photo.photo.landmarks
                        )
                        .unwrap_or(f64::NAN),
                    result.warnings,
                );
            }
            Err(e) if e.is_no_face() => {
                fitted.add_failure(a.yaw);
                detector.add_failure(a.yaw);
            }
            Err(e) => {
                eprintln!("skip {}: {e}", a.image);
                fitted.add_skipped();
                detector.add_skipped();
            }
        }
        Ok(())
    })?;
    if let (Some(mut out), Some(path)) = (points_out, points_file) {
        out.flush().map_err(|e| ganfit::Error::io(path, e))?;
    }
    println!("images: {images} images");
    for (name, acc) in [("fitted", &fitted), ("detector", &detector)] {
        let r = acc.report();
        if name == "fitted" {
            println!("evaluated: {} images", r.evaluated);
            println!("detection failures: {} images", r.failures);
            println!("skipped: {} images", r.skipped);
        }
        println!("{name} nme mean: {:.3} %", 100.0 * r.mean);
        println!(
            "{name} nme balanced (mean of yaw bins): {:.3} %",
            100.0 * r.balanced
        );
        for ((label, mean, count, _), _) in r.bins.iter().zip(YAW_BINS) {
            println!(
                "{name} nme yaw {label}: {:.3} % ({count} images)",
                100.0 * mean
            );
        }
    }
    // Annotated and fitted yaws have opposite signs (AFLW2000-3D's convention): compare sizes.
    for ((label, _), (annotated, fitted_yaw, count)) in YAW_BINS.iter().zip(turns) {
        if count > 0 {
            println!(
                "fitted |yaw| yaw {label}: {:.1}° against annotated {:.1}° ({count} images)",
                fitted_yaw / count as f64,
                annotated / count as f64
            );
        }
    }
    println!(
        "time per image: {:.1} s",
        (ganfit::util::clock::now_ms() - start) / 1000.0 / images.max(1) as f64
    );
    Ok(())
}

/// `ganfit eval identity --fitted`: how recognisable fitted renders are to the identity network
/// the fit did not optimise against (face-api's ResNet). Each render is composited over its
/// photo and cut with the photo's own alignment: the model alone (shape and model texture,
/// what the identity terms carry) and, when the photo texture is blended in (the default), the
/// final textured mesh a user exports.
pub fn identity(
    models: &Models,
    models_digest: &str,
    data: &Path,
    limit: Option<usize>,
    options: &FitOptions,
    cache_file: Option<&Path>,
    jobs: usize,
) -> Result<()> {
    use ganfit::eval::verification::{cosine, verify};
    use std::collections::BTreeMap;
    // Without pairs.tsv (a photo set of strangers, e.g. AFLW2000-3D, which no texture model
    // was trained on): the first --limit photos, and the photo–render cosines only.
    let (list, names) = if data.join("pairs.tsv").exists() {
        let list = crate::eval_data::pairs_limited(data, limit)?;
        let names: Vec<String> = list
            .iter()
            .flat_map(|(a, b, _)| [a.clone(), b.clone()])
            .collect();
        (list, names)
    } else {
        let images = data.join("images");
        let mut names = Vec::new();
        for file in ganfit::io::image::photo_files(&images)? {
            if let Ok(name) = file.strip_prefix(&images) {
                names.push(name.display().to_string());
            }
        }
        names.truncate(limit.unwrap_or(usize::MAX));
        println!(
            "no {}: {} photos, photo–render cosines only",
            data.join("pairs.tsv").display(),
            names.len()
        );
        (Vec::new(), names)
    };
    let resnet = models.nets.resnet()?;
    let start = ganfit::util::clock::now_ms();
    // What makes a cached image's descriptors valid: the fit options, the texture model, the
    // model files (two PCA files are both "pca") and the crate's version. The fitting code
    // itself is not in the key: start a new cache after changing it.
    let key = format!(
        "{} {} {} {}",
        models.texture.name(),
        models_digest,
        env!("CARGO_PKG_VERSION"),
        serde_json::to_string(options).map_err(|e| Error::Invalid(e.to_string()))?
    );
    let mut stored = match cache_file {
        Some(file) => read_identity_cache(file, &key)?,
        None => BTreeMap::new(),
    };
    let mut cache: BTreeMap<String, Option<Embeddings>> = BTreeMap::new();
    let mut todo = Vec::new();
    // Pairs name most photos twice or more: each is fitted once.
    let mut seen = std::collections::BTreeSet::new();
    for name in &names {
        if !seen.insert(name) {
            continue;
        }
        match stored.remove(name) {
            Some(e) => {
                cache.insert(name.clone(), Some(e));
            }
            None => todo.push(name.clone()),
        }
    }
    let fits = todo.len();
    let embed = |name: &String| -> Result<Embeddings> {
        let image = ganfit::io::image::read(data.join("images").join(name))?;
        let (result, stage_2) = block_on(fit::fit_with_stage_2_result(
            models, &image, options, &mut quiet,
        ))?;
        block_on(async {
            let analysis = &models.nets.analyse(&image).await?;
            let describe = |image: image::RgbImage| async move {
                let input = models.nets.resnet_input(&image, analysis)?;
                Ok::<_, Error>(
                    ganfit::device::read_floats(resnet.forward(input)?.embedding)
                        .await?
                        .0,
                )
            };
            // The model-only render and the blended one, each over the photo.
            let composed = |result: &fit::FitResult| -> Result<_> {
                let photo_fit = &result.photos[0];
                let (render, alpha) = photo_fit
                    .render
                    .as_ref()
                    .ok_or_else(|| Error::Invalid("no render".into()))?;
                let over_photo = |render: &image::RgbImage| {
                    fit::overlay::compose(&image, &photo_fit.photo.crop, render, alpha, 1.0)
                };
                Ok((
                    over_photo(render),
                    photo_fit.blended_render.as_ref().map(over_photo),
                ))
            };
            let renders = |(model, blended): (image::RgbImage, Option<image::RgbImage>)| async move {
                Ok::<_, Error>(Renders {
                    model: describe(model).await?,
                    blended: match blended {
                        Some(blended) => Some(describe(blended).await?),
                        None => None,
                    },
                })
            };
            Ok(Embeddings {
                photo: describe(image.clone()).await?,
                fit: renders(composed(&result)?).await?,
                stage_2: match &stage_2 {
                    Some(stage_2) => Some(renders(composed(stage_2)?).await?),
                    None => None,
                },
            })
        })
    };
    // Fits run `jobs` at once; this thread prints, caches and tallies them as they finish.
    ganfit::util::jobs::run(&todo, jobs, embed, |name, outcome| -> Result<()> {
        let entry = match outcome {
            Ok(e) => {
                let blended = |r: &Renders| {
                    r.blended
                        .as_ref()
                        .map_or("-".to_string(), |b| format!("{:.3}", cosine(&e.photo, b)))
                };
                eprintln!(
                    "{name}: photo–render cosine {:.3}, photo–blended {}{}",
                    cosine(&e.photo, &e.fit.model),
                    blended(&e.fit),
                    e.stage_2.as_ref().map_or(String::new(), |r| format!(
                        "; before stage 3: {:.3}, {}",
                        cosine(&e.photo, &r.model),
                        blended(r)
                    ))
                );
                if let Some(file) = cache_file {
                    append_identity_cache(file, &key, name, &e)?;
                }
                Some(e)
            }
            Err(e) => {
                eprintln!("skip {name}: {e}");
                None
            }
        };
        cache.insert(name.clone(), entry);
        Ok(())
    })?;
    let fitted: Vec<&Embeddings> = cache.values().flatten().collect();
    println!("judge: face-api's ResNet (the fit never sees it)");
    println!("images fitted: {} of {}", fitted.len(), cache.len());
    if let Some(file) = cache_file {
        println!(
            "images from the cache ({}): {}",
            file.display(),
            cache.len() - fits
        );
    }
    let mut photo_pairs = Vec::new();
    for (a, b, same) in &list {
        if let (Some(Some(ea)), Some(Some(eb))) = (cache.get(a), cache.get(b)) {
            photo_pairs.push((cosine(&ea.photo, &eb.photo), *same));
        }
    }
    println!("pairs evaluated: {} pairs", photo_pairs.len());
    let report = |name: &str, pairs: &[(f64, bool)]| -> Result<()> {
        if pairs.is_empty() {
            return Ok(());
        }
        let report = verify(pairs, 0.01)?;
        println!("resnet accuracy {name}: {:.2} %", 100.0 * report.accuracy);
        println!("resnet roc auc {name}: {:.4}", report.auc);
        println!("resnet tar at far 1% {name}: {:.2} %", 100.0 * report.tar);
        Ok(())
    };
    report("photo-photo", &photo_pairs)?;
    // The fit, then (when stage 3 ran) the same fits before it: the identity terms off.
    type Pick = fn(&Embeddings) -> Option<&Renders>;
    let variants: [(&str, Pick); 2] = [
        ("", |e| Some(&e.fit)),
        (" before stage 3", |e| e.stage_2.as_ref()),
    ];
    for (label, pick) in variants {
        if fitted.iter().all(|e| pick(e).is_none()) {
            continue;
        }
        for (kind, pick_render) in [
            (
                "render",
                (|r: &Renders| Some(&r.model)) as fn(&Renders) -> Option<&Vec<f32>>,
            ),
            ("blended", |r: &Renders| r.blended.as_ref()),
        ] {
            let cosines: Vec<f64> = fitted
                .iter()
                .filter_map(|e| pick(e).and_then(pick_render).map(|r| cosine(&e.photo, r)))
                .collect();
            if cosines.is_empty() {
                continue;
            }
            let (m, s) = mean_std(&cosines);
            println!("resnet photo-{kind} cosine{label}: {m:.3} ± {s:.3}");
            // One side of each pair replaced by its render.
            let mut pairs = Vec::new();
            for (a, b, same) in &list {
                if let (Some(Some(ea)), Some(Some(eb))) = (cache.get(a), cache.get(b))
                    && let Some(r) = pick(ea).and_then(pick_render)
                {
                    pairs.push((cosine(r, &eb.photo), *same));
                }
            }
            report(&format!("{kind}-photo{label}"), &pairs)?;
        }
    }
    println!(
        "time per fitted image: {:.1} s",
        (ganfit::util::clock::now_ms() - start) / 1000.0 / fits.max(1) as f64
    );
    Ok(())
}

/// One fit's ResNet descriptors: the model-only render over the photo, and the blended render
/// over it (when the fit blended the photo texture in).
#[derive(Clone, serde::Serialize, serde::Deserialize)]
struct Renders {
    model: Vec<f32>,
    blended: Option<Vec<f32>>,
}

/// One image's descriptors: the photo, its fit, and (when the fit ran stage 3) the same fit
/// before stage 3, which is the fit with the identity terms off.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
struct Embeddings {
    photo: Vec<f32>,
    fit: Renders,
    stage_2: Option<Renders>,
}

/// One line of `eval identity --cache`.
#[derive(serde::Serialize, serde::Deserialize)]
struct CachedImage {
    image: String,
    key: String,
    embeddings: Embeddings,
}

/// The cached images fitted with `key`. A last line cut short (a run stopped mid-write) is left
/// out with a warning; any other bad line is an error naming the file and the line.
fn read_identity_cache(
    file: &Path,
    key: &str,
) -> Result<std::collections::BTreeMap<String, Embeddings>> {
    let mut out = std::collections::BTreeMap::new();
    let text = match std::fs::read_to_string(file) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(Error::io(file, e)),
    };
    let complete = text.ends_with('\n');
    let lines: Vec<&str> = text.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        match serde_json::from_str::<CachedImage>(line) {
            Ok(c) if c.key == key => {
                out.insert(c.image, c.embeddings);
            }
            Ok(_) => {}
            Err(_) if i + 1 == lines.len() && !complete => {
                eprintln!(
                    "warning: {}: its last line is cut short (a run stopped while writing it); that image is fitted again",
                    file.display()
                );
                // Cut it off, so that the next line appended starts a line of its own.
                let whole = text.rfind('\n').map_or(0, |end| end + 1);
                std::fs::write(file, &text[..whole]).map_err(|e| Error::io(file, e))?;
            }
            Err(e) => {
                return Err(Error::Invalid(format!(
                    "{} line {}: not a cached image ({e})",
                    file.display(),
                    i + 1
                )));
            }
        }
    }
    Ok(out)
}

/// Appends one image's descriptors to the cache file (one line, written at once).
fn append_identity_cache(file: &Path, key: &str, image: &str, e: &Embeddings) -> Result<()> {
    use std::io::Write;
    let mut line = serde_json::to_string(&CachedImage {
        image: image.to_string(),
        key: key.to_string(),
        embeddings: e.clone(),
    })
    .map_err(|e| Error::Invalid(e.to_string()))?;
    line.push('\n');
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(file)
        .and_then(|mut f| f.write_all(line.as_bytes()))
        .map_err(|e| Error::io(file, e))
}

/// `ganfit eval embedding`: the landmarks' vertices calibrated against the detector on
/// synthetic faces (see `ganfit::eval::embedding`), the inner points and the jaw each on its
/// own. Calibrates on the even-numbered views and reports the error on the odd ones (held out),
/// then prints the tables chosen on all views in ICT's vertex numbering, as
/// `face_model::landmarks::{CALIBRATED_INNER, SURFACE_JAW}` hold them.
pub fn embedding(
    models: &Models,
    count: usize,
    seed: u64,
    size: usize,
    max_yaw: f32,
    radius_mm: f64,
    mesh: bool,
) -> Result<()> {
    use ganfit::eval::embedding::{EmbeddingView, INNER, JAW};
    use ganfit::nets::LandmarkSource;
    let face = &models.face;
    let mut rng = SplitMix64::new(seed);
    let mut views = Vec::new();
    let mut mesh_views = Vec::new();
    let (mut drawn, mut missed) = (0usize, 0usize);
    while views.len() < count {
        drawn += 1;
        if drawn > 20 * count.max(1) {
            return Err(Error::Invalid(format!(
                "only {} of {count} synthetic views were usable",
                views.len()
            )));
        }
        let person = random_person(models, &mut rng);
        let view = block_on(render_face(models, &person, &mut rng, size))?;
        if view.yaw_degrees.abs() > max_yaw {
            continue;
        }
        match block_on(models.nets.analyse(&view.image)) {
            Ok(a) if a.landmarks_by == LandmarkSource::MediaPipe => {
                if let Some(m) = &a.mesh {
                    mesh_views.push(EmbeddingView {
                        detected: m.points.iter().map(|p| [p[0], p[1]]).collect(),
                        vertices: view.vertices_2d.clone(),
                    });
                }
                views.push(EmbeddingView {
                    detected: a.landmarks,
                    vertices: view.vertices_2d,
                });
            }
            Ok(_) => missed += 1,
            Err(e) if e.is_no_face() => missed += 1,
            Err(e) => return Err(e),
        }
    }
    println!(
        "views: {} (|yaw| <= {max_yaw}°, {size}², seed {seed}); {missed} without a face or a mesh",
        views.len()
    );
    if mesh {
        return mesh_embedding(face, mesh_views);
    }
    for (part, table) in [(INNER, "CALIBRATED_INNER"), (JAW, "SURFACE_JAW")] {
        let vertices = calibrate_part(face, &views, face.landmark_indices(), part, radius_mm)?;
        print_ict_table(face, table, &vertices, 8);
    }
    Ok(())
}

/// The vertices of landmarks `part` calibrated against `views`' points within `radius_mm` of
/// `listed` (the inner points within the narrow face area, the jaw within the whole face
/// region): chosen on the even-numbered views, the error reported on the odd ones (held out),
/// then chosen on all views, each choice printed as a comment.
fn calibrate_part(
    face: &ganfit::face_model::FaceModel,
    views: &[ganfit::eval::embedding::EmbeddingView],
    listed: &[u32],
    part: std::ops::Range<usize>,
    radius_mm: f64,
) -> Result<Vec<u32>> {
    use ganfit::eval::embedding::{Calibrated, EmbeddingView, INNER, calibrate};
    let (even, odd) = even_and_odd(views);
    let area = if part == INNER {
        FaceArea::Narrow
    } else {
        FaceArea::Full
    };
    let allowed = face.shape_face_mask(area);
    let run = |views: &[EmbeddingView], listed: &[u32], radius: f64| {
        calibrate(
            views,
            face.mean_positions(),
            listed,
            &allowed,
            radius,
            part.clone(),
        )
        .ok_or_else(|| Error::Invalid("no usable views".into()))
    };
    let half = run(&even, listed, radius_mm)?;
    let mut listed_on_odd = listed.to_vec();
    for c in &half {
        listed_on_odd[c.landmark] = c.chosen;
    }
    let held_out = run(&odd, &listed_on_odd, 0.0)?;
    let before = run(&odd, listed, 0.0)?;
    let mean = |v: &[Calibrated]| {
        100.0 * v.iter().map(|c| c.error_listed).sum::<f64>() / v.len().max(1) as f64
    };
    println!(
        "held-out error of landmarks {}-{} (odd views): listed vertices {:.3} %, calibrated on the even views {:.3} %",
        part.start,
        part.end - 1,
        mean(&before),
        mean(&held_out)
    );
    let chosen = run(views, listed, radius_mm)?;
    println!(
        "// landmark: listed -> chosen ICT vertex, error before -> after (% of face size), moved mm"
    );
    for c in &chosen {
        println!(
            "// {}: {} -> {}, {:.2} -> {:.2} %, {:.1} mm",
            c.landmark,
            face.ict_vertex_indices()[c.listed as usize],
            face.ict_vertex_indices()[c.chosen as usize],
            100.0 * c.error_listed,
            100.0 * c.error_chosen,
            c.moved_mm
        );
    }
    Ok(chosen.iter().map(|c| c.chosen).collect())
}

/// One fitted annotated photo: its annotated and its fitted yaw (degrees), and its annotated
/// 68 with every fitted vertex's projection.
pub struct FittedPoints {
    pub yaw: f32,
    pub fitted_yaw: f32,
    pub view: ganfit::eval::embedding::EmbeddingView,
}

/// The fits of annotated photos in `file` (`eval landmarks --fitted --points FILE`), as views
/// for [`annotated_embedding`]: each photo's annotated 68 and every fitted vertex projected into
/// it. Read before any model is loaded, so a damaged file costs nothing.
pub fn read_fitted_points(file: &Path) -> Result<Vec<FittedPoints>> {
    #[derive(serde::Deserialize)]
    struct Fitted {
        yaw: f32,
        fitted_yaw: f32,
        annotated: Vec<[f32; 2]>,
        vertices: Vec<[f32; 2]>,
    }
    let text = std::fs::read_to_string(file).map_err(|e| Error::io(file, e))?;
    let mut views = Vec::new();
    for (k, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let fitted: Fitted = serde_json::from_str(line).map_err(|e| {
            Error::Invalid(format!(
                "{} line {}: not a fitted photo's points ({e})",
                file.display(),
                k + 1
            ))
        })?;
        if fitted.annotated.len() != 68 {
            return Err(Error::Invalid(format!(
                "{} line {}: {} annotated points, expected 68",
                file.display(),
                k + 1,
                fitted.annotated.len()
            )));
        }
        views.push(FittedPoints {
            yaw: fitted.yaw,
            fitted_yaw: fitted.fitted_yaw,
            view: ganfit::eval::embedding::EmbeddingView {
                detected: fitted.annotated,
                vertices: fitted.vertices,
            },
        });
    }
    if views.is_empty() {
        return Err(Error::Invalid(format!(
            "{}: no fitted photos",
            file.display()
        )));
    }
    Ok(views)
}

/// `ganfit eval embedding --annotated FILE`: where annotators put the 68 on fitted faces, one
/// table per bin of the fitted yaw (`eval::landmarks::yaw_bin`: annotators
/// mark a turned face's hidden jaw differently from a frontal one's). In each bin, each
/// landmark takes the vertex near the model's own (within `radius_mm`) whose projections lie
/// closest to the annotations over the bin's `fits` ([`read_fitted_points`]), the jaw and the
/// inner points each on their own; `held_out` fits are judged with the model's own 68, with
/// their bin's table, and with the tables interpolated by yaw as a fit reports them. Prints
/// `ANNOTATED_68_YAWS` (each table's mean fitted yaw) and `ANNOTATED_68_BY_YAW` (ICT
/// numbering).
pub fn annotated_embedding(
    models: &Models,
    fits: &[FittedPoints],
    held_out: Option<&[FittedPoints]>,
    radius_mm: f64,
) -> Result<()> {
    use ganfit::eval::embedding::{INNER, JAW};
    use ganfit::eval::landmarks::{NmeAccumulator, yaw_bin};
    use ganfit::face_model::landmarks;
    let face = &models.face;
    let all = fits.iter().chain(held_out.unwrap_or_default());
    if let Some(k) = all
        .map(|f| f.view.vertices.len())
        .position(|n| n != face.num_shape_vertices())
    {
        return Err(Error::Invalid(format!(
            "fitted photo {}: a different vertex count from the face model's {} (fitted with another model?)",
            k + 1,
            face.num_shape_vertices()
        )));
    }
    let listed = face.landmark_indices();
    let mut tables = Vec::new();
    // Each table's calibration yaw: the mean fitted yaw of its photos.
    let mut table_yaws = [0f32; 3];
    for (bin, table_yaw) in table_yaws.iter_mut().enumerate() {
        let in_bin: Vec<&FittedPoints> = fits
            .iter()
            .filter(|f| yaw_bin(f64::from(f.fitted_yaw)) == bin)
            .collect();
        println!("fitted yaw bin {bin}: {} fitted photos", in_bin.len());
        if in_bin.len() < 2 {
            return Err(Error::Invalid(format!(
                "fitted yaw bin {bin}: {} fitted photos, at least 2 needed",
                in_bin.len()
            )));
        }
        *table_yaw = in_bin.iter().map(|f| f.fitted_yaw.abs()).sum::<f32>() / in_bin.len() as f32;
        let views: Vec<_> = in_bin.iter().map(|f| f.view.clone()).collect();
        let mut table = calibrate_part(face, &views, listed, JAW, radius_mm)?;
        table.extend(calibrate_part(face, &views, listed, INNER, radius_mm)?);
        tables.push(table);
    }
    if let Some(held_out) = held_out {
        // The photos of another file, by annotated yaw: the model's own 68 against the tables',
        // each photo's by its fitted yaw's bin alone and blended as a fit reports them (here
        // between the projected vertices, the fit blends before projecting). A blend: the two
        // (vertex table, weight) pairs a photo's 68 come from, as `FaceModel::annotated_blend`.
        fn alone(table: &[u32]) -> [(&[u32], f32); 2] {
            [(table, 1.0), (table, 0.0)]
        }
        let names = ["listed", "calibrated, by bin", "calibrated, blended"];
        let blends_of = |yaw: f32| {
            [
                alone(listed),
                alone(&tables[yaw_bin(f64::from(yaw))]),
                landmarks::annotated_table_weights(yaw, &table_yaws)
                    .map(|(t, w)| (&tables[t][..], w)),
            ]
        };
        let mut accumulators: [NmeAccumulator; 3] = Default::default();
        for f in held_out {
            for (acc, blend) in accumulators.iter_mut().zip(blends_of(f.fitted_yaw)) {
                let points: Vec<[f32; 2]> = (0..68)
                    .map(|k| {
                        blend.iter().fold([0f32; 2], |sum, &(table, weight)| {
                            let p = f.view.vertices[table[k] as usize];
                            [sum[0] + weight * p[0], sum[1] + weight * p[1]]
                        })
                    })
                    .collect();
                acc.add(&points, &f.view.detected, f64::from(f.yaw));
            }
        }
        for (name, acc) in names.into_iter().zip(&accumulators) {
            let r = acc.report();
            let bins: Vec<String> = r
                .bins
                .iter()
                .map(|(label, mean, count, _)| format!("{label}: {:.3} % ({count})", 100.0 * mean))
                .collect();
            println!(
                "held-out photos, {name} vertices: balanced {:.3} %; {}",
                100.0 * r.balanced,
                bins.join(", ")
            );
        }
    }
    println!(
        "pub const ANNOTATED_68_YAWS: [f32; 3] = [{}];",
        table_yaws.map(|y| format!("{y:.1}")).join(", ")
    );
    println!("pub const ANNOTATED_68_BY_YAW: [[u32; 68]; 3] = [");
    for table in &tables {
        println!("    [");
        for row in ict_rows(face, table, 8) {
            println!("        {row},");
        }
        println!("    ],");
    }
    println!("];");
    Ok(())
}

/// `ganfit eval blend`: each photo fitted twice, its texture blended texel by texel by
/// confidence (the earlier blend) and seamlessly; the face-area error of the final textured
/// render against the photo and the seam measure across the blend boundary
/// (`fit::TextureCheck`), per photo and on average. `save` keeps both textures and the
/// seamless fit's overlay.
pub fn blend(
    models: &Models,
    data: &Path,
    limit: Option<usize>,
    every: usize,
    options: &FitOptions,
    save: Option<&Path>,
) -> Result<()> {
    let folder = if data.join("images").is_dir() {
        data.join("images")
    } else {
        data.to_path_buf()
    };
    let mut files: Vec<_> = ganfit::io::image::photo_files(&folder)?
        .into_iter()
        .step_by(every.max(1))
        .collect();
    files.truncate(limit.unwrap_or(usize::MAX));
    if let Some(dir) = save {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    println!("photo\tblend\tfinal_l1\tmodel_l1\tseam\trejected");
    // Per blend (hard, seamless): final L1, model L1, seam.
    let mut totals = [
        [Vec::new(), Vec::new(), Vec::new()],
        [Vec::new(), Vec::new(), Vec::new()],
    ];
    let mut failed = 0;
    for path in &files {
        let name = path
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().to_string());
        let image = match ganfit::io::image::read(path) {
            Ok(image) => image,
            Err(e) => {
                println!("{name}\t-\tunreadable: {e}");
                failed += 1;
                continue;
            }
        };
        let mut checks = Vec::new();
        for (k, seamless) in [false, true].into_iter().enumerate() {
            let options = FitOptions {
                blend_photo_texture: true,
                seamless_blend: seamless,
                ..options.clone()
            };
            let result = match block_on(fit::fit(
                models,
                std::slice::from_ref(&image),
                &options,
                &mut quiet,
            )) {
                Ok(result) => result,
                Err(e) => {
                    println!("{name}\t-\tnot fitted: {e}");
                    break;
                }
            };
            let Some(check) = result.texture_check.clone() else {
                println!("{name}\t-\tno texture check: {:?}", result.warnings);
                break;
            };
            let label = if seamless { "seamless" } else { "hard" };
            println!(
                "{name}\t{label}\t{:.4}\t{:.4}\t{}\t{}",
                check.final_photo_l1,
                check.model_photo_l1,
                check.seam.map_or("-".into(), |s| format!("{s:.2}")),
                check.rejected_texels
            );
            if let (Some(dir), Some(texture)) = (save, &result.texture) {
                let stem = name.rsplit_once('.').map_or(name.as_str(), |(s, _)| s);
                let out = dir.join(format!("{stem}_{label}.png"));
                texture
                    .save(&out)
                    .map_err(|e| Error::Image(format!("{}: {e}", out.display())))?;
            }
            checks.push((k, check));
        }
        if checks.len() < 2 {
            failed += 1;
            continue;
        }
        for (k, check) in checks {
            totals[k][0].push(check.final_photo_l1 as f64);
            totals[k][1].push(check.model_photo_l1 as f64);
            if let Some(seam) = check.seam {
                totals[k][2].push(seam as f64);
            }
        }
    }
    println!("# photos: {} fitted, {failed} not", totals[0][0].len());
    for (k, label) in ["hard", "seamless"].into_iter().enumerate() {
        let (final_l1, _) = mean_std(&totals[k][0]);
        let (model_l1, _) = mean_std(&totals[k][1]);
        let (seam, seam_sd) = mean_std(&totals[k][2]);
        println!(
            "blend {label}: face-area L1 to the photo {final_l1:.4} (model texture {model_l1:.4}), \
             seam {seam:.2} ± {seam_sd:.2}"
        );
    }
    Ok(())
}

/// `eval embedding --mesh`: the face mesh's 468 points placed on the model's face region,
/// chosen on the even-numbered views and checked on the odd ones, then chosen on all and
/// printed as `MESH_VERTICES` (ICT vertex numbering).
fn mesh_embedding(
    face: &ganfit::face_model::FaceModel,
    views: Vec<ganfit::eval::embedding::EmbeddingView>,
) -> Result<()> {
    use ganfit::eval::embedding::{correspond, correspondence_error};
    let allowed = face.shape_face_mask(FaceArea::Full);
    let no_views = || Error::Invalid("no usable views".into());
    let (even, odd) = even_and_odd(&views);
    let half = correspond(&even, &allowed).ok_or_else(no_views)?;
    let half: Vec<u32> = half.iter().map(|c| c.vertex).collect();
    let held_out = correspondence_error(&odd, &half).ok_or_else(no_views)?;
    let chosen = correspond(&views, &allowed).ok_or_else(no_views)?;
    let errors: Vec<f64> = chosen.iter().map(|c| 100.0 * c.error).collect();
    let mut sorted = errors.clone();
    sorted.sort_by(f64::total_cmp);
    println!(
        "mesh points: {}, candidate vertices: {}",
        chosen.len(),
        allowed.iter().filter(|&&a| a).count()
    );
    println!(
        "held-out error (odd views, chosen on the even ones): {:.3} % of the face size",
        100.0 * held_out
    );
    println!(
        "error on all views: mean {:.3} %, median {:.3} %, 90th percentile {:.3} %, worst {:.3} %",
        errors.iter().sum::<f64>() / errors.len() as f64,
        sorted[sorted.len() / 2],
        sorted[sorted.len() * 9 / 10],
        sorted[sorted.len() - 1]
    );
    println!("// mesh point: error on all views (% of face size)");
    for row in errors.chunks(12).enumerate() {
        let items: Vec<String> = row.1.iter().map(|e| format!("{e:.1}")).collect();
        println!("// {}..: {}", 12 * row.0, items.join(" "));
    }
    let vertices: Vec<u32> = chosen.iter().map(|c| c.vertex).collect();
    print_ict_table(face, "MESH_VERTICES", &vertices, 12);
    Ok(())
}

/// The even-numbered views (calibration) and the odd-numbered ones (held out).
fn even_and_odd<T: Clone>(views: &[T]) -> (Vec<T>, Vec<T>) {
    let every_other = |start| views.iter().skip(start).step_by(2).cloned().collect();
    (every_other(0), every_other(1))
}

/// Shape vertices printed as a Rust `u32` table in ICT-FaceKit's numbering (the converter and
/// `face_model::landmarks` hold such tables), `per_row` to a line.
fn print_ict_table(
    face: &ganfit::face_model::FaceModel,
    name: &str,
    shape_vertices: &[u32],
    per_row: usize,
) {
    println!("pub const {name}: [u32; {}] = [", shape_vertices.len());
    for row in ict_rows(face, shape_vertices, per_row) {
        println!("    {row},");
    }
    println!("];");
}

/// Shape vertices as rows of ICT vertex numbers, `per_row` to a row.
fn ict_rows(
    face: &ganfit::face_model::FaceModel,
    shape_vertices: &[u32],
    per_row: usize,
) -> Vec<String> {
    shape_vertices
        .chunks(per_row)
        .map(|row| {
            row.iter()
                .map(|&v| face.ict_vertex_indices()[v as usize].to_string())
                .collect::<Vec<_>>()
                .join(", ")
        })
        .collect()
}
