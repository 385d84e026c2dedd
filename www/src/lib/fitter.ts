// The package's API: `Fitter.create` starts the engine in a web worker and loads the models;
// `fitter.fit` fits photos there and resolves to a `FaceFit`.
import { zipSync, strToU8 } from 'fflate';
import type { AdapterInfo, EngineMemory, FitProgress, FromWorker, LoadProgress, RawFitResult, ToWorker, TrackedFrame, WorkerError } from './protocol.js';

export type { AdapterInfo, EngineMemory, FitProgress, LoadProgress, LossValues, RgbaImage, PhotoSummary, TrackedFrame } from './protocol.js';

export interface CreateOptions {
  /** Folder (URL) holding the model files and their `manifest.json`. Default: `models/`
   * relative to the page. */
  modelsUrl?: string | URL;
  /** Texture model: `gan` or `pca`. Default: what the manifest prefers (PCA when present:
   * the shipped GAN is a short CPU run that does not reach its numbers; see the README). */
  textureModel?: 'gan' | 'pca';
  /** Cache API cache for the model files; `null` turns caching off. Default `ganfit-models`. */
  cacheName?: string | null;
  onLoadProgress?: (progress: LoadProgress) => void;
  /** A fit whose engine sends nothing (no progress report) for this many milliseconds is
   * stopped: its worker is terminated, the fit rejects with `Unresponsive`, and the next fit
   * starts a fresh worker. Default 300,000 (a software GPU compiles its first pipelines for
   * minutes); 0 turns the watchdog off. Also settable later as `fitter.watchdogMs`. */
  watchdogMs?: number;
}

/** The engine's limit on one encoded photo (`io::image::MAX_FILE_BYTES`), checked here before
 * the bytes are copied to the worker and into wasm memory. */
export const MAX_PHOTO_BYTES = 64 * 1024 * 1024;
/** The most encoded bytes one fit takes (several photos together). */
export const MAX_FIT_BYTES = 256 * 1024 * 1024;
/** How long a cancelled fit may take to stop before its worker is terminated. */
const CANCEL_GRACE_MS = 10_000;

/** Anything `fit` takes as a photo: encoded bytes (JPEG, PNG, WebP, BMP, PNM), a `Blob`/`File`,
 * or something drawable (canvas, `ImageBitmap`, `<img>`, video frame), encoded as PNG here. */
export type PhotoInput = Blob | ArrayBuffer | Uint8Array | HTMLCanvasElement | OffscreenCanvas | ImageBitmap | HTMLImageElement | HTMLVideoElement;

export interface FitOptions {
  /** The photos show one person: identity and texture are shared. Default false (each photo
   * is fitted on its own and the result is the first photo's). */
  samePerson?: boolean;
  /** Stage-2 (all losses) iterations. Default 150. */
  iterations?: number;
  /** Stage-1 (landmarks) iterations. Default 300. */
  landmarkIterations?: number;
  /** Stage-3 iterations: GANFit's identity terms (on faceres, fetched with the first fit that
   * uses them, 6.4 MB) refine the texture, the light and the identity. Default 50;
   * 0 leaves the terms off. (The engine's `identity_iterations` 0, through `engine`, runs them
   * in stage 2 instead, moving everything, as GANFit does.) */
  identityIterations?: number;
  /** Side of the working crop and of every render, pixels. Default 224. */
  resolution?: number;
  /** A progress report every this many iterations. Default 5. Each report waits on the GPU,
   * and cancelling takes effect at the next report. */
  reportEvery?: number;
  /** A preview render every this many stage-2 iterations (0: never). Default 25. */
  previewEvery?: number;
  /** Blend the photo's visible colours into the UV texture. Default true. */
  blendPhotoTexture?: boolean;
  seed?: number;
  /** Any other engine option, snake_case (see `FitOptions` in the crate). */
  engine?: Record<string, unknown>;
  onProgress?: (progress: FitProgress) => void;
  /** Aborting rejects the fit with an `AbortError` at its next progress report. */
  signal?: AbortSignal;
}

