// Messages between the page's `Fitter` and its web worker (the engine runs only in the worker,
// so a fit never blocks the page).

/** Progress while the models load: one report per chunk read or file checked. */
export interface LoadProgress {
  /** `manifest`, `download` (bytes arriving), `verify` (hash check), `cache` (read from the
   * Cache API), `init` (models going onto the GPU). */
  stage: 'manifest' | 'download' | 'cache' | 'verify' | 'init';
  /** The file the report is about, if any. */
  file?: string;
  /** Bytes of every model file read so far, and in all. */
  loaded: number;
  total: number;
}

/** Loss terms of one report (each weighted; `total` is their sum). */
export interface LossValues {
  total: number;
  landmarks: number;
  pixel: number;
  identity: number;
  random_identity: number;
  content: number;
  priors: number;
}

/** RGBA8 pixels, the layout `ImageData` takes. */
export interface RgbaImage {
  width: number;
  height: number;
  rgba: Uint8ClampedArray;
}

/** One progress report of a fit. */
export interface FitProgress {
  /** `Preparing` (detection, landmarks), `Landmarks` (stage 1), `Full` (stage 2), `Identity`
   * (stage 3: the identity terms on the texture, the light and the identity, when they are on). */
  stage: 'Preparing' | 'Landmarks' | 'Full' | 'Identity';
  iteration: number;
  iterations: number;
  losses: LossValues | null;
  elapsed_ms: number;
  /** The current render over the working crop of photo `photo` (only every `previewEvery`
   * stage-2 iterations). */
  preview?: RgbaImage & { photo: number };
}

/** The engine's result object (see `result_to_js` in `src/web.rs`). */
export interface RawFitResult {
  /** One entry per fitted photo; `index` is its place among the input photos (a photo with no
   * face is left out of a several-photo fit, with a warning). */
  photos: Array<{ index: number; photo: PhotoSummary; params: Record<string, unknown>; render: RgbaImage | null }>;
  mesh: { positions: Float32Array; normals: Float32Array; uvs: Float32Array; indices: Uint32Array; vertexCount: number };
  texture: { width: number; height: number; png: Uint8Array } | null;
  glb: Uint8Array;
  /** The GLB with the 53 expression blendshapes as ARKit-named morph targets. */
  glbBlendshapes: Uint8Array;
  obj: string;
  mtl: string;
  textureFile: string;
  meshName: string;
  paramsJson: string;
  lossesTsv: string;
  textureModel: string;
  options: Record<string, unknown>;
  log: unknown[];
  warnings: string[];
  milliseconds: number;
}

/** What the engine found in a photo. */
export interface PhotoSummary {
  width: number;
  height: number;
  faces_found: number;
  /** Every detected face, largest first: x, y, width, height in photo pixels. Fit another
   * with the engine option `face` (its index here). */
  faces: Array<[number, number, number, number]>;
  /** Which of `faces` was fitted. */
  face: number;
  /** The detected face: x, y, width, height in photo pixels. */
  face_box: [number, number, number, number];
  /** The 68 landmarks in photo pixels. */
  landmarks: Array<[number, number]>;
  /** The working crop, crop pixel → photo pixel: x' = a x + b y + tx, y' = c x + d y + ty. */
  crop: { a: number; b: number; c: number; d: number; tx: number; ty: number };
  warnings: string[];
}

export interface AdapterInfo {
  name: string;
  backend: string;
  device_type: string;
  driver: string;
}

/** One tracked frame of the live mirror (see `Tracker.track`). */
export interface TrackedFrame {
  /** Whether a face was found; without one the head holds its last pose (or the neutral one). */
  face_found: boolean;
  /** One weight per blendshape, in the order of `Tracker.names` (ARKit names). */
  expression: number[];
  /** Head pitch, yaw, roll in radians: R = Rz(roll) · Ry(yaw) · Rx(pitch), camera looking
   * down -z with y up (three.js: `rotation.set(pitch, yaw, roll, 'ZYX')`). */
  angles: [number, number, number];
  translation_mm: [number, number, number];
  focal_px: number;
  landmark_loss: number | null;
  /** Engine time for the frame. */
  milliseconds: number;
  warnings: string[];
}

export type ToWorker =
  | { type: 'create'; modelsUrl: string; textureModel?: 'gan' | 'pca'; cacheName: string | null }
  | { type: 'fit'; id: number; images: Uint8Array[]; options: Record<string, unknown> }
  | { type: 'cancel'; id: number }
  /** Test hook: destroy the engine's GPU device as a driver reset would lose it. */
  | { type: 'lose-device' }
  | { type: 'memory' }
  | { type: 'track-start'; id: number; identity: number[]; iterations: number; options: Record<string, unknown> }
  | { type: 'track-frame'; id: number; rgba: Uint8Array; width: number; height: number }
  | { type: 'track-stop' }
  | { type: 'avatar'; id: number; identity: number[]; expression: number[]; texturePng: Uint8Array | null };

export interface WorkerError {
  name: string;
  message: string;
}

export type FromWorker =
  | { type: 'load-progress'; progress: LoadProgress }
  | { type: 'ready'; adapter: AdapterInfo; textureModel: string; timings: { downloadMs: number; initMs: number } }
  | { type: 'create-error'; error: WorkerError }
  | { type: 'progress'; id: number; progress: FitProgress }
  | { type: 'result'; id: number; result: RawFitResult }
  | { type: 'fit-error'; id: number; error: WorkerError; fatal: boolean }
  | { type: 'device-destroyed'; destroyed: boolean }
  | { type: 'memory'; memory: EngineMemory }
  | { type: 'track-started'; id: number; names: string[] }
  | { type: 'tracked'; id: number; frame: TrackedFrame }
  | { type: 'track-error'; id: number; error: WorkerError; fatal: boolean }
  | { type: 'avatar-glb'; id: number; glb: Uint8Array };

/** What the engine's worker holds: the wasm module's linear memory (it only ever grows, so
 * this is the high-water mark of the engine's heap) and, where the browser tells, the worker's
 * JavaScript heap. GPU memory is not visible from a page. */
export interface EngineMemory {
  wasmBytes: number;
  jsHeapBytes: number | null;
}
