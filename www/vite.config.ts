import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { defineConfig, type Plugin } from 'vite';

/** Writes `app-files.json`, every file of the build, so the service worker can cache the whole
 * app at install (the first visit) and the next visit works offline; and the service worker. The models are not in it:
 * the engine's worker keeps them in the Cache API itself, checked by hash. */
function appFileList(): Plugin {
  return {
    name: 'ganfit-app-file-list',
    apply: 'build',
    generateBundle(_, bundle) {
      const files = ['./', './index.html', './selftest.html', ...Object.keys(bundle).filter((f) => !f.endsWith('.html')).map((f) => `./${f}`)];
      this.emitFile({ type: 'asset', fileName: 'app-files.json', source: JSON.stringify(files, null, 1) });
      // The service worker, named after a hash of every built file: any change to the app is a
      // new worker with a cache of its own (see src/sw.js).
      const hash = createHash('sha256');
      for (const name of Object.keys(bundle).sort()) {
        const item = bundle[name];
        hash.update(name).update(item.type === 'chunk' ? item.code : item.source);
      }
      const build = hash.digest('hex').slice(0, 16);
      const template = readFileSync(new URL('./src/sw.js', import.meta.url), 'utf8');
      const placeholder = "'ganfit-app-__BUILD__'";
      if (!template.includes(placeholder)) throw new Error(`src/sw.js lost its cache name ${placeholder}`);
      const worker = template.replace(placeholder, `'ganfit-app-${build}'`);
      this.emitFile({ type: 'asset', fileName: 'sw.js', source: worker });
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