/** An `Error` whose `name` says what went wrong: `NoWebGpu`, `NoAdapter`, `NoFace`, `Image`,
 * `ModelDownload`, `ModelIntegrity`, `OutOfMemory`, `Crashed`, `DeviceLost` (the GPU device
 * was lost twice in a row), `Unresponsive` (the watchdog stopped the engine), `AbortError`, ... */
export class FitterError extends Error {
  constructor(error: WorkerError) {
    super(error.message);
    this.name = error.name;
  }
}

/** The result of one fit. */
export class FaceFit {
  /** Per fitted photo: its input index, what was found, the fitted parameters, and the final
   * render (alpha: the face area, faded at its border). Photos without a face are left out of a several-photo fit. */
  readonly photos: RawFitResult['photos'];
  /** The mesh in metres: positions, normals, glTF-convention UVs, triangle indices. */
  readonly mesh: RawFitResult['mesh'];
  /** The UV albedo texture as PNG, or null. */
  readonly texture: { width: number; height: number; png: Blob } | null;
  /** Every fitted parameter (the `params.json` the CLI writes). */
  readonly params: unknown;
  readonly paramsJson: string;
  readonly lossesTsv: string;
  readonly textureModel: string;
  readonly warnings: string[];
  /** Fit time inside the engine. */
  readonly milliseconds: number;
  readonly raw: RawFitResult;

  constructor(raw: RawFitResult) {
    this.raw = raw;
    this.photos = raw.photos;
    this.mesh = raw.mesh;
    this.texture = raw.texture
      ? { width: raw.texture.width, height: raw.texture.height, png: new Blob([raw.texture.png as Uint8Array<ArrayBuffer>], { type: 'image/png' }) }
      : null;
    this.paramsJson = raw.paramsJson;
    this.params = JSON.parse(raw.paramsJson);
    this.lossesTsv = raw.lossesTsv;
    this.textureModel = raw.textureModel;
    this.warnings = raw.warnings;
    this.milliseconds = raw.milliseconds;
  }

  /** The texture decoded, ready for a canvas or a WebGL texture. */
  async textureBitmap(): Promise<ImageBitmap | null> {
    return this.texture ? createImageBitmap(this.texture.png) : null;
  }

  /** Binary glTF 2.0 with the texture embedded. With `blendshapes: true`, an animatable head:
   * the fitted identity with expression zeroed, the 53 expression blendshapes as morph targets
   * named by their ARKit names in `mesh.extras.targetNames` (three.js: `morphTargetDictionary`),
   * the fitted expression as their default weights. ICT splits ARKit's `browInnerUp` and
   * `cheekPuff` into `...Left` and `...Right` halves: drive both with the one ARKit value. */
  toGLB(options: { blendshapes?: boolean } = {}): Blob {
    const bytes = options.blendshapes ? this.raw.glbBlendshapes : this.raw.glb;
    return new Blob([bytes as Uint8Array<ArrayBuffer>], { type: 'model/gltf-binary' });
  }

  /** Wavefront OBJ, its MTL, and the texture PNG the MTL names (`textureFile`). */
  toOBJ(): { obj: string; mtl: string; texture: Blob | null; textureFile: string; meshName: string } {
    return { obj: this.raw.obj, mtl: this.raw.mtl, texture: this.texture?.png ?? null, textureFile: this.raw.textureFile, meshName: this.raw.meshName };
  }

  /** OBJ + MTL + PNG in one zip. */
  async toOBJZip(): Promise<Blob> {
    const { obj, mtl, meshName, textureFile } = this.toOBJ();
    const files: Record<string, Uint8Array> = { [`${meshName}.obj`]: strToU8(obj), [`${meshName}.mtl`]: strToU8(mtl) };
    if (this.raw.texture) files[textureFile] = this.raw.texture.png;
    return new Blob([zipSync(files, { level: 6 }) as Uint8Array<ArrayBuffer>], { type: 'application/zip' });
  }
}

function checkPhotoSize(bytes: number, index: number) {
  if (bytes > MAX_PHOTO_BYTES) {
    throw new FitterError({ name: 'Image', message: `photo ${index}: the file is ${(bytes / 1e6).toFixed(0)} MB; photos of at most ${Math.floor(MAX_PHOTO_BYTES / 1e6)} MB are accepted` });
  }
}

