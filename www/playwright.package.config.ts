import { defineConfig } from '@playwright/test';
import base from './playwright.config';

// The scratch app that installs the packed tarball (package-test/build-scratch.sh builds it).
export default defineConfig({
  ...base,
  testDir: 'package-test',
  use: { ...base.use, baseURL: 'http://127.0.0.1:4174' },
  webServer: {
    command: 'cd scratch && npx vite preview --host 127.0.0.1 --port 4174 --strictPort',
    url: 'http://127.0.0.1:4174',
    reuseExistingServer: false,
    timeout: 60_000,
  },
});
