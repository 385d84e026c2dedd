//! The wasm-bindgen surface. Every export returns a `Result`: a panic would kill the page's
//! module, so errors cross into JavaScript as `Error` objects whose `name` is the
//! [`crate::Error`] variant (`NoWebGpu`, `NoFace`, ...).

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use wasm_bindgen::prelude::*;

use crate::device;
use crate::error::Error;
use crate::fit::export;
use crate::fit::models::{ModelFiles, TextureChoice};
use crate::fit::track::{self, Tracker};
use crate::fit::{self, Control, FitOptions, FitResult, FitStage, LossValues, Models, Progress};
use crate::nets::ModelBytes;
use crate::render::selftest;

#[wasm_bindgen(start)]
pub fn start() {
    record_panics();
}

pub(crate) fn to_js(error: Error) -> JsValue {
    let js = js_sys::Error::new(&error.to_string());
    js.set_name(error.kind());
    js.into()
}

fn to_value<T: serde::Serialize>(value: &T) -> Result<JsValue, JsValue> {
    serde_wasm_bindgen::to_value(value).map_err(|e| to_js(Error::Invalid(e.to_string())))
}

/// Test hook: destroys the WebGPU device the engine opened, as a driver reset would lose it.
/// Every later GPU operation of this engine fails with an error named `DeviceLost`. Returns
/// whether a device was open.
#[wasm_bindgen(js_name = loseDeviceForTest)]
pub fn lose_device_for_test() -> bool {
    crate::device::lose_webgpu_device()
}

/// Opens WebGPU and describes the adapter: `{ name, backend, device_type, driver }`.
#[wasm_bindgen(js_name = gpuInfo)]
pub async fn gpu_info() -> Result<JsValue, JsValue> {
    let (_, info) = device::webgpu().await.map_err(to_js)?;
    to_value(&info)
}

/// Runs the renderer self-test on WebGPU: a rendered sphere compared with the CPU reference,
/// and a short pose recovery through the renderer's gradients.
#[wasm_bindgen(js_name = selfTest)]
pub async fn self_test(size: usize, iterations: usize) -> Result<JsValue, JsValue> {
    let (gpu, info) = device::webgpu().await.map_err(to_js)?;
    let gpu = gpu.autodiff();
    let reference = selftest::compare_with_reference(&gpu, size, size)
        .await
        .map_err(to_js)?;
    let pose = selftest::recover_pose(&gpu, size, iterations)
        .await
        .map_err(to_js)?;
    #[derive(serde::Serialize)]
    struct Report {
        adapter: device::AdapterInfo,
        passed: bool,
        reference: selftest::ReferenceReport,
        pose: selftest::PoseReport,
    }
    to_value(&Report {
        adapter: info,
        passed: reference.passed() && pose.converged(),
        reference,
        pose,
    })
}

/// The last panic's message, kept where the worker's JavaScript can read it after the trap:
/// a panic (for example a failed GPU allocation inside a dependency) kills the module, and the
/// page needs to say why.
fn record_panics() {
    std::panic::set_hook(Box::new(|info| {
        let _ = js_sys::Reflect::set(
            &js_sys::global(),
            &JsValue::from_str("ganfitLastPanic"),
            &JsValue::from_str(&info.to_string()),
        );
        console_error_panic_hook::hook(info);
    }));
}

/// The fitting engine with its models on the browser's WebGPU device: what the web worker
/// drives. One fit runs at a time.
#[wasm_bindgen]
pub struct WasmFitter {
    models: Rc<Models>,
    adapter: device::AdapterInfo,
    busy: Rc<Cell<bool>>,
    /// The live mirror's tracker, between frames (taken out while a frame runs).
    tracker: Rc<RefCell<Option<Tracker>>>,
    /// Counts the trackers started and stopped: a frame puts its tracker back only if no
    /// start or stop came while it ran.
    tracker_generation: Rc<Cell<u64>>,
}

