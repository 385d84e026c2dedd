// Reference outputs of the original networks for the Rust parity tests (tests/nets_parity.rs).
//
//   node reference.mjs <request folder>
//
// The folder holds `request.json` (written by the Rust test) and the raw inputs it names:
//   images: RGB8 pixels decoded by Rust, so both sides see identical pixels;
//   faceres_crops: float32 NHWC 224×224×3 in [0, 1] (the Rust 224² ArcFace crops);
//   blazeface_inputs: float32 NHWC 256×256×3 in [0, 1] (the Rust letterboxed photos);
//   facemesh_inputs: float32 NHWC 192×192×3 in [0, 1] (the Rust rotated face crops).
// Runs face-api 1.7.15 (SSD MobileNetV1 → 68 landmarks → ResNet descriptor, its own pipeline)
// and human-models' faceres, BlazeFace and face mesh on tfjs's pure-JS CPU backend and writes
// `reference.json`.
// Nothing here is stored in the repository: the outputs are regenerated on every run.

import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const tf = require('@tensorflow/tfjs');
const faceapi = require('@vladmandic/face-api/dist/face-api.node-wasm.js');

const dir = process.argv[2];
if (!dir) {
  console.error('usage: node reference.mjs <request folder>');
  process.exit(2);
}
const request = JSON.parse(fs.readFileSync(path.join(dir, 'request.json'), 'utf8'));

function loadWeightMap(modelDir, name) {
  const manifest = JSON.parse(fs.readFileSync(path.join(modelDir, `${name}-weights_manifest.json`), 'utf8'));
  const buffers = manifest.flatMap((group) => group.paths.map((p) => fs.readFileSync(path.join(modelDir, p))));
  const data = Buffer.concat(buffers);
  const specs = manifest.flatMap((group) => group.weights);
  return tf.io.decodeWeights(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength), specs);
}

async function loadGraph(file) {
  const json = JSON.parse(fs.readFileSync(file, 'utf8'));
  const buffers = json.weightsManifest.flatMap((group) => group.paths.map((p) => fs.readFileSync(path.join(path.dirname(file), p))));
  const data = Buffer.concat(buffers);
  const handler = tf.io.fromMemory({
    modelTopology: json.modelTopology,
    format: json.format,
    generatedBy: json.generatedBy,
    convertedBy: json.convertedBy,
    userDefinedMetadata: json.userDefinedMetadata,
    weightSpecs: json.weightsManifest.flatMap((group) => group.weights),
    weightData: data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength),
  });
  return tf.loadGraphModel(handler);
}

const rect = (b) => ({ x: b.x, y: b.y, width: b.width, height: b.height });

