// Many fits in a row in one page (`make test-memory`: 50 by default, GANFIT_MEMORY_FITS sets the
// count): every fit must succeed, and neither the engine's wasm heap nor the browser's memory
// may keep growing. Too long for `make test` (about a minute a fit on SwiftShader); its last
// numbers are in the README. Each fit's numbers land in test-results/memory.tsv.
import { chromium, expect, test } from '@playwright/test';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromiumArgs } from '../playwright.config';

const fits = Number(process.env.GANFIT_MEMORY_FITS ?? 0);
const data = process.env.GANFIT_DATA ?? resolve(import.meta.dirname, '../../../shared/data');
const facePhoto = resolve(data, 'samples', process.env.GANFIT_TEST_PHOTO ?? 'breakingbad.jpg');
/** app.spec.ts's test settings. */
const testSettings = { landmarkIterations: 10, iterations: 2, resolution: 112, identityIterations: 0 };

/** Resident memory, MB, of the Chromium this test started (the process whose command line
 * names `profile`, and every process below it): in all, and of its GPU process (where
 * SwiftShader keeps the GPU buffers). Other browsers on the machine are not counted. */
function chromiumMemory(profile: string): { totalMb: number; gpuMb: number } {
  const processes = new Map<number, { parent: number; cmdline: string; mb: number }>();
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
      const status = readFileSync(`/proc/${pid}/status`, 'utf8');
      const parent = Number(/PPid:\s+(\d+)/.exec(status)?.[1] ?? 0);
      const rss = /VmRSS:\s+(\d+) kB/.exec(status);
      processes.set(Number(pid), { parent, cmdline, mb: rss ? Number(rss[1]) / 1024 : 0 });
    } catch {
      // The process ended while being read.
    }
  }
  const root = [...processes].find(([, p]) => p.cmdline.includes(`--user-data-dir=${profile}`) && !p.cmdline.includes('--type='));
  if (!root) throw new Error(`no Chromium with the profile ${profile}`);
  const inTree = (pid: number): boolean => pid === root[0] || (pid > 1 && processes.has(pid) && inTree(processes.get(pid)!.parent));
  let total = 0;
  let gpu = 0;
  for (const [pid, p] of processes) {
    if (!inTree(pid)) continue;
    total += p.mb;
    if (p.cmdline.includes('--type=gpu-process')) gpu += p.mb;
  }
  return { totalMb: total, gpuMb: gpu };
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
};

test.skip(!(fits > 0), 'set GANFIT_MEMORY_FITS (make test-memory) to run it');

test(`${fits} fits in a row in one page: no failed fit, no growth of memory`, async ({ baseURL }) => {
  test.setTimeout(fits * 300_000 + 300_000);
  if (!existsSync(facePhoto)) throw new Error(`sample photo ${facePhoto} is missing (set GANFIT_DATA)`);
  // A browser of this test's own, with a known profile, so that its processes can be found.
  const profile = mkdtempSync(join(tmpdir(), 'ganfit-memory-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: chromiumArgs,
    headless: true,
    baseURL,
  });
  const page = context.pages()[0] ?? (await context.newPage());
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
    const browser = chromiumMemory(profile);
    const wasmMb = outcome.memory!.wasmBytes / 1048576;
    const heap = outcome.memory!.jsHeapBytes;
    wasm.push(wasmMb);
    totals.push(browser.totalMb);
    const row = [i, outcome.ms!.toFixed(0), wasmMb.toFixed(1), heap === null ? '' : (heap / 1048576).toFixed(1), browser.gpuMb.toFixed(0), browser.totalMb.toFixed(0)];
    rows.push(row.join('\t'));
    console.log(rows[rows.length - 1]);
    writeFileSync('test-results/memory.tsv', rows.join('\n') + '\n');
  }
  await context.close();
  rmSync(profile, { recursive: true, force: true });
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