/// Clears the busy flag when a fit ends, however it ends.
struct BusyGuard(Rc<Cell<bool>>);

impl BusyGuard {
    /// Takes the engine for one fit or frame, or says what holds it.
    fn take(busy: &Rc<Cell<bool>>, what: &str) -> Result<BusyGuard, JsValue> {
        if busy.replace(true) {
            return Err(to_js(Error::Invalid(format!(
                "{what}: the engine is busy with a fit or a frame"
            ))));
        }
        Ok(BusyGuard(busy.clone()))
    }
}

/// The engine's `FitOptions` from a JS object (snake_case; missing fields take their defaults),
/// validated.
fn fit_options(options: JsValue) -> Result<FitOptions, JsValue> {
    let options: FitOptions = if options.is_undefined() || options.is_null() {
        FitOptions::default()
    } else {
        serde_wasm_bindgen::from_value(options)
            .map_err(|e| to_js(Error::Invalid(format!("fit options: {e}"))))?
    };
    options.validate().map_err(to_js)?;
    Ok(options)
}

impl Drop for BusyGuard {
    fn drop(&mut self) {
        self.0.set(false);
    }
}

#[wasm_bindgen]
impl WasmFitter {
    /// Opens WebGPU (autodiff, as the fit needs gradients) and loads the models from their
    /// files' bytes. `texture_choice` names the texture model the bytes hold: `"gan"` or `"pca"`.
    pub async fn create(
        face_model: Vec<u8>,
        blazeface: Vec<u8>,
        facemesh: Vec<u8>,
        texture: Vec<u8>,
        texture_choice: String,
    ) -> Result<WasmFitter, JsValue> {
        let texture_choice: TextureChoice =
            serde_wasm_bindgen::from_value(JsValue::from_str(&texture_choice)).map_err(|_| {
                to_js(Error::Invalid(format!(
                    "texture model {texture_choice:?}: expected \"gan\" or \"pca\""
                )))
            })?;
        let (gpu, adapter) = device::webgpu().await.map_err(to_js)?;
        let files = ModelFiles {
            face_model,
            nets: ModelBytes {
                // face-api's networks: evaluation and the CLI's `--eyes face-api` only.
                detector: None,
                landmarks68: None,
                resnet: None,
                // Fetched when a fit first asks for it (`loadIdentityNetwork`).
                faceres: None,
                blazeface: Some(blazeface),
                facemesh: Some(facemesh),
            },
            texture,
            texture_choice,
        };
        let models = Models::from_files(files, &gpu.autodiff()).map_err(to_js)?;
        Ok(WasmFitter {
            models: Rc::new(models),
            adapter,
            busy: Rc::new(Cell::new(false)),
            tracker: Rc::new(RefCell::new(None)),
            tracker_generation: Rc::new(Cell::new(0)),
        })
    }

    /// The WebGPU adapter: `{ name, backend, device_type, driver }`.
    #[wasm_bindgen(getter)]
    pub fn adapter(&self) -> Result<JsValue, JsValue> {
        to_value(&self.adapter)
    }

    /// Whether a fit with `options` needs faceres, the identity terms' network, that is not
    /// loaded yet (load it with [`Self::load_identity_network`] first). Rejects invalid options.
    #[wasm_bindgen(js_name = needsIdentityNetwork)]
    pub fn needs_identity_network(&self, options: JsValue) -> Result<bool, JsValue> {
        let options = fit_options(options)?;
        Ok(options.weights.use_identity_network() && !self.models.nets.has_faceres())
    }

    /// Loads faceres (its record's bytes), the identity terms' network: the page fetches it with
    /// the first fit that uses those terms (stage 3, on by default). Refused while a fit, frame or export runs.
    #[wasm_bindgen(js_name = loadIdentityNetwork)]
    pub fn load_identity_network(&mut self, faceres: Vec<u8>) -> Result<(), JsValue> {
        let models = Rc::get_mut(&mut self.models).ok_or_else(|| {
            to_js(Error::Invalid(
                "loadIdentityNetwork: the engine is busy with a fit or a frame".into(),
            ))
        })?;
        models.nets.load_faceres(faceres).map_err(to_js)
    }