async function encodePhoto(input: PhotoInput, index: number): Promise<Uint8Array> {
  if (input instanceof Uint8Array || input instanceof ArrayBuffer || input instanceof Blob) {
    checkPhotoSize(input instanceof Blob ? input.size : input.byteLength, index);
  }
  if (input instanceof Uint8Array) return input.slice();
  if (input instanceof ArrayBuffer) return new Uint8Array(input.slice(0));
  if (input instanceof Blob) return new Uint8Array(await input.arrayBuffer());
  // Drawable: through a canvas into PNG (lossless; the engine decodes PNG).
  const width = 'videoWidth' in input ? input.videoWidth : 'naturalWidth' in input ? input.naturalWidth : input.width;
  const height = 'videoHeight' in input ? input.videoHeight : 'naturalHeight' in input ? input.naturalHeight : input.height;
  const canvas = new OffscreenCanvas(width, height);
  const context = canvas.getContext('2d');
  if (!context) throw new FitterError({ name: 'Image', message: 'no 2D canvas to encode the photo' });
  context.drawImage(input as CanvasImageSource, 0, 0);
  const blob = await canvas.convertToBlob({ type: 'image/png' });
  checkPhotoSize(blob.size, index);
  return new Uint8Array(await blob.arrayBuffer());
}

function engineOptions(options: FitOptions): Record<string, unknown> {
  const out: Record<string, unknown> = { ...(options.engine ?? {}) };
  const map: Array<[keyof FitOptions, string]> = [
    ['samePerson', 'same_person'],
    ['iterations', 'iterations'],
    ['landmarkIterations', 'landmark_iterations'],
    ['resolution', 'resolution'],
    ['reportEvery', 'report_every'],
    ['previewEvery', 'preview_every'],
    ['blendPhotoTexture', 'blend_photo_texture'],
    ['seed', 'seed'],
  ];
  for (const [from, to] of map) if (options[from] !== undefined) out[to] = options[from];
  if (options.identityIterations === 0) {
    out.weights = { ...(out.weights as Record<string, unknown> | undefined), identity: 0, random_identity: 0, content: 0 };
  } else if (options.identityIterations !== undefined) {
    out.identity_iterations = options.identityIterations;
  }
  return out;
}

interface PendingFit {
  resolve: (fit: FaceFit) => void;
  reject: (error: Error) => void;
  onProgress?: (progress: FitProgress) => void;
  /** The engine said something about this fit: the watchdog starts counting again. */
  alive: () => void;
}

function abortError(signal: AbortSignal): Error {
  if (signal.reason instanceof Error) return signal.reason;
  return new DOMException('the fit was aborted', 'AbortError');
}

/** The engine in a web worker, with its models loaded. */
export class Fitter {
  /** The WebGPU adapter the engine runs on. */
  adapter!: AdapterInfo;
  /** The texture model in use (`gan` or `pca`). */
  textureModel!: string;
  /** Milliseconds the last start spent fetching models and putting them on the GPU. */
  timings!: { downloadMs: number; initMs: number };
  /** The watchdog's limit (see `CreateOptions.watchdogMs`); takes effect at the next fit. */
  watchdogMs: number;
  /** How many times the engine's worker was started again (after a crash, a lost GPU device
   * or the watchdog). */
  restarts = 0;
  private worker!: Worker;
  private nextId = 1;
  private pending = new Map<number, PendingFit>();
  private broken: FitterError | null = null;
  private destroyed: ((destroyed: boolean) => void) | null = null;
  private memoryWaiters: Array<{ resolve: (memory: EngineMemory) => void; reject: (error: Error) => void }> = [];
  /** Tracking and avatar requests the worker has not answered yet (a fit waits for them: the
   * engine runs one thing at a time). */
  private unanswered = new Set<Promise<unknown>>();
  /** Tracking and avatar requests waiting for the worker's answer. */
  private trackRequests = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();
  /** Counts the workers started: a tracker made in an earlier one starts again in the new one. */
  generation = 0;
  private readonly options: CreateOptions;

  private constructor(options: CreateOptions) {
    this.options = options;
    this.watchdogMs = options.watchdogMs ?? 300_000;
  }

