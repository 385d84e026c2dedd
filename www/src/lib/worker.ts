// The web worker that owns the engine: loads the wasm and the models, runs fits, and answers
// cancel requests between iterations (the engine awaits every GPU read, so this worker's
// message queue keeps turning during a fit).
import init, { WasmFitter, loseDeviceForTest } from '../pkg/ganfit.js';
import { loadIdentityModel, loadModels } from './models.js';
import type { FromWorker, RawFitResult, ToWorker, TrackedFrame, WorkerError } from './protocol.js';

const scope = self as unknown as DedicatedWorkerGlobalScope;
let fitter: WasmFitter | null = null;
/** The face model file, kept for the avatar export (which loads the whole head from it). */
let faceModelBytes: Uint8Array | null = null;
/** Where the models came from: faceres is fetched from there when a fit first needs it. */
let modelSource: { modelsUrl: string; cacheName: string | null } | null = null;
let wasmMemory: WebAssembly.Memory | null = null;
const cancelled = new Set<number>();
/** Set once the module trapped (a panic or a failed allocation): it cannot run again. */
let dead = false;

function post(message: FromWorker, transfer: Transferable[] = []) {
  scope.postMessage(message, transfer);
}

/** An error as `{ name, message }`; a trap of the wasm module becomes `OutOfMemory` when it
 * ran out of memory, else `Crashed` with the panic's message. */
function describe(e: unknown): { error: WorkerError; fatal: boolean } {
  const lastPanic = (globalThis as { ganfitLastPanic?: string }).ganfitLastPanic;
  if (e instanceof WebAssembly.RuntimeError || (e instanceof RangeError && /memory/i.test(e.message))) {
    dead = true;
    const text = `${e.message}${lastPanic ? ` (${lastPanic})` : ''}`;
    const oom = /out of memory|allocat|memory access out of bounds|capacity overflow|OutOfMemory|Could not allocate/i.test(text);
    return { error: { name: oom ? 'OutOfMemory' : 'Crashed', message: text }, fatal: true };
  }
  if (e instanceof Error && e.name === 'DeviceLost') {
    // Nothing runs on a lost device again, and the engine keeps the one it opened.
    dead = true;
    return { error: { name: e.name, message: e.message }, fatal: true };
  }
  if (e instanceof Error) {
    const oom = /out of memory|OutOfMemory|allocation failed/i.test(e.message);
    return { error: { name: oom ? 'OutOfMemory' : e.name, message: e.message }, fatal: false };
  }
  return { error: { name: 'Error', message: String(e) }, fatal: false };
}

/** The typed arrays of a result, moved (not copied) to the page. */
function transferables(result: RawFitResult): Transferable[] {
  const buffers = new Set<ArrayBufferLike>([
    result.mesh.positions.buffer,
    result.mesh.normals.buffer,
    result.mesh.uvs.buffer,
    result.mesh.indices.buffer,
    result.glb.buffer,
    result.glbBlendshapes.buffer,
  ]);
  if (result.texture) buffers.add(result.texture.png.buffer);
  for (const p of result.photos) if (p.render) buffers.add(p.render.rgba.buffer);
  return [...buffers] as Transferable[];
}

async function create(message: Extract<ToWorker, { type: 'create' }>) {
  try {
    const started = performance.now();
    const [models] = await Promise.all([
      loadModels(message.modelsUrl, message.textureModel, message.cacheName, (progress) => post({ type: 'load-progress', progress })),
      init().then((exports) => (wasmMemory = exports.memory)),
    ]);
    const downloaded = performance.now();
    post({ type: 'load-progress', progress: { stage: 'init', loaded: 1, total: 1 } });
    faceModelBytes = models.face_model;
    modelSource = { modelsUrl: message.modelsUrl, cacheName: message.cacheName };
    fitter = await WasmFitter.create(models.face_model, models.blazeface, models.facemesh, models.texture, models.textureChoice);
    post({
      type: 'ready',
      adapter: fitter.adapter,
      textureModel: fitter.textureModel,
      timings: { downloadMs: downloaded - started, initMs: performance.now() - downloaded },
    });
  } catch (e) {
    post({ type: 'create-error', error: describe(e).error });
  }
}

async function fit(message: Extract<ToWorker, { type: 'fit' }>) {
  const { id } = message;
  if (!fitter || dead) {
    post({ type: 'fit-error', id, error: { name: 'Invalid', message: 'the fitter is not ready' }, fatal: dead });
    return;
  }
  try {
    // The identity terms' network (faceres, 6 MB) is fetched the first time a fit turns them on.
    if (fitter.needsIdentityNetwork(message.options) && modelSource) {
      const bytes = await loadIdentityModel(modelSource.modelsUrl, modelSource.cacheName, (progress) => post({ type: 'load-progress', progress }));
      fitter.loadIdentityNetwork(bytes);
    }
    const result = (await fitter.fit(message.images, message.options, (progress: unknown) => {
      if (cancelled.has(id)) return false;
      const report = progress as FromWorker & { preview?: { rgba: Uint8ClampedArray } };
      post({ type: 'progress', id, progress: progress as never }, report.preview ? [report.preview.rgba.buffer as ArrayBuffer] : []);
      return true;
    })) as RawFitResult;
    post({ type: 'result', id, result }, transferables(result));
  } catch (e) {
    const { error, fatal } = describe(e);
    post({ type: 'fit-error', id, error, fatal });
  } finally {
    cancelled.delete(id);
  }
}

/** The live mirror: a tracker for one person, then one frame at a time. */
async function track(message: Extract<ToWorker, { type: 'track-start' | 'track-frame' | 'avatar' }>) {
  const { id } = message;
  if (!fitter || !faceModelBytes || dead) {
    post({ type: 'track-error', id, error: { name: 'Invalid', message: 'the fitter is not ready' }, fatal: dead });
    return;
  }
  try {
    if (message.type === 'avatar') {
      const glb = (await fitter.avatarGlb(faceModelBytes, new Float32Array(message.identity), new Float32Array(message.expression), message.texturePng ?? undefined)) as Uint8Array;
      post({ type: 'avatar-glb', id, glb }, [glb.buffer as ArrayBuffer]);
    } else if (message.type === 'track-start') {
      const names = fitter.startTracking(new Float32Array(message.identity), message.iterations, message.options) as string[];
      post({ type: 'track-started', id, names });
    } else {
      const frame = (await fitter.trackFrame(message.rgba, message.width, message.height)) as TrackedFrame;
      post({ type: 'tracked', id, frame });
    }
  } catch (e) {
    const { error, fatal } = describe(e);
    post({ type: 'track-error', id, error, fatal });
  }
}

scope.onmessage = (event: MessageEvent<ToWorker>) => {
  const message = event.data;
  switch (message.type) {
    case 'create':
      void create(message);
      break;
    case 'fit':
      void fit(message);
      break;
    case 'cancel':
      cancelled.add(message.id);
      break;
    case 'memory': {
      const heap = (performance as { memory?: { usedJSHeapSize: number } }).memory;
      post({ type: 'memory', memory: { wasmBytes: wasmMemory?.buffer.byteLength ?? 0, jsHeapBytes: heap?.usedJSHeapSize ?? null } });
      break;
    }
    case 'track-start':
    case 'track-frame':
    case 'avatar':
      void track(message);
      break;
    case 'track-stop':
      fitter?.stopTracking();
      break;
    case 'lose-device':
      post({ type: 'device-destroyed', destroyed: loseDeviceForTest() });
      break;
  }
};
