// The web app: photos in (file picker, drag and drop, paste, camera), a fit in the engine's
// web worker with progress and cancel, and the result in a 3D viewer with downloads.
import { Fitter, FaceFit, type FitProgress, type LoadProgress, type TrackedFrame } from './lib/index.js';
import { FaceViewer } from './viewer.js';

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;

interface Photo {
  blob: Blob;
  name: string;
  url: string;
}

const photos: Photo[] = [];
let fitter: Fitter | null = null;
let running: AbortController | null = null;
let viewer: FaceViewer | null = null;
let lastFit: FaceFit | null = null;
/** Which detected face to fit (0: the largest, then by size); a click on the overlay picks it. */
let chosenFace = 0;
const downloads: string[] = [];

/** What the tests (and a curious console) can read. */
const exposed = window as unknown as { ganfit: { fitter?: Fitter; lastFit?: FaceFit; stats?: Record<string, number> } };
exposed.ganfit = {};

function showError(message: string | null) {
  const box = $('error');
  box.textContent = message ?? '';
  box.hidden = !message;
}

function updateFitButton() {
  ($('fit') as HTMLButtonElement).disabled = !fitter || photos.length === 0 || running !== null;
}

// ---------------------------------------------------------------- photos in

/** The engine's limit on one encoded photo (`io::image::MAX_FILE_BYTES`). */
const MAX_PHOTO_BYTES = 64 * 1024 * 1024;

function addPhoto(blob: Blob, name: string) {
  if (!blob.type.startsWith('image/') && blob.type !== '') {
    showError(`${name} is not an image.`);
    return;
  }
  if (blob.size > MAX_PHOTO_BYTES) {
    showError(`${name} is ${(blob.size / 1048576).toFixed(0)} MB; photos of up to 64 MB are accepted.`);
    return;
  }
  const photo = { blob, name, url: URL.createObjectURL(blob) };
  photos.push(photo);
  renderPhotoList();
  showError(null);
}

function renderPhotoList() {
  chosenFace = 0;
  const list = $('photo-list');
  list.replaceChildren(
    ...photos.map((photo, index) => {
      const item = document.createElement('li');
      const img = document.createElement('img');
      img.src = photo.url;
      img.alt = `Photo ${index + 1}: ${photo.name}`;
      const remove = document.createElement('button');
      remove.type = 'button';
      remove.textContent = 'Remove';
      remove.setAttribute('aria-label', `Remove photo ${index + 1} (${photo.name})`);
      remove.addEventListener('click', () => {
        URL.revokeObjectURL(photo.url);
        photos.splice(index, 1);
        renderPhotoList();
      });
      item.append(img, remove);
      return item;
    }),
  );
  updateFitButton();
}

function wirePhotoInputs() {
  const input = $<HTMLInputElement>('file-input');
  input.addEventListener('change', () => {
    for (const file of input.files ?? []) addPhoto(file, file.name);
    input.value = '';
  });
  const zone = $('dropzone');
  zone.addEventListener('dragover', (e) => {
    e.preventDefault();
    zone.classList.add('dragging');
  });
  zone.addEventListener('dragleave', () => zone.classList.remove('dragging'));
  zone.addEventListener('drop', (e) => {
    e.preventDefault();
    zone.classList.remove('dragging');
    for (const file of e.dataTransfer?.files ?? []) addPhoto(file, file.name);
  });
  // Enter or Space on the focused drop zone opens the file picker.
  zone.addEventListener('keydown', (e) => {
    if ((e.key === 'Enter' || e.key === ' ') && e.target === zone) {
      e.preventDefault();
      input.click();
    }
  });
  document.addEventListener('paste', (e) => {
    for (const item of e.clipboardData?.items ?? []) {
      const file = item.kind === 'file' ? item.getAsFile() : null;
      if (file && file.type.startsWith('image/')) addPhoto(file, file.name || 'pasted image');
    }
  });
  wireCamera();
}

