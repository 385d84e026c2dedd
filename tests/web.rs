//! Browser tier: the renderer and the texture generator on the browser's WebGPU (SwiftShader
//! in headless Chromium), run by wasm-bindgen-test-runner. A missing `navigator.gpu` or adapter
//! fails these tests.
#![cfg(target_arch = "wasm32")]

#[path = "golden/generator.rs"]
mod golden;

use ganfit::device;
use ganfit::render::selftest;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen_test]
async fn renderer_matches_the_cpu_reference_on_webgpu() {
    let (gpu, info) = device::webgpu()
        .await
        .expect("this tier needs a WebGPU adapter");
    console_log!("WebGPU adapter: {info}");
    let report = selftest::compare_with_reference(&gpu.autodiff(), 40, 32)
        .await
        .unwrap();
    console_log!("reference comparison: {report:?}");
    assert!(report.passed(), "{report:?}");
}

#[wasm_bindgen_test]
async fn pose_recovery_converges_on_webgpu() {
    let (gpu, info) = device::webgpu()
        .await
        .expect("this tier needs a WebGPU adapter");
    let report = selftest::recover_pose(&gpu.autodiff(), 40, 60)
        .await
        .unwrap();
    console_log!(
        "pose recovery on {info}: loss {} -> {}, error {} -> {} in {:.0} ms",
        report.losses[0],
        report.losses.last().unwrap(),
        report.initial_error,
        report.final_error,
        report.milliseconds
    );
    assert!(report.converged(), "{report:?}");
}

#[wasm_bindgen_test]
async fn the_texture_generator_gives_its_cpu_reference_outputs_on_webgpu() {
    let (gpu, info) = device::webgpu()
        .await
        .expect("this tier needs a WebGPU adapter");
    let generator = golden::generator(&gpu);
    for (stage, expected) in golden::stages().into_iter().zip(golden::EXPECTED) {
        let (values, _) = device::read_floats(generator.forward(golden::latents(&gpu), stage))
            .await
            .unwrap();
        let probe = golden::probe(&values);
        let gap = golden::max_gap(&probe, expected);
        console_log!("generator on {info}, {stage:?}: largest difference from the CPU {gap}");
        assert!(
            gap < 1e-3,
            "{stage:?}: off by {gap}; WebGPU gives {probe:?}"
        );
    }
    // The fitter differentiates the generator with respect to its latent.
    let latent = golden::latents(&gpu.clone().autodiff()).require_grad();
    let generator = golden::generator(&gpu.autodiff());
    let grads = generator
        .forward(latent.clone(), golden::stages()[0])
        .powi_scalar(2)
        .mean()
        .backward();
    let (gradient, _) = device::read_floats(latent.grad(&grads).expect("a latent gradient"))
        .await
        .unwrap();
    assert!(
        gradient.iter().all(|g| g.is_finite()) && gradient.iter().any(|g| *g != 0.0),
        "{gradient:?}"
    );
}

#[wasm_bindgen_test]
async fn gradients_match_the_f64_reference_and_the_scatter_stress_cases_on_webgpu() {
    let (gpu, info) = device::webgpu()
        .await
        .expect("this tier needs a WebGPU adapter");
    let device = gpu.autodiff();
    let reference = selftest::compare_gradients_with_reference(&device, 45, 37)
        .await
        .unwrap();
    let stress = selftest::scatter_stress(&device).await.unwrap();
    for case in reference.cases.iter().chain(&stress.cases) {
        console_log!("{info}: {}: {} ({})", case.name, case.passed, case.detail);
    }
    assert!(reference.passed(), "{reference:?}");
    assert!(stress.passed(), "{stress:?}");
}