async function main() {
  await tf.setBackend('cpu');
  await tf.ready();
  const models = request.face_api_models;
  faceapi.nets.ssdMobilenetv1.loadFromWeightMap(loadWeightMap(models, 'ssd_mobilenetv1_model'));
  faceapi.nets.faceLandmark68Net.loadFromWeightMap(loadWeightMap(models, 'face_landmark_68_model'));
  faceapi.nets.faceRecognitionNet.loadFromWeightMap(loadWeightMap(models, 'face_recognition_model'));
  const options = new faceapi.SsdMobilenetv1Options({ minConfidence: 0.5, maxResults: 100 });

  const images = [];
  for (const entry of request.images) {
    const bytes = fs.readFileSync(path.join(dir, entry.rgb));
    const input = tf.tensor3d(Int32Array.from(bytes), [entry.height, entry.width, 3], 'int32');
    const results = await faceapi.detectAllFaces(input, options).withFaceLandmarks().withFaceDescriptors();
    // The landmark network's own outputs (fractions of its padded 112² input), per face, from
    // the same crops face-api's landmark task cuts.
    const crops = await faceapi.extractFaceTensors(input, results.map((r) => r.detection));
    const faces = [];
    for (let i = 0; i < results.length; i += 1) {
      const r = results[i];
      const netInput = await faceapi.toNetInput(crops[i]);
      const raw = faceapi.nets.faceLandmark68Net.runNet(netInput);
      const chip = r.landmarks.align(null, { useDlibAlignment: true }).clipAtImageBorders(entry.width, entry.height);
      faces.push({
        score: r.detection.score,
        box: rect(r.detection.box),
        landmark_crop: rect(r.detection.box.clipAtImageBorders(entry.width, entry.height)),
        landmark_raw: Array.from(raw.dataSync()),
        landmarks: r.landmarks.positions.map((p) => [p.x, p.y]),
        chip: rect(chip),
        descriptor: Array.from(r.descriptor),
      });
      raw.dispose();
    }
    crops.forEach((c) => c.dispose());
    input.dispose();
    images.push({ name: entry.name, faces });
  }

  const faceres = [];
  if ((request.faceres_crops ?? []).length > 0) {
    const model = await loadGraph(request.faceres_model);
    // The network's training preprocessing (Keras "caffe"): RGB → BGR, 0–255, minus the
    // ImageNet means; the Rust port does the same on the device (src/nets/faceres.rs).
    const means = tf.tensor1d([103.939, 116.779, 123.68]);
    for (const crop of request.faceres_crops) {
      const bytes = fs.readFileSync(path.join(dir, crop.f32));
      const values = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
      const input = tf.tidy(() => tf.reverse(tf.tensor4d(values, [1, 224, 224, 3]), 3).mul(255).sub(means));
      const raw = model.execute(input, 'global_pooling/Mean');
      faceres.push({ name: crop.name, raw: Array.from(raw.dataSync()) });
      raw.dispose();
      input.dispose();
    }
    means.dispose();
  }

  // BlazeFace and the face mesh on the Rust inputs (NHWC in [0, 1]: letterboxed 256² photos and
  // 192² rotated face crops); BlazeFace's graph takes [-1, 1], the mesh's [0, 1].
  const readInput = (file, shape) => {
    const bytes = fs.readFileSync(path.join(dir, file));
    return tf.tensor4d(new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength)), shape);
  };
  const blazeface = [];
  if ((request.blazeface_inputs ?? []).length > 0) {
    const model = await loadGraph(request.blazeface_model);
    for (const item of request.blazeface_inputs) {
      const input = tf.tidy(() => readInput(item.f32, [1, 256, 256, 3]).mul(2).sub(1));
      // classificators_1 / _2 and regressors_1 / _2: the 16² map's 512 anchors, then the 8² map's 384.
      const [c16, c8, r16, r8] = model.execute(input, ['Identity', 'Identity_1', 'Identity_2', 'Identity_3']);
      blazeface.push({
        name: item.name,
        logits: [...c16.dataSync(), ...c8.dataSync()],
        regressions: [...r16.dataSync(), ...r8.dataSync()],
      });
      tf.dispose([input, c16, c8, r16, r8]);
    }
  }
  const facemesh = [];
  if ((request.facemesh_inputs ?? []).length > 0) {
    const model = await loadGraph(request.facemesh_model);
    for (const item of request.facemesh_inputs) {
      const input = readInput(item.f32, [1, 192, 192, 3]);
      const [mesh, flag] = model.execute(input, ['Identity_2', 'Identity_1']);
      facemesh.push({ name: item.name, mesh: Array.from(mesh.dataSync()), confidence: flag.dataSync()[0] });
      tf.dispose([input, mesh, flag]);
    }
  }

  const reference = {
    backend: tf.getBackend(),
    versions: { tfjs: tf.version.tfjs, face_api: faceapi.version },
    images,
    faceres,
    blazeface,
    facemesh,
  };
  fs.writeFileSync(path.join(dir, 'reference.json'), JSON.stringify(reference));
  console.log(`reference: ${images.length} images, ${images.reduce((n, i) => n + i.faces.length, 0)} faces, ${faceres.length} faceres crops, ${blazeface.length} BlazeFace inputs, ${facemesh.length} face mesh crops (tfjs ${tf.version.tfjs}, ${tf.getBackend()})`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