function wireCamera() {
  const video = $<HTMLVideoElement>('camera-video');
  let stream: MediaStream | null = null;
  const close = () => {
    stream?.getTracks().forEach((t) => t.stop());
    stream = null;
    $('camera').hidden = true;
    $('camera-open').focus();
  };
  $('camera-open').addEventListener('click', async () => {
    if (!navigator.mediaDevices?.getUserMedia) {
      showError('This browser cannot use a camera here (camera access needs HTTPS or localhost).');
      return;
    }
    try {
      stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: 'user', width: { ideal: 1280 } }, audio: false });
    } catch (e) {
      showError(`The camera could not be opened: ${(e as Error).message}`);
      return;
    }
    video.srcObject = stream;
    $('camera').hidden = false;
    await video.play();
    $('camera-shutter').focus();
  });
  $('camera-shutter').addEventListener('click', () => {
    const canvas = document.createElement('canvas');
    canvas.width = video.videoWidth;
    canvas.height = video.videoHeight;
    canvas.getContext('2d')!.drawImage(video, 0, 0);
    canvas.toBlob((blob) => blob && addPhoto(blob, `camera-${photos.length + 1}.jpg`), 'image/jpeg', 0.92);
  });
  $('camera-close').addEventListener('click', close);
}

// ---------------------------------------------------------------- settings

const presets: Record<string, [number, number, number, number]> = {
  default: [300, 150, 224, 50],
  quick: [100, 30, 160, 15],
};

function wireSettings() {
  const quality = $<HTMLSelectElement>('quality');
  const fields = ['landmark-iterations', 'iterations', 'resolution', 'identity-iterations'].map((id) => $<HTMLInputElement>(id));
  const apply = () => {
    const preset = presets[quality.value];
    if (preset) fields.forEach((f, i) => (f.value = String(preset[i])));
  };
  quality.addEventListener('change', apply);
  fields.forEach((f) => f.addEventListener('input', () => (quality.value = 'custom')));
  // Typed values are brought into range when the field is left, so what runs is what shows.
  fields.forEach((f) => f.addEventListener('change', () => void setting(f.id)));
  apply();
}

/** A number field's value within its `min`/`max` (and `step` from `min`), written back to the
 * field; an empty or non-numeric entry takes the field's default. */
function setting(id: string): number {
  const field = $<HTMLInputElement>(id);
  const [min, max, step] = [Number(field.min), Number(field.max), Number(field.step) || 1];
  let value = Number(field.value);
  if (field.value.trim() === '' || !Number.isFinite(value)) value = Number(field.defaultValue);
  value = Math.min(max, Math.max(min, min + Math.round((value - min) / step) * step));
  if (String(value) !== field.value) field.value = String(value);
  return value;
}

function settings() {
  return {
    samePerson: $<HTMLInputElement>('same-person').checked,
    landmarkIterations: setting('landmark-iterations'),
    iterations: setting('iterations'),
    resolution: setting('resolution'),
    identityIterations: setting('identity-iterations'),
  };
}

// ---------------------------------------------------------------- fitting

const stageNames: Record<FitProgress['stage'], string> = {
  Preparing: 'Finding the face',
  Landmarks: 'Stage 1: fitting shape to landmarks',
  Full: 'Stage 2: fitting shape, texture and light',
  Identity: 'Stage 3: fitting the face to the identity network',
};

const errorMessages: Record<string, string> = {
  NoFace: 'No face was found in the photo. Try a photo where the face is large (at least 1/30 of the photo across), frontal, sharp and well lit.',
  FaceRotated: 'The photo is on its side or upside down: a face appears only when it is turned. Turn it upright and try again.',
  OutOfMemory: 'The GPU or the browser ran out of memory. Try a lower resolution or fewer photos, or close other tabs; the page still works.',
  Image: 'The photo could not be read',
  Crashed: 'The fitting engine stopped unexpectedly; it will restart for the next fit',
  DeviceLost: 'The GPU was lost twice in a row (a driver reset, or the browser took it back); the engine will restart for the next fit',
  Unresponsive: 'The fitting engine stopped responding, so it was stopped; it will restart for the next fit',
};