  /** Starts the worker and loads the models. Rejects with a `FitterError` (`NoWebGpu`,
   * `NoAdapter`, `ModelDownload`, `ModelIntegrity`, ...). */
  static async create(options: CreateOptions = {}): Promise<Fitter> {
    if (typeof navigator === 'undefined' || !('gpu' in navigator) || !navigator.gpu) {
      throw new FitterError({ name: 'NoWebGpu', message: 'WebGPU is not available in this browser (navigator.gpu is missing)' });
    }
    const fitter = new Fitter(options);
    await fitter.start();
    return fitter;
  }

  private start(): Promise<void> {
    const modelsUrl = new URL(this.options.modelsUrl ?? 'models/', globalThis.location?.href).href;
    this.worker = new Worker(new URL('./worker.ts', import.meta.url), { type: 'module', name: 'ganfit' });
    this.broken = null;
    this.generation++;
    return new Promise((resolve, reject) => {
      let ready = false;
      this.worker.onmessage = (event: MessageEvent<FromWorker>) => {
        const message = event.data;
        switch (message.type) {
          case 'load-progress':
            // Also during a fit, when the engine fetches the identity terms' network first.
            for (const fit of this.pending.values()) fit.alive();
            this.options.onLoadProgress?.(message.progress);
            break;
          case 'ready':
            ready = true;
            this.adapter = message.adapter;
            this.textureModel = message.textureModel;
            this.timings = message.timings;
            resolve();
            break;
          case 'create-error':
            this.worker.terminate();
            reject(new FitterError(message.error));
            break;
          case 'progress': {
            const fit = this.pending.get(message.id);
            fit?.alive();
            fit?.onProgress?.(message.progress);
            break;
          }
          case 'memory':
            for (const waiter of this.memoryWaiters.splice(0)) waiter.resolve(message.memory);
            break;
          case 'track-started':
          case 'tracked':
          case 'avatar-glb':
          case 'track-error': {
            const request = this.trackRequests.get(message.id);
            this.trackRequests.delete(message.id);
            if (message.type === 'track-error') {
              if (message.fatal) this.broken = new FitterError(message.error);
              request?.reject(new FitterError(message.error));
            } else request?.resolve(message.type === 'tracked' ? message.frame : message.type === 'avatar-glb' ? message.glb : message.names);
            break;
          }
          case 'device-destroyed':
            this.destroyed?.(message.destroyed);
            this.destroyed = null;
            break;
          case 'result': {
            const fit = this.pending.get(message.id);
            this.pending.delete(message.id);
            fit?.resolve(new FaceFit(message.result));
            break;
          }
          case 'fit-error': {
            const fit = this.pending.get(message.id);
            this.pending.delete(message.id);
            const error = new FitterError(message.error);
            // A trapped module is replaced by a fresh worker at the next fit.
            if (message.fatal) this.broken = error;
            fit?.reject(message.error.name === 'Cancelled' ? new DOMException('the fit was aborted', 'AbortError') : error);
            break;
          }
        }
      };
      this.worker.onerror = (event) => {
        event.preventDefault();
        const error = new FitterError({ name: 'Crashed', message: event.message || 'the fitting worker failed' });
        if (!ready) reject(error);
        this.stopWorker(error);
      };
      this.worker.postMessage({
        type: 'create',
        modelsUrl,
        textureModel: this.options.textureModel,
        cacheName: this.options.cacheName === undefined ? 'ganfit-models' : this.options.cacheName,
      } satisfies ToWorker);
    });
  }

  /** Terminates the worker; its pending fits reject with `error`, and the next fit starts a
   * fresh one. */
  private stopWorker(error: FitterError) {
    this.worker.terminate();
    this.broken = error;
    for (const fit of this.pending.values()) fit.reject(error);
    this.pending.clear();
    for (const request of this.trackRequests.values()) request.reject(error);
    this.trackRequests.clear();
    for (const waiter of this.memoryWaiters.splice(0)) waiter.reject(error);
    this.destroyed?.(false);
    this.destroyed = null;
  }

