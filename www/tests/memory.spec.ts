// Many fits in a row in one page (`make test-memory`: 50 by default, GANFIT_MEMORY_FITS sets the
// count): every fit must succeed, and neither the engine's wasm heap nor the browser's memory
// may keep growing. Too long for `make test` (about a minute a fit on SwiftShader); its last
// numbers are in the README. Each fit's numbers land in test-results/memory.tsv.
import { expect, test } from '@playwright/test';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';

const fits = Number(process.env.GANFIT_MEMORY_FITS ?? 0);
const data = process.env.GANFIT_DATA ?? resolve(import.meta.dirname, '../../../shared/data');
const facePhoto = resolve(data, 'samples', process.env.GANFIT_TEST_PHOTO ?? 'breakingbad.jpg');
/** app.spec.ts's test settings. */
const testSettings = { landmarkIterations: 10, iterations: 2, resolution: 112 };

/** Resident memory of every Chromium process on this machine, MB: in all, and of the GPU
 * process (where SwiftShader keeps the GPU buffers). */
function chromiumMemory(): { totalMb: number; gpuMb: number } {
  let total = 0;
  let gpu = 0;
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      if (!/chrom/i.test(cmdline.split('\0')[0] ?? '')) continue;
      const rss = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      const mb = rss ? Number(rss[1]) / 1024 : 0;
      total += mb;
      if (cmdline.includes('--type=gpu-process')) gpu += mb;
    } catch {
      // The process ended while being read.
    }
  }
  return { totalMb: total, gpuMb: gpu };
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
};

test.skip(!(fits > 0), 'set GANFIT_MEMORY_FITS (make test-memory) to run it');

test(`${fits} fits in a row in one page: no failed fit, no growth of memory`, async ({ page }) => {
  test.setTimeout(fits * 300_000 + 300_000);
  if (!existsSync(facePhoto)) throw new Error(`sample photo ${facePhoto} is missing (set GANFIT_DATA)`);
  await page.goto('/');
  await expect(page.locator('#engine-status')).toHaveAttribute('data-ready', 'true', { timeout: 240_000 });
  const photo = [...readFileSync(facePhoto)];
  await page.evaluate((bytes) => ((window as unknown as { photo: Uint8Array }).photo = new Uint8Array(bytes)), photo);
  const rows: string[] = ['fit\tengine_ms\twasm_mb\tjs_heap_mb\tgpu_process_mb\tchromium_mb'];
  const wasm: number[] = [];
  const totals: number[] = [];
  for (let i = 1; i <= fits; i++) {
    const outcome = await page.evaluate(async (settings) => {
      type Api = {
        fit(photo: Uint8Array, options: object): Promise<{ milliseconds: number; photos: unknown[] }>;
        memory(): Promise<{ wasmBytes: number; jsHeapBytes: number | null }>;
      };
      const w = window as unknown as { photo: Uint8Array; ganfit: { fitter: Api } };
      try {
        const fit = await w.ganfit.fitter.fit(w.photo, { ...settings, reportEvery: 5, previewEvery: 0 });
        return { ok: true, ms: fit.milliseconds, photos: fit.photos.length, memory: await w.ganfit.fitter.memory() };
      } catch (e) {
        return { ok: false, error: `${(e as Error).name}: ${(e as Error).message}` };
      }
    }, testSettings);
    expect(outcome.ok, `fit ${i}: ${outcome.error}`).toBe(true);
    const chromium = chromiumMemory();
    const wasmMb = outcome.memory!.wasmBytes / 1048576;
    const heap = outcome.memory!.jsHeapBytes;
    wasm.push(wasmMb);
    totals.push(chromium.totalMb);
    const row = [i, outcome.ms!.toFixed(0), wasmMb.toFixed(1), heap === null ? '' : (heap / 1048576).toFixed(1), chromium.gpuMb.toFixed(0), chromium.totalMb.toFixed(0)];
    rows.push(row.join('\t'));
    console.log(rows[rows.length - 1]);
    writeFileSync('test-results/memory.tsv', rows.join('\n') + '\n');
  }
  // Warm-up: the first fits compile pipelines and grow the heaps to their working size.
  if (fits >= 20) {
    const settled = Math.floor(fits / 5);
    const early = totals.slice(settled, 2 * settled);
    const late = totals.slice(fits - settled);
    console.log(`wasm heap ${wasm[settled - 1].toFixed(1)} MB after fit ${settled}, ${wasm[fits - 1].toFixed(1)} MB after fit ${fits}; Chromium in all: median ${median(early).toFixed(0)} MB over fits ${settled + 1}-${2 * settled}, ${median(late).toFixed(0)} MB over the last ${settled}`);
    // The wasm heap never shrinks: after the warm-up it must stop growing (a 64 KB page or a
    // few are allocator noise). The browser's resident memory may breathe, not climb.
    expect(wasm[fits - 1] - wasm[settled - 1]).toBeLessThan(16);
    expect(median(late)).toBeLessThan(median(early) * 1.1 + 50);
  }
});
