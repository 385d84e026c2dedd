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

use burn::tensor::{Tensor, TensorData};
pub use burn::tensor::Device;

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

#[cfg_attr(target_arch = "wasm32", allow(dead_code))]
fn adapter_info(setup: &burn::tensor::wgpu::WgpuSetup) -> AdapterInfo {
    let info = setup.adapter.get_info();
    AdapterInfo {
        name: info.name,
        backend: format!("{:?}", info.backend),
        device_type: format!("{:?}", info.device_type),
        driver: [info.driver, info.driver_info].iter().filter(|s| !s.is_empty()).cloned().collect::<Vec<_>>().join(" "),
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
    if !crate::web::has_navigator_gpu() {
        return Err(Error::NoWebGpu("this browser does not expose navigator.gpu".into()));
    }
    let (device, setup) = Device::wgpu_options()
        .init_with_setup_async()
        .await
        .map_err(|e| Error::NoWebGpu(e.to_string()))?;
    let mut info = adapter_info(&setup);
    if info.name.is_empty() {
        info.name = crate::web::browser_adapter_name().await.unwrap_or_else(|| "unnamed adapter".into());
    }
    GPU.with(|g| *g.borrow_mut() = Some((device.clone(), info.clone())));
    Ok((device, info))
}

/// Reads a float tensor back to the host, without blocking (required on wasm).
pub async fn read_floats<const D: usize>(tensor: Tensor<D>) -> Result<(Vec<f32>, [usize; D])> {
    let dims = tensor.dims();
    let data: TensorData = tensor
        .into_data_async()
        .await
        .map_err(|e| Error::Execution(format!("{e:?}")))?;
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
    let data = tensor.try_into_data().map_err(|e| Error::Execution(format!("{e:?}")))?;
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