  /** Fits one or several photos. Resolves to a `FaceFit`; rejects with a `FitterError`
   * (`NoFace` when a photo has no detectable face, `OutOfMemory`, `Unresponsive`, ...) or an
   * `AbortError`. A fit that fails because the GPU device was lost (before or during it) runs
   * once more on a fresh engine. */
  async fit(images: PhotoInput | PhotoInput[], options: FitOptions = {}): Promise<FaceFit> {
    const { signal } = options;
    if (signal?.aborted) throw abortError(signal);
    const list = Array.isArray(images) ? images : [images];
    if (list.length === 0) throw new FitterError({ name: 'Invalid', message: 'no photos to fit' });
    const encoded = await Promise.all(list.map(encodePhoto));
    const total = encoded.reduce((sum, b) => sum + b.byteLength, 0);
    if (total > MAX_FIT_BYTES) {
      throw new FitterError({ name: 'Image', message: `the photos are ${(total / 1e6).toFixed(0)} MB together; one fit takes at most ${Math.floor(MAX_FIT_BYTES / 1e6)} MB` });
    }
    try {
      // The first try gets copies: the worker takes ownership of what it is sent.
      return await this.runFit(encoded.map((b) => b.slice()), options);
    } catch (e) {
      if (!(e instanceof FitterError && e.name === 'DeviceLost') || signal?.aborted) throw e;
      return await this.runFit(encoded, options);
    }
  }

  /** A worker that crashed, lost its device or was stopped is replaced by a fresh one. */
  private async restartIfBroken() {
    if (!this.broken) return;
    this.worker.terminate();
    this.restarts++;
    await this.start();
  }