    /// Which texture model the fits use (`"gan"` or `"pca"`).
    #[wasm_bindgen(getter, js_name = textureModel)]
    pub fn texture_model(&self) -> String {
        self.models.texture.name().to_string()
    }

    /// Fits `images` (encoded photo bytes: JPEG, PNG, WebP, BMP, PNM) with `options` (the
    /// engine's `FitOptions` in snake_case; missing fields take their defaults). `on_progress`
    /// is called with each progress report (`{ stage, iteration, iterations, losses,
    /// elapsed_ms, preview?: { photo, width, height, rgba } }`); returning `false` cancels the
    /// fit, which then rejects with an `Error` named `Cancelled`. Resolves to the result (see
    /// `result_to_js`).
    pub fn fit(
        &self,
        images: js_sys::Array,
        options: JsValue,
        on_progress: js_sys::Function,
    ) -> js_sys::Promise {
        let models = self.models.clone();
        let busy = self.busy.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            let _guard = BusyGuard::take(&busy, "fit")?;
            // Before any photo is decoded: a bad option costs nothing.
            let options = fit_options(options)?;
            let mut budget = crate::io::image::PixelBudget::default();
            let photos = images
                .iter()
                .enumerate()
                .map(|(i, bytes)| {
                    let bytes = bytes.dyn_into::<js_sys::Uint8Array>().map_err(|_| {
                        Error::Invalid(format!(
                            "photo {i}: expected a Uint8Array of the encoded image"
                        ))
                    })?;
                    // Photos are numbered from 0, as in the engine's warnings and results;
                    // the size is checked before the bytes are copied into wasm memory.
                    let in_photo = |e| match e {
                        Error::Image(reason) => Error::Image(format!("photo {i}: {reason}")),
                        other => other,
                    };
                    crate::io::image::check_file_size(bytes.length() as usize).map_err(in_photo)?;
                    let photo = crate::io::image::decode(&bytes.to_vec()).map_err(in_photo)?;
                    budget.take(&photo).map(|()| photo)
                })
                .collect::<Result<Vec<_>, Error>>()
                .map_err(to_js)?;
            // A throwing callback stops the fit and its exception is what the caller gets.
            let mut thrown: Option<JsValue> = None;
            let mut observer = |progress: &Progress| -> Control {
                let answer = progress_to_js(progress)
                    .and_then(|value| on_progress.call1(&JsValue::NULL, &value));
                match answer {
                    Ok(answer) if answer == JsValue::FALSE => Control::Cancel,
                    Ok(_) => Control::Continue,
                    Err(e) => {
                        thrown = Some(e);
                        Control::Cancel
                    }
                }
            };
            let outcome = fit::fit(&models, &photos, &options, &mut observer).await;
            if let Some(e) = thrown {
                return Err(e);
            }
            let result = outcome.map_err(to_js)?;
            // Quantised: three.js, Babylon.js, Blender and glTFast read KHR_mesh_quantization.
            let rig = export::blendshape_glb(&models.face, &result, true)
                .await
                .map_err(to_js)?;
            result_to_js(&models, &result, &rig)
        })
    }

    /// Starts the live mirror's tracker for the person whose identity coefficients are
    /// `identity` (a fit's `params.identity`): each frame then gets `iterations` landmark
    /// iterations (0: the default, 30) of expression and pose, warm-started from the last frame
    /// with a face. `options`: the engine's `FitOptions` (only the resolution, the eyes and the
    /// landmark rates matter). Replaces an earlier tracker. Returns the blendshapes' ARKit names,
    /// the order of every frame's `expression` (and of the blendshape GLB's morph targets).
    #[wasm_bindgen(js_name = startTracking)]
    pub fn start_tracking(
        &self,
        identity: Vec<f32>,
        iterations: usize,
        options: JsValue,
    ) -> Result<JsValue, JsValue> {
        let options = fit_options(options)?;
        let iterations = if iterations == 0 {
            track::DEFAULT_ITERATIONS
        } else {
            iterations
        };
        let tracker = Tracker::new(&self.models, identity, iterations, &options).map_err(to_js)?;
        *self.tracker.borrow_mut() = Some(tracker);
        self.tracker_generation
            .set(self.tracker_generation.get().wrapping_add(1));
        let names: Vec<String> = self
            .models
            .face
            .expression_names()
            .iter()
            .map(|n| crate::face_model::arkit_name(n))
            .collect();
        to_value(&names)
    }

    /// Tracks one frame of the live mirror: `rgba` pixels (RGBA8, `width × height`, as
    /// `ImageData` holds them). Resolves to `{ face_found, expression, angles (pitch, yaw, roll,
    /// radians), translation_mm, focal_px, landmark_loss, milliseconds, warnings }`; a frame
    /// without a face holds the last pose with a warning. Rejects with `Invalid` when no tracker
    /// was started or the engine is busy (a live caller drops the frame), `Image` for pixels
    /// that do not match the size.
    #[wasm_bindgen(js_name = trackFrame)]
    pub fn track_frame(&self, rgba: Vec<u8>, width: u32, height: u32) -> js_sys::Promise {
        let models = self.models.clone();
        let busy = self.busy.clone();
        let slot = self.tracker.clone();
        let generation = self.tracker_generation.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            let _guard = BusyGuard::take(&busy, "frame")?;
            let frame = rgba_frame(rgba, width, height).map_err(to_js)?;
            let mut tracker = slot.borrow_mut().take().ok_or_else(|| {
                to_js(Error::Invalid(
                    "frame: no tracker (startTracking first)".into(),
                ))
            })?;
            let started = generation.get();
            let outcome = tracker.frame(&models, &frame).await;
            // Put back unless a new tracker or a stop came while the frame ran.
            if generation.get() == started {
                *slot.borrow_mut() = Some(tracker);
            }
            to_plain(&outcome.map_err(to_js)?)
        })
    }

    /// The animatable head with the eyeballs, the eye sockets and the mouth interior (the page's
    /// avatar download): `face_model` the face model file's bytes (the same the fitter was made
    /// with; the whole head is loaded from it onto the GPU for this export only), `identity` and
    /// `expression` a fit's (`params.identity`, `params.expression`), `texture_png` its texture
    /// (PNG) or `undefined`. Resolves to the GLB's bytes (Uint8Array).
    #[wasm_bindgen(js_name = avatarGlb)]
    pub fn avatar_glb(
        &self,
        face_model: Vec<u8>,
        identity: Vec<f32>,
        expression: Vec<f32>,
        texture_png: Option<Vec<u8>>,
    ) -> js_sys::Promise {
        let models = self.models.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            let texture = texture_png
                .map(|png| crate::io::image::decode(&png).map_err(to_js))
                .transpose()?;
            let rig = export::RigParams {
                identity: &identity,
                expression: &expression,
            };
            let glb = export::avatar_glb(&models.face, &face_model, &rig, texture.as_ref(), true)
                .await
                .map_err(to_js)?;
            Ok(js_sys::Uint8Array::from(glb.as_slice()).into())
        })
    }

    /// Ends the live mirror's tracker (a frame that is running still resolves).
    #[wasm_bindgen(js_name = stopTracking)]
    pub fn stop_tracking(&self) {
        self.tracker.borrow_mut().take();
        self.tracker_generation
            .set(self.tracker_generation.get().wrapping_add(1));
    }
}