async function runFit() {
  if (!fitter || photos.length === 0 || running) return;
  const controller = new AbortController();
  running = controller;
  // The page shows the new fit at once, before any wait: the last fit's 'Done.' and an enabled
  // Fit button must not stand while the mirror stops (a click then would act on the old fit).
  updateFitButton();
  showError(null);
  $('cancel').hidden = false;
  $('fitting').hidden = false;
  const bar = $<HTMLProgressElement>('fit-progress');
  const stage = $('fit-stage');
  const preview = $<HTMLCanvasElement>('preview');
  bar.value = 0;
  stage.textContent = mirror ? 'Stopping the mirror' : stageNames.Preparing;
  // The engine takes one fit or frame at a time: the mirror stops (and its frame ends) first.
  await mirror?.stop('The mirror stopped for the new fit.');
  stage.textContent = stageNames.Preparing;
  const options = settings();
  const started = performance.now();
  let firstStepMs = NaN;
  const stepsTotal = options.landmarkIterations + options.iterations + options.identityIterations;
  try {
    const fit = await fitter.fit(
      photos.map((p) => p.blob),
      {
        ...options,
        // A report every iteration: cancel acts at the next one, and the bar keeps moving.
        reportEvery: 1,
        previewEvery: Math.max(1, Math.min(25, Math.floor(options.iterations / 4))),
        engine: { face: chosenFace },
        signal: controller.signal,
        onProgress: (p) => {
          if (p.stage !== 'Preparing' && Number.isNaN(firstStepMs)) firstStepMs = performance.now() - started;
          const done =
            p.stage === 'Preparing' ? 0 : p.stage === 'Landmarks' ? p.iteration : p.stage === 'Full' ? options.landmarkIterations + p.iteration : options.landmarkIterations + options.iterations + p.iteration;
          bar.value = stepsTotal ? done / stepsTotal : 0;
          stage.textContent =
            p.stage === 'Preparing'
              ? `${stageNames.Preparing} (photo ${p.iteration + 1} of ${p.iterations})`
              : `${stageNames[p.stage]}: iteration ${p.iteration} of ${p.iterations}` + (p.losses ? `, loss ${p.losses.total.toFixed(4)}` : '');
          if (p.preview) {
            preview.width = p.preview.width;
            preview.height = p.preview.height;
            preview.getContext('2d')!.putImageData(new ImageData(new Uint8ClampedArray(p.preview.rgba), p.preview.width, p.preview.height), 0, 0);
          }
        },
      },
    );
    const totalMs = performance.now() - started;
    bar.value = 1;
    const stats = { firstStepMs, totalMs, engineMs: fit.milliseconds, vertices: fit.mesh.vertexCount, triangles: fit.mesh.indices.length / 3 };
    exposed.ganfit.stats = stats;
    await showResult(fit, stats);
    // Only now: the result, its overlay and its controls are all in place.
    stage.textContent = 'Done.';
  } catch (e) {
    const error = e as Error;
    if (error.name === 'AbortError') {
      stage.textContent = 'Cancelled.';
      $('engine-status').textContent = 'Fit cancelled. Ready for the next one.';
    } else {
      const known = errorMessages[error.name];
      showError(known ? (known.endsWith('.') ? known : `${known}: ${error.message}`) : `The fit failed (${error.name}): ${error.message}`);
      stage.textContent = 'Failed.';
    }
  } finally {
    running = null;
    $('cancel').hidden = true;
    updateFitButton();
  }
}

async function showResult(fit: FaceFit, stats: Record<string, number>) {
  lastFit = fit;
  exposed.ganfit.lastFit = fit;
  $('result').hidden = false;
  viewer ??= new FaceViewer($('viewer'));
  await viewer.show(fit);
  viewer.setWireframe($<HTMLInputElement>('wireframe').checked);
  viewer.setTextured($<HTMLInputElement>('textured').checked);
  await showExpressionControls(fit);
  await drawOverlay();
  downloads.splice(0).forEach((url) => URL.revokeObjectURL(url));
  const link = (id: string, blob: Blob) => {
    const url = URL.createObjectURL(blob);
    downloads.push(url);
    $<HTMLAnchorElement>(id).href = url;
  };
  link('download-glb', fit.toGLB());
  link('download-glb-rig', fit.toGLB({ blendshapes: true }));
  link('download-obj', await fit.toOBJZip());
  link('download-params', new Blob([fit.paramsJson], { type: 'application/json' }));
  if (fit.texture) link('uv-texture', fit.texture.png);
  ($('uv-texture') as HTMLImageElement).src = fit.texture ? downloads[downloads.length - 1] : '';
  const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
  $('fit-stats').textContent =
    `${stats.vertices} vertices, ${stats.triangles} triangles, texture model ${fit.textureModel}. ` +
    `First iteration after ${seconds(stats.firstStepMs)}, whole fit ${seconds(stats.totalMs)}.` +
    (fit.warnings.length ? ` Warnings: ${fit.warnings.join('; ')}` : '');
  const covered = viewer.coveredPixels();
  $('viewer').dataset.coveredPixels = String(covered);
  $('viewer').dataset.vertices = String(stats.vertices);
  $('result').scrollIntoView({ behavior: 'smooth', block: 'start' });
}