  private async runFit(encoded: Uint8Array[], options: FitOptions): Promise<FaceFit> {
    const { signal } = options;
    if (signal?.aborted) throw abortError(signal);
    // A tracked frame (or an avatar) still in the engine finishes first.
    while (this.unanswered.size > 0) await Promise.allSettled([...this.unanswered]);
    if (signal?.aborted) throw abortError(signal);
    await this.restartIfBroken();
    const id = this.nextId++;
    const watchdogMs = this.watchdogMs;
    return new Promise<FaceFit>((resolve, reject) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const arm = (ms: number, error: () => FitterError) => {
        clearTimeout(timer);
        if (ms > 0) timer = setTimeout(() => this.stopWorker(error()), ms);
      };
      const watchdog = () =>
        arm(watchdogMs, () => new FitterError({ name: 'Unresponsive', message: `the engine reported nothing for ${watchdogMs / 1000} s, so it was stopped; the next fit starts it again` }));
      const onAbort = () => {
        this.worker.postMessage({ type: 'cancel', id } satisfies ToWorker);
        // The engine stops at its next progress report; one that never comes (a GPU read that
        // never completes) costs the worker instead.
        arm(CANCEL_GRACE_MS, () => new FitterError({ name: 'AbortError', message: 'the fit was aborted' }));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
      };
      this.pending.set(id, {
        resolve: (fit) => {
          done();
          resolve(fit);
        },
        reject: (error) => {
          done();
          reject(error.name === 'AbortError' && signal?.aborted ? abortError(signal) : error);
        },
        onProgress: options.onProgress,
        alive: () => {
          if (!signal?.aborted) watchdog();
        },
      });
      watchdog();
      this.worker.postMessage(
        { type: 'fit', id, images: encoded, options: engineOptions(options) } satisfies ToWorker,
        encoded.map((b) => b.buffer as ArrayBuffer),
      );
    });
  }

  /** What the engine's worker holds in memory now (answered between fits or between two
   * progress reports of one). */
  memory(): Promise<EngineMemory> {
    if (this.broken) return Promise.reject(this.broken);
    return new Promise((resolve, reject) => {
      this.memoryWaiters.push({ resolve, reject });
      this.worker.postMessage({ type: 'memory' } satisfies ToWorker);
    });
  }

  /** Starts a live mirror's tracker for the person of `person` (a fit, or its identity
   * coefficients `params.identity`): then `tracker.track(frame)` fits each frame's expression
   * and head pose with the identity held. Fits and frames share the engine: a fit started while
   * a frame runs waits for it. Rejects with a `FitterError` (`Invalid` for identity values that
   * do not match the face model). */
  async startTracking(person: FaceFit | ArrayLike<number>, options: TrackOptions = {}): Promise<Tracker> {
    const identity = person instanceof FaceFit ? (person.photos[0]?.params as { identity?: number[] } | undefined)?.identity : Array.from(person);
    if (!identity?.length) throw new FitterError({ name: 'Invalid', message: 'startTracking: the fit holds no identity' });
    const start = async () => {
      await this.restartIfBroken();
      const engine = { ...(options.engine ?? {}), ...(options.resolution ? { resolution: options.resolution } : {}) };
      const names = (await this.request({ type: 'track-start', id: 0, identity, iterations: options.iterations ?? 0, options: engine })) as string[];
      return { names, generation: this.generation };
    };
    return new Tracker(this, await start(), start, options.maxSide ?? 640);
  }

  /** Whether the engine's worker can take work now (false after a crash, a lost device or the
   * watchdog, until the next call starts a fresh one). */
  get alive(): boolean {
    return this.broken === null;
  }

  /** The fit as an avatar: the animatable head of `fit.toGLB({ blendshapes: true })` with the
   * eyeballs, the eye sockets and the mouth interior (gums, tongue, teeth) of the face model,
   * painted where no photo shows them, so the head is not hollow when the mouth opens. Built
   * in the engine on request (the whole head model goes onto the GPU for it). */
  async avatarGLB(fit: FaceFit): Promise<Blob> {
    const params = fit.photos[0]?.params as { identity?: number[]; expression?: number[] } | undefined;
    if (!params?.identity || !params.expression) throw new FitterError({ name: 'Invalid', message: 'avatarGLB: the fit holds no identity' });
    await this.restartIfBroken();
    const texturePng = fit.raw.texture ? fit.raw.texture.png.slice() : null;
    const glb = (await this.request({ type: 'avatar', id: 0, identity: params.identity, expression: params.expression, texturePng })) as Uint8Array;
    return new Blob([glb as Uint8Array<ArrayBuffer>], { type: 'model/gltf-binary' });
  }

  /** @internal Sends a tracking or avatar request and waits for its answer, under the
   * watchdog. */
  async request(message: Extract<ToWorker, { type: 'track-start' | 'track-frame' | 'avatar' }>, transfer: Transferable[] = []): Promise<unknown> {
    // One thing at a time in the engine: an earlier request (say the last frame of a tracker
    // that was just stopped) finishes first.
    while (this.unanswered.size > 0) await Promise.allSettled([...this.unanswered]);
    if (this.broken) throw this.broken;
    const id = this.nextId++;
    const watchdogMs = this.watchdogMs;
    const answer = new Promise((resolve, reject) => {
      const timer =
        watchdogMs > 0
          ? setTimeout(() => this.stopWorker(new FitterError({ name: 'Unresponsive', message: `the engine answered nothing for ${watchdogMs / 1000} s, so it was stopped; the next call starts it again` })), watchdogMs)
          : undefined;
      this.trackRequests.set(id, {
        resolve: (value) => {
          clearTimeout(timer);
          resolve(value);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      });
      this.worker.postMessage({ ...message, id } satisfies ToWorker, transfer);
    });
    this.unanswered.add(answer);
    const forget = () => void this.unanswered.delete(answer);
    answer.then(forget, forget);
    return answer;
  }

  /** Ends the worker's tracker. */
  stopTracking(): void {
    if (!this.broken) this.worker.postMessage({ type: 'track-stop' } satisfies ToWorker);
  }

  /** Test hook: destroys the engine's GPU device as a driver reset would lose it. Resolves to
   * whether a device was open. The next fit notices, restarts the engine and succeeds. */
  loseDeviceForTest(): Promise<boolean> {
    return new Promise((resolve) => {
      this.destroyed = resolve;
      this.worker.postMessage({ type: 'lose-device' } satisfies ToWorker);
    });
  }

  /** Stops the worker and frees its GPU memory; pending fits reject. */
  dispose(): void {
    this.stopWorker(new FitterError({ name: 'Disposed', message: 'the fitter was disposed' }));
  }
}

export interface TrackOptions {
  /** Landmark iterations per frame. Default 30. */
  iterations?: number;
  /** Side of the working crop, pixels. Default 224. */
  resolution?: number;
  /** Frames are scaled down to at most this many pixels on their longer side before they go to
   * the engine. Default 640. */
  maxSide?: number;
  /** Any other engine option, snake_case (the eyes, the landmark rates). */
  engine?: Record<string, unknown>;
}

