//! Where tensors live: one [`Device`] type (burn's runtime dispatch) for the CPU backend, native
//! wgpu and WebGPU in the browser, so every stage runs unchanged on each.
//!
//! - [`cpu()`]: burn's Flex backend (multi-threaded, SIMD): tests, training, the CLI default
//!   where no GPU is present.
//! - [`gpu()`] (native): wgpu on the best adapter (Vulkan, Metal, DX12; lavapipe in CI).
//! - [`webgpu()`] (browser): asynchronous WebGPU initialisation; no CPU fallback in the
//!   browser, because the CPU backend is far too slow there for fitting: a browser without
//!   WebGPU gets [`Error::NoWebGpu`].
//!
//! Reading values back goes through [`read_floats`], which is asynchronous: on wasm nothing
//! may block on the GPU.

pub use burn::tensor::Device;
use burn::tensor::{Tensor, TensorData};

use crate::error::{Error, Result};

/// What the wgpu runtime was opened on.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AdapterInfo {
    pub name: String,
    pub backend: String,
    pub device_type: String,
    pub driver: String,
}

impl std::fmt::Display for AdapterInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}, {}", self.name, self.backend, self.device_type)?;
        if !self.driver.is_empty() {
            write!(f, ", {}", self.driver)?;
        }
        write!(f, ")")
    }
}

impl AdapterInfo {
    /// Whether the adapter is a CPU implementation of the GPU API (Mesa's lavapipe or llvmpipe,
    /// SwiftShader): slower at this work than the CPU backend on the same cores.
    pub fn is_software(&self) -> bool {
        // `device_type` is the Debug name of wgpu's `DeviceType`.
        self.device_type == "Cpu"
    }
}

#[cfg_attr(target_arch = "wasm32", allow(dead_code))]
fn adapter_info(setup: &burn::tensor::wgpu::WgpuSetup) -> AdapterInfo {
    let info = setup.adapter.get_info();
    AdapterInfo {
        name: info.name,
        backend: format!("{:?}", info.backend),
        device_type: format!("{:?}", info.device_type),
        driver: [info.driver, info.driver_info]
            .iter()
            .filter(|s| !s.is_empty())
            .cloned()
            .collect::<Vec<_>>()
            .join(" "),
    }
}

/// The CPU backend.
#[cfg(not(target_arch = "wasm32"))]
pub fn cpu() -> Device {
    Device::flex()
}

/// The native GPU through wgpu, opened once per process.
#[cfg(not(target_arch = "wasm32"))]
pub fn gpu() -> Result<(Device, AdapterInfo)> {
    use std::sync::OnceLock;
    static GPU: OnceLock<std::result::Result<(Device, AdapterInfo), String>> = OnceLock::new();
    GPU.get_or_init(|| {
        Device::wgpu_options()
            .init_with_setup()
            .map(|(device, setup)| (device, adapter_info(&setup)))
            .map_err(|e| e.to_string())
    })
    .clone()
    .map_err(Error::NoAdapter)
}

/// The browser's WebGPU device, opened once per page (or worker).
#[cfg(target_arch = "wasm32")]
pub async fn webgpu() -> Result<(Device, AdapterInfo)> {
    use std::cell::RefCell;
    thread_local! {
        static GPU: RefCell<Option<(Device, AdapterInfo)>> = const { RefCell::new(None) };
    }
    if let Some(found) = GPU.with(|g| g.borrow().clone()) {
        return Ok(found);
    }
    if !browser::has_navigator_gpu() {
        return Err(Error::NoWebGpu(
            "this browser does not expose navigator.gpu".into(),
        ));
    }
    let (device, setup) = Device::wgpu_options()
        .init_with_setup_async()
        .await
        .map_err(|e| Error::NoWebGpu(e.to_string()))?;
    let mut info = adapter_info(&setup);
    if info.name.is_empty() {
        info.name = browser::browser_adapter_name()
            .await
            .unwrap_or_else(|| "unnamed adapter".into());
    }
    GPU.with(|g| *g.borrow_mut() = Some((device.clone(), info.clone())));
    let wgpu_device = setup.device.clone();
    DESTROY_WEBGPU.with(|d| *d.borrow_mut() = Some(Box::new(move || wgpu_device.destroy())));
    Ok((device, info))
}

#[cfg(target_arch = "wasm32")]
thread_local! {
    /// Destroys the WebGPU device [`webgpu`] opened: see [`lose_webgpu_device`].
    static DESTROY_WEBGPU: std::cell::RefCell<Option<Box<dyn Fn()>>> =
        const { std::cell::RefCell::new(None) };
}

