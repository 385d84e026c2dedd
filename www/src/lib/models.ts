// Model files: listed with their sizes and SHA-256 in `manifest.json` next to them (written by
// `scripts/models.sh`), downloaded with progress, checked against their hash, and kept in the
// Cache API so a second visit reads them locally and works offline.
import type { LoadProgress } from './protocol.js';

export interface ManifestFile {
  name: string;
  size: number;
  sha256: string;
}

/** The model files: `faceres` (the identity terms' network) is fetched only when a fit turns
 * those terms on. */
type Role = 'face_model' | 'blazeface' | 'facemesh' | 'faceres' | 'texture_gan' | 'texture_pca';

export interface Manifest {
  /** Which texture model to use when the caller does not say: `pca` when its file is there. */
  texture: 'gan' | 'pca';
  files: Record<Role, ManifestFile | undefined>;
}

export class ModelError extends Error {
  constructor(name: 'ModelDownload' | 'ModelIntegrity', message: string) {
    super(message);
    this.name = name;
  }
}

async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('');
}

async function openCache(cacheName: string | null): Promise<Cache | null> {
  if (!cacheName || typeof caches === 'undefined') return null;
  try {
    return await caches.open(cacheName);
  } catch {
    // Opaque origins and some private modes refuse the Cache API: load without it.
    return null;
  }
}

/** The manifest: from the network when reachable (a new deployment may list new hashes), else
 * the cached copy. */
async function loadManifest(base: URL, cache: Cache | null): Promise<Manifest> {
  const url = new URL('manifest.json', base).href;
  let response: Response | undefined;
  try {
    response = await fetch(url, { cache: 'no-cache' });
    if (!response.ok) throw new ModelError('ModelDownload', `${url}: HTTP ${response.status}`);
    if (cache) await cache.put(url, response.clone());
  } catch (e) {
    const cached = cache ? await cache.match(url) : undefined;
    if (!cached) {
      throw e instanceof ModelError ? e : new ModelError('ModelDownload', `could not fetch ${url}: ${(e as Error).message}`);
    }
    response = cached;
  }
  return (await response.json()) as Manifest;
}

/** Reads a response's body in chunks, reporting each. */
async function readBody(response: Response, size: number, onChunk: (bytes: number) => void): Promise<Uint8Array> {
  if (!response.body) {
    const bytes = new Uint8Array(await response.arrayBuffer());
    onChunk(bytes.length);
    return bytes;
  }
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let length = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    length += value.length;
    onChunk(value.length);
  }
  const out = new Uint8Array(Math.max(length, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  if (size && length !== size) throw new ModelError('ModelDownload', `expected ${size} bytes, got ${length}`);
  return out;
}

export interface LoadedModels {
  face_model: Uint8Array;
  blazeface: Uint8Array;
  facemesh: Uint8Array;
  texture: Uint8Array;
  textureChoice: 'gan' | 'pca';
}

/** Fetches the files of `roles` from `modelsUrl` (cache first, checked by hash), reporting
 * progress over all of them. */
async function loadFiles<R extends Role>(
  modelsUrl: string,
  roles: (manifest: Manifest) => readonly R[],
  cacheName: string | null,
  onProgress: (p: LoadProgress) => void,
): Promise<{ manifest: Manifest; files: Record<R, Uint8Array> }> {
  const base = new URL(modelsUrl);
  const cache = await openCache(cacheName);
  onProgress({ stage: 'manifest', loaded: 0, total: 0 });
  const manifest = await loadManifest(base, cache);
  const entries = roles(manifest).map((role) => {
    const file = manifest.files[role];
    if (!file) throw new ModelError('ModelDownload', `the models at ${base.href} have no ${role} file (manifest.json)`);
    return [role, file] as const;
  });
  const total = entries.reduce((sum, [, f]) => sum + f.size, 0);
  let loaded = 0;
  const out: Partial<Record<R, Uint8Array>> = {};
  for (const [role, file] of entries) {
    const url = new URL(file.name, base).href;
    // Cached under the file's URL; its hash rides along in a header, so a changed manifest
    // (a new model) misses the cache instead of serving stale bytes.
    const cached = cache ? await cache.match(url) : undefined;
    let bytes: Uint8Array | null = null;
    if (cached && cached.headers.get('x-ganfit-sha256') === file.sha256) {
      onProgress({ stage: 'cache', file: file.name, loaded, total });
      const candidate = new Uint8Array(await cached.arrayBuffer());
      onProgress({ stage: 'verify', file: file.name, loaded, total });
      if ((await sha256Hex(candidate)) === file.sha256) bytes = candidate;
      else await cache?.delete(url);
    }
    if (bytes) {
      loaded += file.size;
      onProgress({ stage: 'cache', file: file.name, loaded, total });
    } else {
      let response: Response;
      try {
        response = await fetch(url);
      } catch (e) {
        throw new ModelError('ModelDownload', `could not fetch ${url}: ${(e as Error).message}`);
      }
      if (!response.ok) throw new ModelError('ModelDownload', `${url}: HTTP ${response.status}`);
      const before = loaded;
      bytes = await readBody(response, file.size, (n) => {
        loaded += n;
        onProgress({ stage: 'download', file: file.name, loaded, total });
      });
      loaded = before + file.size;
      onProgress({ stage: 'verify', file: file.name, loaded, total });
      const hash = await sha256Hex(bytes);
      if (hash !== file.sha256) {
        throw new ModelError('ModelIntegrity', `${file.name}: SHA-256 ${hash} does not match the manifest's ${file.sha256}`);
      }
      if (cache) {
        try {
          await cache.put(url, new Response(bytes as Uint8Array<ArrayBuffer>, { headers: { 'content-type': 'application/octet-stream', 'x-ganfit-sha256': file.sha256 } }));
        } catch {
          // Over the storage quota: the fit still works, the next visit downloads again.
        }
      }
    }
    out[role] = bytes;
  }
  return { manifest, files: out as Record<R, Uint8Array> };
}

/** Fetches every model file a fit needs from `modelsUrl` (cache first, checked by hash); the
 * identity terms' network comes later, from {@link loadIdentityModel}. */
export async function loadModels(
  modelsUrl: string,
  textureChoice: 'gan' | 'pca' | undefined,
  cacheName: string | null,
  onProgress: (p: LoadProgress) => void,
): Promise<LoadedModels> {
  const choice = (manifest: Manifest) => textureChoice ?? manifest.texture;
  const { manifest, files } = await loadFiles(
    modelsUrl,
    (manifest) => ['face_model', 'blazeface', 'facemesh', choice(manifest) === 'gan' ? 'texture_gan' : 'texture_pca'] as const,
    cacheName,
    onProgress,
  );
  const texture = choice(manifest);
  return {
    face_model: files.face_model,
    blazeface: files.blazeface,
    facemesh: files.facemesh,
    texture: texture === 'gan' ? files.texture_gan : files.texture_pca,
    textureChoice: texture,
  };
}

/** faceres, the identity terms' network (fetched, checked and cached like the others). */
export async function loadIdentityModel(modelsUrl: string, cacheName: string | null, onProgress: (p: LoadProgress) => void): Promise<Uint8Array> {
  const { files } = await loadFiles(modelsUrl, () => ['faceres'] as const, cacheName, onProgress);
  return files.faceres;
}