// ---------------------------------------------------------------- expression

/** The viewer's blendshape sliders, grouped as ARKit names them. */
const expressionGroups: Array<[string, RegExp]> = [
  ['Brows', /^brow/],
  ['Eyes', /^eye/],
  ['Jaw', /^jaw/],
  ['Mouth', /^mouth/],
  ['Cheeks', /^cheek/],
  ['Nose', /^nose/],
  ['Other', /./],
];

/** Presets by ARKit name; ICT's halves of ARKit's whole `browInnerUp` and `cheekPuff` take the
 * one value. */
const expressionPresets: Record<string, Record<string, number>> = {
  smile: { mouthSmileLeft: 0.85, mouthSmileRight: 0.85, cheekSquintLeft: 0.45, cheekSquintRight: 0.45, eyeSquintLeft: 0.25, eyeSquintRight: 0.25, mouthDimpleLeft: 0.2, mouthDimpleRight: 0.2 },
  surprise: { browInnerUpLeft: 0.9, browInnerUpRight: 0.9, browOuterUpLeft: 0.8, browOuterUpRight: 0.8, eyeWideLeft: 0.7, eyeWideRight: 0.7, jawOpen: 0.35 },
  blink: { eyeBlinkLeft: 1, eyeBlinkRight: 1 },
};

/** Sets the expression sliders (the GLB's order) and the head to them; null until a fit's
 * rig is loaded. */
let showExpression: ((weights: number[]) => void) | null = null;
/** The fitted expression (the rig's default weights). */
let fittedExpression: number[] | null = null;

async function showExpressionControls(fit: FaceFit) {
  const panel = $('expression');
  showExpression = null;
  fittedExpression = null;
  let rig: { names: string[]; fitted: number[] };
  try {
    rig = await viewer!.loadRig(fit.toGLB({ blendshapes: true }));
  } catch (e) {
    console.warn('no expression controls:', e);
    panel.hidden = true;
    return;
  }
  const sliders: HTMLInputElement[] = [];
  const apply = () => {
    const moved = viewer!.setExpression(sliders.map((s) => Number(s.value)));
    $('viewer').dataset.expressionMovedMm = moved.toFixed(2);
  };
  const set = (weights: number[]) => {
    sliders.forEach((s, i) => (s.value = String(weights[i])));
    apply();
  };
  showExpression = set;
  fittedExpression = rig.fitted;
  const used = new Set<string>();
  const groups = expressionGroups.map(([title, pattern]) => {
    const names = rig.names.filter((n) => pattern.test(n) && !used.has(n));
    names.forEach((n) => used.add(n));
    if (names.length === 0) return null;
    const fieldset = document.createElement('fieldset');
    const legend = document.createElement('legend');
    legend.textContent = title;
    fieldset.append(legend);
    for (const name of names) {
      const index = rig.names.indexOf(name);
      const label = document.createElement('label');
      const slider = document.createElement('input');
      slider.type = 'range';
      slider.min = '0';
      slider.max = '1';
      slider.step = '0.01';
      slider.id = `shape-${name}`;
      slider.value = String(rig.fitted[index]);
      slider.addEventListener('input', apply);
      sliders[index] = slider;
      label.append(name, slider);
      fieldset.append(label);
    }
    return fieldset;
  });
  $('expression-groups').replaceChildren(...groups.filter((g): g is HTMLFieldSetElement => g !== null));
  for (const button of panel.querySelectorAll<HTMLButtonElement>('[data-preset]')) {
    button.onclick = () => {
      const preset = button.dataset.preset!;
      if (preset === 'fitted') set(rig.fitted);
      else set(rig.names.map((n) => expressionPresets[preset]?.[n] ?? 0));
    };
  }
  apply();
  panel.hidden = false;
}