/** Anything `Tracker.track` takes as a frame. */
export type FrameInput = ImageData | HTMLVideoElement | HTMLCanvasElement | OffscreenCanvas | ImageBitmap | HTMLImageElement | VideoFrame;

/** A live mirror's tracker (from `fitter.startTracking`): one person's expression and head pose,
 * frame after frame, each warm-started from the last frame with a face. */
export class Tracker {
  /** The blendshapes' ARKit names: the order of every frame's `expression`, and of the
   * blendshape GLB's morph targets. */
  readonly names: string[];
  private generation: number;
  private inFlight = false;
  private stopped = false;
  private canvas: OffscreenCanvas | null = null;

  constructor(
    private readonly fitter: Fitter,
    started: { names: string[]; generation: number },
    private readonly restart: () => Promise<{ names: string[]; generation: number }>,
    private readonly maxSide: number,
  ) {
    this.names = started.names;
    this.generation = started.generation;
  }

  /** Whether a frame is being tracked: a live loop drops the frames that come meanwhile rather
   * than queueing them. */
  get busy(): boolean {
    return this.inFlight;
  }

  /** Fits one frame. A frame without a face resolves with `face_found: false` and the last
   * pose. Rejects with a `FitterError`: `Busy` while another frame runs, `Stopped` after
   * `stop()`, or what the engine said. If the engine was restarted (a crash, a lost device)
   * the tracker starts again in the new one, from the neutral pose. */
  async track(frame: FrameInput): Promise<TrackedFrame> {
    if (this.stopped) throw new FitterError({ name: 'Stopped', message: 'the tracker was stopped' });
    if (this.inFlight) throw new FitterError({ name: 'Busy', message: 'a frame is being tracked; drop this one' });
    this.inFlight = true;
    try {
      const pixels = this.pixels(frame);
      if (this.generation !== this.fitter.generation || !this.fitter.alive) this.generation = (await this.restart()).generation;
      const rgba = new Uint8Array(pixels.data.buffer);
      return (await this.fitter.request({ type: 'track-frame', id: 0, rgba, width: pixels.width, height: pixels.height }, [rgba.buffer])) as TrackedFrame;
    } finally {
      this.inFlight = false;
    }
  }

  /** Ends tracking; later `track` calls reject. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.fitter.stopTracking();
  }

  /** The frame's pixels, scaled down to `maxSide`. */
  private pixels(frame: FrameInput): ImageData {
    const width = frame instanceof ImageData ? frame.width : 'videoWidth' in frame ? frame.videoWidth : 'naturalWidth' in frame ? frame.naturalWidth : 'displayWidth' in frame ? frame.displayWidth : frame.width;
    const height = frame instanceof ImageData ? frame.height : 'videoHeight' in frame ? frame.videoHeight : 'naturalHeight' in frame ? frame.naturalHeight : 'displayHeight' in frame ? frame.displayHeight : frame.height;
    if (!width || !height) throw new FitterError({ name: 'Image', message: 'the frame has no pixels yet (is the video playing?)' });
    const scale = Math.min(1, this.maxSide / Math.max(width, height));
    if (frame instanceof ImageData && scale === 1) return new ImageData(new Uint8ClampedArray(frame.data), width, height);
    const w = Math.max(1, Math.round(width * scale));
    const h = Math.max(1, Math.round(height * scale));
    if (!this.canvas || this.canvas.width !== w || this.canvas.height !== h) this.canvas = new OffscreenCanvas(w, h);
    const context = this.canvas.getContext('2d', { willReadFrequently: true });
    if (!context) throw new FitterError({ name: 'Image', message: 'no 2D canvas to read the frame' });
    if (frame instanceof ImageData) {
      const full = new OffscreenCanvas(width, height);
      full.getContext('2d')!.putImageData(frame, 0, 0);
      context.drawImage(full, 0, 0, w, h);
    } else context.drawImage(frame as CanvasImageSource, 0, 0, w, h);
    return context.getImageData(0, 0, w, h);
  }
}