/// RGBA8 pixels as the RGB frame the engine takes, checked against their size and the engine's
/// pixel limit.
fn rgba_frame(rgba: Vec<u8>, width: u32, height: u32) -> Result<image::RgbImage, Error> {
    let pixels = width as usize * height as usize;
    if pixels == 0 || rgba.len() != 4 * pixels {
        return Err(Error::Image(format!(
            "frame: {} bytes of RGBA for {width} × {height} pixels (expected {})",
            rgba.len(),
            4 * pixels
        )));
    }
    let rgb: Vec<u8> = rgba
        .chunks_exact(4)
        .flat_map(|p| [p[0], p[1], p[2]])
        .collect();
    let frame = image::RgbImage::from_raw(width, height, rgb)
        .ok_or_else(|| Error::Image(format!("frame: {width} × {height} pixels")))?;
    crate::io::image::PixelBudget::default().take(&frame)?;
    Ok(frame)
}

fn set(object: &js_sys::Object, key: &str, value: &JsValue) -> Result<(), JsValue> {
    js_sys::Reflect::set(object, &JsValue::from_str(key), value).map(|_| ())
}

/// JSON-like values as plain JS objects (numbers, not BigInts; objects, not Maps).
fn to_plain<T: serde::Serialize>(value: &T) -> Result<JsValue, JsValue> {
    value
        .serialize(&serde_wasm_bindgen::Serializer::json_compatible())
        .map_err(|e| to_js(Error::Invalid(e.to_string())))
}