/** The first fitted photo with the final render over its working crop. */
async function drawOverlay() {
  if (!lastFit) return;
  const canvas = $<HTMLCanvasElement>('overlay');
  const first = lastFit.photos[0];
  const bitmap = await createImageBitmap(photos[first?.index ?? 0]?.blob ?? new Blob());
  canvas.width = bitmap.width;
  canvas.height = bitmap.height;
  const context = canvas.getContext('2d')!;
  context.drawImage(bitmap, 0, 0);
  drawFaceBoxes(context);
  if (!first?.render) return;
  const render = new OffscreenCanvas(first.render.width, first.render.height);
  render.getContext('2d')!.putImageData(new ImageData(new Uint8ClampedArray(first.render.rgba), first.render.width, first.render.height), 0, 0);
  const crop = first.photo.crop;
  context.save();
  context.globalAlpha = Number($<HTMLInputElement>('overlay-opacity').value);
  // The crop maps crop pixels to photo pixels: x' = a x + b y + tx, y' = c x + d y + ty.
  context.setTransform(crop.a, crop.c, crop.b, crop.d, crop.tx, crop.ty);
  context.drawImage(render, 0, 0);
  context.restore();
}

/** Several faces in a single photo: outline each (the fitted one solid) and say how to pick
 * another. */
function drawFaceBoxes(context: CanvasRenderingContext2D) {
  const hint = $('faces-hint');
  const summary = lastFit?.photos[0]?.photo;
  const faces = summary?.faces ?? [];
  $('overlay').dataset.faces = String(faces.length);
  if (!summary || faces.length < 2 || photos.length !== 1) {
    hint.hidden = true;
    return;
  }
  const line = Math.max(2, Math.round(Math.max(summary.width, summary.height) / 300));
  faces.forEach(([x, y, w, h], index) => {
    const fitted = index === summary.face;
    context.save();
    context.lineWidth = line;
    context.strokeStyle = fitted ? '#2ecc71' : '#ffffff';
    context.setLineDash(fitted ? [] : [3 * line, 2 * line]);
    context.strokeRect(x, y, w, h);
    context.restore();
  });
  hint.textContent = `${faces.length} faces found; face ${summary.face + 1} (outlined in green) was fitted. Click another face on the photo to fit it instead.`;
  hint.hidden = false;
}

/** The detected face under a click on the overlay (the smallest box holding the point). */
function faceAt(event: MouseEvent): number | null {
  const faces = lastFit?.photos[0]?.photo.faces ?? [];
  if (faces.length < 2 || photos.length !== 1) return null;
  const canvas = $<HTMLCanvasElement>('overlay');
  const rect = canvas.getBoundingClientRect();
  const px = ((event.clientX - rect.left) * canvas.width) / rect.width;
  const py = ((event.clientY - rect.top) * canvas.height) / rect.height;
  let best: number | null = null;
  for (const [index, [x, y, w, h]] of faces.entries()) {
    const inside = px >= x && px <= x + w && py >= y && py <= y + h;
    if (inside && (best === null || w * h < faces[best][2] * faces[best][3])) best = index;
  }
  return best;
}

function wireResult() {
  $('overlay').addEventListener('click', (event) => {
    const face = faceAt(event);
    if (face === null || running || face === lastFit?.photos[0]?.photo.face) return;
    chosenFace = face;
    void runFit();
  });
  $('wireframe').addEventListener('change', (e) => viewer?.setWireframe((e.target as HTMLInputElement).checked));
  $('textured').addEventListener('change', (e) => viewer?.setTextured((e.target as HTMLInputElement).checked));
  $('reset-view').addEventListener('click', () => viewer?.resetView());
  $('overlay-opacity').addEventListener('input', () => void drawOverlay());
  $('fit').addEventListener('click', () => void runFit());
  $('mirror-start').addEventListener('click', () => void startMirror());
  $('download-avatar').addEventListener('click', () => void downloadAvatar());
  $('mirror-stop').addEventListener('click', () => void mirror?.stop('Mirror stopped.'));
  $('cancel').addEventListener('click', () => running?.abort());
}

/** The avatar GLB, built in the engine when asked for (it loads the whole head model). */
async function downloadAvatar() {
  if (!fitter || !lastFit) return;
  const button = $<HTMLButtonElement>('download-avatar');
  const label = button.textContent;
  button.disabled = true;
  button.textContent = 'Building the avatar…';
  try {
    await mirror?.stop('The mirror stopped for the avatar export.');
    const url = URL.createObjectURL(await fitter.avatarGLB(lastFit));
    downloads.push(url);
    const link = document.createElement('a');
    link.href = url;
    link.download = 'face-avatar.glb';
    link.click();
  } catch (e) {
    showError(`The avatar could not be built (${(e as Error).name}): ${(e as Error).message}`);
  } finally {
    button.disabled = false;
    button.textContent = label;
  }
}