/// Destroys the page's (or worker's) WebGPU device as a driver reset would lose it, so that
/// tests can check what follows a device loss. Returns whether there was a device.
#[cfg(target_arch = "wasm32")]
pub fn lose_webgpu_device() -> bool {
    DESTROY_WEBGPU.with(|d| d.borrow().as_ref().map(|destroy| destroy()).is_some())
}

/// A failed read-back: [`Error::DeviceLost`] when the runtime reports its device poisoned (wgpu
/// said it was lost, and every later operation on it fails), else [`Error::Execution`].
fn execution_error(error: burn::tensor::ExecutionError) -> Error {
    match error {
        burn::tensor::ExecutionError::DevicePoisoned { reason } => Error::DeviceLost(reason),
        other => Error::Execution(format!("{other:?}")),
    }
}

/// Reads a float tensor back to the host, without blocking (required on wasm).
pub async fn read_floats<const D: usize>(tensor: Tensor<D>) -> Result<(Vec<f32>, [usize; D])> {
    let dims = tensor.dims();
    let data: TensorData = tensor.into_data_async().await.map_err(execution_error)?;
    let values = data
        .convert::<f32>()
        .try_into_vec::<f32>()
        .map_err(|e| Error::Execution(format!("{e:?}")))?;
    Ok((values, dims))
}

/// Blocking read for native code paths (CLI, tests).
#[cfg(not(target_arch = "wasm32"))]
pub fn read_floats_blocking<const D: usize>(tensor: Tensor<D>) -> Result<(Vec<f32>, [usize; D])> {
    let dims = tensor.dims();
    let data = tensor.try_into_data().map_err(execution_error)?;
    let values = data
        .convert::<f32>()
        .try_into_vec::<f32>()
        .map_err(|e| Error::Execution(format!("{e:?}")))?;
    Ok((values, dims))
}

/// Runs a future to completion on this thread (native only: the CLI and tests drive the same
/// async code the browser awaits).
#[cfg(not(target_arch = "wasm32"))]
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    pollster::block_on(future)
}

/// Browser probes that wgpu does not make: whether WebGPU exists at all, and the adapter's name.
#[cfg(target_arch = "wasm32")]
mod browser {
    use wasm_bindgen::{JsCast, JsValue};

    /// Whether `navigator.gpu` exists in this page or worker.
    pub(crate) fn has_navigator_gpu() -> bool {
        let global = js_sys::global();
        let navigator = js_sys::Reflect::get(&global, &JsValue::from_str("navigator"))
            .unwrap_or(JsValue::UNDEFINED);
        if navigator.is_undefined() || navigator.is_null() {
            return false;
        }
        let gpu = js_sys::Reflect::get(&navigator, &JsValue::from_str("gpu"))
            .unwrap_or(JsValue::UNDEFINED);
        !(gpu.is_undefined() || gpu.is_null())
    }

    /// `vendor architecture description` of the browser's adapter: wgpu reports only the
    /// description, which browsers often leave empty for privacy.
    pub(crate) async fn browser_adapter_name() -> Option<String> {
        let get = |object: &JsValue, key: &str| {
            js_sys::Reflect::get(object, &JsValue::from_str(key)).ok()
        };
        let navigator = get(&js_sys::global(), "navigator")?;
        let gpu = get(&navigator, "gpu")?;
        let request = get(&gpu, "requestAdapter")?
            .dyn_into::<js_sys::Function>()
            .ok()?;
        let promise = request
            .call0(&gpu)
            .ok()?
            .dyn_into::<js_sys::Promise>()
            .ok()?;
        let adapter = wasm_bindgen_futures::JsFuture::from(promise).await.ok()?;
        let info = get(&adapter, "info")?;
        let parts: Vec<String> = ["vendor", "architecture", "description"]
            .iter()
            .filter_map(|k| get(&info, k).and_then(|v| v.as_string()))
            .filter(|s| !s.is_empty())
            .collect();
        (!parts.is_empty()).then(|| parts.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::AdapterInfo;

    fn adapter(device_type: &str) -> AdapterInfo {
        AdapterInfo {
            name: "a".into(),
            backend: "Vulkan".into(),
            device_type: device_type.into(),
            driver: String::new(),
        }
    }

    #[test]
    fn software_adapters_are_told_from_hardware_ones() {
        assert!(adapter("Cpu").is_software());
        for hardware in ["DiscreteGpu", "IntegratedGpu", "VirtualGpu", "Other"] {
            assert!(!adapter(hardware).is_software(), "{hardware}");
        }
    }
}
