import { defineConfig } from '@playwright/test';
import { fakeCameraClip } from './tests/fake-camera';

// System Chromium with SwiftShader's WebGPU adapter on the CPU: the flags the README lists, and
// a fake camera playing the clip the global setup makes (the live-mirror test), granted without
// a prompt.
export const chromiumArgs = [
  '--enable-unsafe-webgpu',
  '--use-webgpu-adapter=swiftshader',
  '--disable-background-networking',
  '--disable-component-update',
  '--no-first-run',
  '--no-sandbox',
  '--use-fake-device-for-media-stream',
  '--use-fake-ui-for-media-stream',
  `--use-file-for-fake-video-capture=${fakeCameraClip}`,
];

// GANFIT_TEST_PORT lets a second run (say `make test-memory` beside `make test-web`) serve apart.
const port = Number(process.env.GANFIT_TEST_PORT ?? 4173);

export default defineConfig({
  testDir: 'tests',
  globalSetup: './tests/fake-camera.ts',
  timeout: 600_000,
  workers: 1,
  reporter: [['list']],
  outputDir: 'test-results',
  use: {
    baseURL: `http://127.0.0.1:${port}`,
    headless: true,
    launchOptions: { executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium', args: chromiumArgs },
  },
  webServer: {
    command: `npx vite preview --host 127.0.0.1 --port ${port} --strictPort`,
    url: `http://127.0.0.1:${port}`,
    reuseExistingServer: false,
    timeout: 60_000,
  },
});