// ---------------------------------------------------------------- live mirror

/** Landmark iterations per mirror frame: each frame starts from the last one's expression and
 * pose, so a few suffice, and on a software GPU every iteration costs about half a second. */
const MIRROR_ITERATIONS = 10;
/** Camera frames go to the engine at most this wide: a face in front of a webcam is large, and
 * smaller frames skip the detector's tiles for small faces (photos of 512 px and more). */
const MIRROR_MAX_SIDE = 480;

/** The running mirror; `stop` resolves once its last frame has left the engine. */
let mirror: { stop(message: string): Promise<void> } | null = null;
/** The last mirror's stop: a new mirror starts once its last frame has left the engine. */
let mirrorStopped: Promise<void> = Promise.resolve();

/** ICT's left/right shapes swapped, so the head moves as the user's mirror image does. */
function mirroredWeights(names: string[], weights: number[]): number[] {
  const index = new Map(names.map((n, i) => [n, i]));
  return names.map((name, i) => {
    const other = name.endsWith('Left') ? `${name.slice(0, -4)}Right` : name.endsWith('Right') ? `${name.slice(0, -5)}Left` : name;
    return weights[index.get(other) ?? i];
  });
}

/** Camera frames drive the fitted head: each frame's expression and pose are fitted with the
 * identity held (`fitter.startTracking`). Frames that come while the engine works are dropped,
 * not queued; the rate achieved is shown. */
async function startMirror() {
  if (!fitter || !lastFit || mirror || running) return;
  const status = $('mirror-status');
  status.textContent = 'Starting the mirror…';
  await mirrorStopped;
  if (!navigator.mediaDevices?.getUserMedia) {
    status.textContent = 'This browser cannot use a camera here (camera access needs HTTPS or localhost).';
    return;
  }
  let stream: MediaStream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: 'user', width: { ideal: 640 } }, audio: false });
  } catch (e) {
    status.textContent = `The camera could not be opened (${(e as Error).name}): ${(e as Error).message}. The rest of the page keeps working.`;
    return;
  }
  const closeCamera = () => stream.getTracks().forEach((t) => t.stop());
  let tracker;
  try {
    tracker = await fitter.startTracking(lastFit, { resolution: Math.min(setting('resolution'), 160), iterations: MIRROR_ITERATIONS, maxSide: MIRROR_MAX_SIDE });
  } catch (e) {
    closeCamera();
    status.textContent = `The mirror could not start (${(e as Error).name}): ${(e as Error).message}`;
    return;
  }
  const video = $<HTMLVideoElement>('mirror-video');
  const box = $('mirror');
  video.srcObject = stream;
  video.hidden = false;
  $('mirror-start').hidden = true;
  $('mirror-stop').hidden = false;
  status.textContent = 'Starting the mirror…';
  let on = true;
  let inFlight: Promise<unknown> = Promise.resolve();
  const done: number[] = [];
  let frames = 0;
  let dropped = 0;
  let engineMs = 0;
  const stop = async (message: string) => {
    if (!on) return;
    on = false;
    mirror = null;
    closeCamera();
    video.srcObject = null;
    video.hidden = true;
    $('mirror-start').hidden = false;
    $('mirror-stop').hidden = true;
    viewer?.setPose([0, 0, 0]);
    if (fittedExpression) showExpression?.(fittedExpression);
    status.textContent = message;
    box.dataset.running = 'false';
    // The frame in the engine finishes (its result is dropped) before a fit may start.
    await inFlight.catch(() => undefined);
    tracker.stop();
  };
  // Every way the mirror stops goes through here, so a new mirror (or a fit) can wait for it.
  const stopMirror = (message: string) => (mirrorStopped = stop(message));
  mirror = { stop: stopMirror };
  box.dataset.running = 'true';
  for (const track of stream.getVideoTracks()) {
    track.addEventListener('ended', () => void stopMirror('The camera stopped (unplugged, or taken by another app); the mirror is off. The rest of the page keeps working.'));
  }
  const show = (frame: TrackedFrame) => {
    const [pitch, yaw, roll] = frame.angles;
    viewer?.setPose([pitch, -yaw, -roll]);
    showExpression?.(mirroredWeights(tracker.names, frame.expression));
    // The rate over the last ten frames.
    const now = performance.now();
    done.push(now);
    if (done.length > 10) done.shift();
    const fps = done.length > 1 ? ((done.length - 1) * 1000) / (now - done[0]) : 0;
    frames++;
    engineMs += frame.milliseconds;
    box.dataset.frames = String(frames);
    box.dataset.roll = ((roll * 180) / Math.PI).toFixed(2);
    box.dataset.fps = fps.toPrecision(3);
    box.dataset.msPerFrame = (engineMs / frames).toFixed(0);
    status.textContent =
      `${fps.toPrecision(2)} frames per second (${(engineMs / frames).toFixed(0)} ms per frame in the engine; ${dropped} camera frames dropped while it worked).` +
      (frame.face_found ? '' : ' No face in view: the head holds its last pose.');
  };
  // Once per camera frame where the browser says when one arrives, else once per display frame.
  const nextFrame = () => ('requestVideoFrameCallback' in video ? video.requestVideoFrameCallback(() => tick()) : requestAnimationFrame(() => tick()));
  const tick = () => {
    if (!on) return;
    if (tracker.busy || video.readyState < 2) dropped++;
    else {
      inFlight = tracker.track(video).then(
        (frame) => on && show(frame),
        (e: Error) => {
          if (on && e.name !== 'Busy') void stopMirror(`The mirror stopped (${e.name}): ${e.message}`);
        },
      );
    }
    nextFrame();
  };
  await video.play().catch(() => undefined);
  nextFrame();
}

