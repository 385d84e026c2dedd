//! The wasm-bindgen surface. Every export returns a `Result`: a panic would kill the page's
//! module, so errors cross into JavaScript as `Error` objects whose `name` is the
//! [`crate::Error`] variant (`NoWebGpu`, `NoFace`, ...).

use wasm_bindgen::prelude::*;

use crate::device;
use crate::error::Error;
use crate::render::selftest;

#[wasm_bindgen(start)]
pub fn start() {
    console_error_panic_hook::set_once();
}

/// Whether `navigator.gpu` exists in this page or worker.
pub fn has_navigator_gpu() -> bool {
    let global = js_sys::global();
    let navigator = js_sys::Reflect::get(&global, &JsValue::from_str("navigator")).unwrap_or(JsValue::UNDEFINED);
    if navigator.is_undefined() || navigator.is_null() {
        return false;
    }
    let gpu = js_sys::Reflect::get(&navigator, &JsValue::from_str("gpu")).unwrap_or(JsValue::UNDEFINED);
    !(gpu.is_undefined() || gpu.is_null())
}

/// `vendor architecture description` of the browser's adapter: wgpu reports only the
/// description, which browsers often leave empty for privacy.
pub async fn browser_adapter_name() -> Option<String> {
    let get = |object: &JsValue, key: &str| js_sys::Reflect::get(object, &JsValue::from_str(key)).ok();
    let navigator = get(&js_sys::global(), "navigator")?;
    let gpu = get(&navigator, "gpu")?;
    let request = get(&gpu, "requestAdapter")?.dyn_into::<js_sys::Function>().ok()?;
    let promise = request.call0(&gpu).ok()?.dyn_into::<js_sys::Promise>().ok()?;
    let adapter = wasm_bindgen_futures::JsFuture::from(promise).await.ok()?;
    let info = get(&adapter, "info")?;
    let parts: Vec<String> = ["vendor", "architecture", "description"]
        .iter()
        .filter_map(|k| get(&info, k).and_then(|v| v.as_string()))
        .filter(|s| !s.is_empty())
        .collect();
    (!parts.is_empty()).then(|| parts.join(" "))
}

pub(crate) fn to_js(error: Error) -> JsValue {
    let js = js_sys::Error::new(&error.to_string());
    js.set_name(error.kind());
    js.into()
}

fn to_value<T: serde::Serialize>(value: &T) -> Result<JsValue, JsValue> {
    serde_wasm_bindgen::to_value(value).map_err(|e| to_js(Error::Invalid(e.to_string())))
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
    let reference = selftest::compare_with_reference(&gpu, size, size).await.map_err(to_js)?;
    let pose = selftest::recover_pose(&gpu, size, iterations).await.map_err(to_js)?;
    #[derive(serde::Serialize)]
    struct Report {
        adapter: device::AdapterInfo,
        passed: bool,
        reference: selftest::ReferenceReport,
        pose: selftest::PoseReport,
    }
    to_value(&Report { adapter: info, passed: reference.passed() && pose.converged(), reference, pose })
}
