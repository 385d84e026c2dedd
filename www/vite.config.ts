import { defineConfig, type Plugin } from 'vite';

/** Writes `app-files.json`, every file of the build, so the service worker can cache the whole
 * app at install (the first visit) and the next visit works offline. The models are not in it:
 * the engine's worker keeps them in the Cache API itself, checked by hash. */
function appFileList(): Plugin {
  return {
    name: 'ganfit-app-file-list',
    apply: 'build',
    generateBundle(_, bundle) {
      const files = ['./', './index.html', './selftest.html', ...Object.keys(bundle).filter((f) => !f.endsWith('.html')).map((f) => `./${f}`)];
      this.emitFile({ type: 'asset', fileName: 'app-files.json', source: JSON.stringify(files, null, 1) });
    },
  };
}

export default defineConfig({
  base: './',
  build: {
    target: 'es2022',
    outDir: 'dist',
    assetsInlineLimit: 0,
    rollupOptions: { input: { main: 'index.html', selftest: 'selftest.html' } },
  },
  worker: { format: 'es' },
  plugins: [appFileList()],
  preview: { host: '127.0.0.1' },
  server: { host: '127.0.0.1' },
});
