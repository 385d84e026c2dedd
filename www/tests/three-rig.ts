// The animatable GLB as an app would load it: three.js's own GLTFLoader, in Node (textures are
// skipped: Node has no image decoder, and the loader goes on without them).
import type { Mesh } from 'three';
import { GLTFLoader } from 'three/examples/jsm/loaders/GLTFLoader.js';

export interface RigCheck {
  targets: string[];
  /** The mesh's default influences (the fitted expression). */
  influences: number[];
  /** With `jawOpen` at 1: how far (metres, +y up, +z forward) the 20 vertices it moves most
   * move on average, and how many vertices it moves at all. */
  jawOpen: { down: number; back: number; moved: number };
}

export async function loadRig(bytes: Uint8Array): Promise<RigCheck> {
  // The loader reads `self.URL` for embedded images; Node's global object is not `self`.
  (globalThis as { self?: unknown }).self ??= globalThis;
  const quiet = console.error;
  console.error = () => {}; // "Couldn't load texture": expected without an image decoder.
  try {
    const buffer = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
    const gltf = await new GLTFLoader().parseAsync(buffer, '');
    let mesh: Mesh | undefined;
    gltf.scene.traverse((o) => {
      if ((o as Mesh).isMesh && !mesh) mesh = o as Mesh;
    });
    if (!mesh?.morphTargetDictionary || !mesh.morphTargetInfluences) throw new Error('no morph targets in the GLB');
    const dictionary = mesh.morphTargetDictionary;
    const targets = Object.keys(dictionary).sort((a, b) => dictionary[a] - dictionary[b]);
    const jaw = dictionary.jawOpen;
    if (jaw === undefined) throw new Error('no jawOpen target');
    // glTF morph targets are displacements (three sets morphTargetsRelative).
    const delta = mesh.geometry.morphAttributes.position[jaw];
    const moves: Array<[number, number, number]> = [];
    for (let i = 0; i < delta.count; i++) moves.push([Math.hypot(delta.getX(i), delta.getY(i), delta.getZ(i)), delta.getY(i), delta.getZ(i)]);
    moves.sort((a, b) => b[0] - a[0]);
    const top = moves.slice(0, 20);
    return {
      targets,
      influences: [...mesh.morphTargetInfluences],
      jawOpen: {
        down: -top.reduce((s, m) => s + m[1], 0) / top.length,
        back: -top.reduce((s, m) => s + m[2], 0) / top.length,
        moved: moves.filter((m) => m[0] > 1e-5).length,
      },
    };
  } finally {
    console.error = quiet;
  }
}