/// RGB8 pixels as RGBA8 (opaque, or with `alpha`), the layout `ImageData` takes.
fn rgba(rgb: &[u8], alpha: Option<&[u8]>) -> js_sys::Uint8ClampedArray {
    let pixels = rgb.len() / 3;
    let mut out = Vec::with_capacity(pixels * 4);
    for i in 0..pixels {
        out.extend_from_slice(&rgb[3 * i..3 * i + 3]);
        out.push(alpha.map_or(255, |a| a[i]));
    }
    js_sys::Uint8ClampedArray::from(out.as_slice())
}

fn image_to_js(
    width: usize,
    height: usize,
    rgba: js_sys::Uint8ClampedArray,
) -> Result<JsValue, JsValue> {
    let object = js_sys::Object::new();
    set(&object, "width", &JsValue::from(width as u32))?;
    set(&object, "height", &JsValue::from(height as u32))?;
    set(&object, "rgba", &rgba)?;
    Ok(object.into())
}

/// A progress report as a plain object; the preview (the current render over the photo's
/// working crop) as RGBA bytes.
fn progress_to_js(progress: &Progress) -> Result<JsValue, JsValue> {
    #[derive(serde::Serialize)]
    struct Plain<'a> {
        stage: FitStage,
        iteration: usize,
        iterations: usize,
        losses: &'a Option<LossValues>,
        elapsed_ms: f64,
    }
    let value = to_plain(&Plain {
        stage: progress.stage,
        iteration: progress.iteration,
        iterations: progress.iterations,
        losses: &progress.losses,
        elapsed_ms: progress.elapsed_ms,
    })?;
    if let Some(preview) = &progress.preview {
        let image = image_to_js(preview.width, preview.height, rgba(&preview.rgb, None))?;
        set(
            image.unchecked_ref(),
            "photo",
            &JsValue::from(preview.photo as u32),
        )?;
        set(value.unchecked_ref(), "preview", &image)?;
    }
    Ok(value)
}