// ---------------------------------------------------------------- start

function describeLoad(p: LoadProgress): string {
  const mb = (n: number) => (n / 1e6).toFixed(1);
  switch (p.stage) {
    case 'manifest':
      return 'Fetching the model list…';
    case 'download':
      return `Downloading models: ${mb(p.loaded)} of ${mb(p.total)} MB (${p.file})`;
    case 'cache':
      return `Reading models from this browser's cache: ${mb(p.loaded)} of ${mb(p.total)} MB`;
    case 'verify':
      return `Checking ${p.file}…`;
    case 'init':
      return 'Putting the models on the GPU…';
  }
}

async function start() {
  wirePhotoInputs();
  wireSettings();
  wireResult();
  if (import.meta.env.PROD && 'serviceWorker' in navigator) {
    navigator.serviceWorker.register('./sw.js').catch((e) => console.warn('service worker not registered:', e));
  }
  const status = $('engine-status');
  const bar = $<HTMLProgressElement>('load-progress');
  if (!('gpu' in navigator) || !navigator.gpu) {
    status.textContent = 'Not available.';
    bar.hidden = true;
    showError('WebGPU is not available in this browser. ganfit needs WebGPU (Chrome/Edge 113+, Safari 26+, Firefox 141+ on Windows); it does not fall back to the CPU. You can still look around, but fitting is off.');
    return;
  }
  try {
    // `?texture=gan` or `?texture=pca` picks the texture model; otherwise the manifest's choice.
    const texture = new URLSearchParams(location.search).get('texture');
    fitter = await Fitter.create({
      modelsUrl: new URL('models/', location.href),
      textureModel: texture === 'gan' || texture === 'pca' ? texture : undefined,
      onLoadProgress: (p) => {
        // After start-up, only a fit that turns the identity terms on fetches a model (faceres).
        if (status.dataset.ready === 'true') {
          $('fit-stage').textContent = `Identity network: ${describeLoad(p)}`;
          return;
        }
        status.textContent = describeLoad(p);
        bar.value = p.total ? p.loaded / p.total : 0;
      },
    });
  } catch (e) {
    const error = e as Error;
    status.textContent = 'Not started.';
    bar.hidden = true;
    showError(
      error.name === 'NoWebGpu' || error.name === 'NoAdapter'
        ? `WebGPU is not available: ${error.message}`
        : error.name === 'ModelDownload' || error.name === 'ModelIntegrity'
          ? `The models could not be loaded (${error.name}): ${error.message}`
          : `The engine could not start (${error.name}): ${error.message}`,
    );
    return;
  }
  exposed.ganfit.fitter = fitter;
  bar.hidden = true;
  status.textContent = `Ready on ${fitter.adapter.name || 'a WebGPU adapter'} (${fitter.adapter.device_type}); texture model: ${fitter.textureModel}.`;
  status.dataset.ready = 'true';
  updateFitButton();
}

void start();
