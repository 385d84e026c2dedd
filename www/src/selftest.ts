import init, { gpuInfo, selfTest } from './pkg/ganfit.js';

const $ = (id: string) => document.getElementById(id) as HTMLElement;

function showError(message: string) {
  const box = $('error');
  box.textContent = message;
  box.hidden = false;
}

interface SelfTestReport {
  adapter: { name: string; backend: string; device_type: string; driver: string };
  passed: boolean;
  reference: { id_mismatches: number; max_color_error: number; max_gradient_error: number; milliseconds: number };
  pose: { iterations: number; losses: number[]; initial_error: number; final_error: number; milliseconds: number };
}

async function main() {
  if (!('gpu' in navigator) || !navigator.gpu) {
    $('adapter').textContent = 'none';
    $('selftest-status').textContent = 'not run';
    showError('WebGPU is not available in this browser. ganfit needs WebGPU (Chrome/Edge 113+, Safari 26+, Firefox 141+ on Windows); it does not fall back to the CPU.');
    return;
  }
  await init();
  try {
    const info = await gpuInfo();
    $('adapter').textContent = `${info.name} (${info.backend}, ${info.device_type})`;
  } catch (e) {
    const err = e as Error;
    $('adapter').textContent = 'none';
    $('selftest-status').textContent = 'not run';
    showError(err.name === 'NoWebGpu' ? `WebGPU is not available: ${err.message}` : `GPU error: ${err.message}`);
    return;
  }
  $('selftest-status').textContent = 'running…';
  try {
    const report = (await selfTest(48, 40)) as SelfTestReport;
    const status = $('selftest-status');
    status.textContent = report.passed ? 'passed' : 'failed';
    status.className = report.passed ? 'passed' : 'failed';
    const losses = report.pose.losses;
    $('selftest-details').textContent =
      `(reference: ${report.reference.id_mismatches} id mismatches, colour error ${report.reference.max_color_error.toExponential(1)}, ` +
      `${report.reference.milliseconds.toFixed(0)} ms; pose recovery: loss ${losses[0].toExponential(2)} → ${losses[losses.length - 1].toExponential(2)}, ` +
      `parameter error ${report.pose.initial_error.toFixed(3)} → ${report.pose.final_error.toFixed(3)} in ${report.pose.iterations} steps, ` +
      `${report.pose.milliseconds.toFixed(0)} ms)`;
    (window as unknown as { ganfitSelfTest: SelfTestReport }).ganfitSelfTest = report;
  } catch (e) {
    $('selftest-status').textContent = 'failed';
    $('selftest-status').className = 'failed';
    showError(`Self-test error: ${(e as Error).message}`);
  }
}

main().catch((e) => showError(String(e)));