/// The result as one object:
///
/// - `photos`: per fitted photo `{ index (of the input photo; faceless photos of a several-photo
///   fit are left out with a warning), photo (size, face box, landmarks, working crop as an affine map
///   crop pixel → photo pixel, warnings), params, render: { width, height, rgba } }`, the
///   render's alpha being its face area faded at the border, so it can be drawn over the photo;
/// - `mesh`: `{ positions, normals (Float32Array, xyz per render vertex, metres), uvs
///   (Float32Array, glTF convention), indices (Uint32Array), vertexCount }`;
/// - `texture`: `{ width, height, png }` or `null`;
/// - `glb` (Uint8Array), `obj`, `mtl`, `textureFile` (the name the MTL uses), `paramsJson`,
///   `lossesTsv`: the same files the CLI writes;
/// - `glbBlendshapes` (Uint8Array): the GLB `ganfit fit --blendshapes` writes (the fitted
///   identity with 53 ARKit-named morph targets, the fitted expression as their weights);
/// - `textureModel`, `options`, `log`, `warnings`, `milliseconds`.
fn result_to_js(models: &Models, result: &FitResult, rig: &[u8]) -> Result<JsValue, JsValue> {
    let files = export::exports(&models.face, result).map_err(to_js)?;
    let object = js_sys::Object::new();
    let photos = js_sys::Array::new();
    for photo_fit in &result.photos {
        let entry = js_sys::Object::new();
        set(&entry, "index", &JsValue::from(photo_fit.index as u32))?;
        set(&entry, "photo", &to_plain(&photo_fit.photo)?)?;
        set(&entry, "params", &to_plain(&photo_fit.params)?)?;
        let render = match &photo_fit.render {
            Some((image, _)) => image_to_js(
                image.width() as usize,
                image.height() as usize,
                rgba(image.as_raw(), Some(&photo_fit.overlay_alpha)),
            )?,
            None => JsValue::NULL,
        };
        set(&entry, "render", &render)?;
        photos.push(&entry);
    }
    set(&object, "photos", &photos)?;

    let mesh = &files.mesh;
    let flat3 = |v: &[[f32; 3]]| js_sys::Float32Array::from(v.as_flattened());
    let mesh_js = js_sys::Object::new();
    set(&mesh_js, "positions", &flat3(&mesh.render_positions_m()))?;
    set(&mesh_js, "normals", &flat3(&mesh.render_normals()))?;
    set(
        &mesh_js,
        "uvs",
        &js_sys::Float32Array::from(mesh.uvs.as_flattened()),
    )?;
    set(
        &mesh_js,
        "indices",
        &js_sys::Uint32Array::from(mesh.triangles.as_flattened()),
    )?;
    set(
        &mesh_js,
        "vertexCount",
        &JsValue::from(mesh.uvs.len() as u32),
    )?;
    set(&object, "mesh", &mesh_js)?;

    let texture = match (&result.texture, &files.texture_png) {
        (Some(image), Some(png)) => {
            let t = js_sys::Object::new();
            set(&t, "width", &JsValue::from(image.width()))?;
            set(&t, "height", &JsValue::from(image.height()))?;
            set(&t, "png", &js_sys::Uint8Array::from(png.as_slice()))?;
            t.into()
        }
        _ => JsValue::NULL,
    };
    set(&object, "texture", &texture)?;
    set(
        &object,
        "glb",
        &js_sys::Uint8Array::from(files.glb.as_slice()),
    )?;
    set(&object, "glbBlendshapes", &js_sys::Uint8Array::from(rig))?;
    set(&object, "obj", &JsValue::from_str(&files.obj.obj))?;
    set(&object, "mtl", &JsValue::from_str(&files.obj.mtl))?;
    set(
        &object,
        "textureFile",
        &JsValue::from_str(export::TEXTURE_FILE),
    )?;
    set(&object, "meshName", &JsValue::from_str(export::MESH_NAME))?;
    set(
        &object,
        "paramsJson",
        &JsValue::from_str(&files.params_json),
    )?;
    set(&object, "lossesTsv", &JsValue::from_str(&files.losses_tsv))?;
    set(
        &object,
        "textureModel",
        &JsValue::from_str(&result.texture_model),
    )?;
    set(&object, "options", &to_plain(&result.options)?)?;
    set(&object, "log", &to_plain(&result.log)?)?;
    set(&object, "warnings", &to_plain(&result.warnings)?)?;
    set(&object, "milliseconds", &JsValue::from(result.milliseconds))?;
    Ok(object.into())
}
