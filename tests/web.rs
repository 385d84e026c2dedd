//! Browser tier: the renderer on the browser's WebGPU (SwiftShader in headless Chromium), run
//! by wasm-bindgen-test-runner. A missing `navigator.gpu` or adapter fails these tests.
#![cfg(target_arch = "wasm32")]

use ganfit::device;
use ganfit::render::selftest;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen_test]
async fn renderer_matches_the_cpu_reference_on_webgpu() {
    let (gpu, info) = device::webgpu().await.expect("this tier needs a WebGPU adapter");
    console_log!("WebGPU adapter: {info}");
    let report = selftest::compare_with_reference(&gpu.autodiff(), 40, 32).await.unwrap();
    console_log!("reference comparison: {report:?}");
    assert!(report.passed(), "{report:?}");
}

#[wasm_bindgen_test]
async fn pose_recovery_converges_on_webgpu() {
    let (gpu, info) = device::webgpu().await.expect("this tier needs a WebGPU adapter");
    let report = selftest::recover_pose(&gpu.autodiff(), 40, 60).await.unwrap();
    console_log!("pose recovery on {info}: loss {} -> {}, error {} -> {} in {:.0} ms",
        report.losses[0], report.losses.last().unwrap(), report.initial_error, report.final_error, report.milliseconds);
    assert!(report.converged(), "{report:?}");
}
