// The result's interactive 3D view (three.js): orbit, lights, wireframe and texture toggles, and
// the fitted head's expression driven by its 53 blendshapes.
import * as THREE from 'three';
import { OrbitControls } from 'three/addons/controls/OrbitControls.js';
import { GLTFLoader } from 'three/addons/loaders/GLTFLoader.js';
import type { FaceFit } from './lib/index.js';

/** The animatable head as the viewer drives it: the fitted identity with expression zeroed,
 * and each blendshape's displacement of every vertex (metres). */
interface Rig {
  names: string[];
  neutral: Float32Array;
  deltas: Float32Array[];
  /** The fitted expression (the GLB's default weights). */
  fitted: number[];
}

export class FaceViewer {
  private renderer: THREE.WebGLRenderer;
  private scene = new THREE.Scene();
  private camera = new THREE.PerspectiveCamera(30, 1, 0.01, 10);
  private controls: OrbitControls;
  private mesh: THREE.Mesh<THREE.BufferGeometry, THREE.MeshStandardMaterial> | null = null;
  private texture: THREE.Texture | null = null;
  private frame = 0;
  private resizeObserver: ResizeObserver;
  private rig: Rig | null = null;
  /** The fitted shape, to measure how far an expression moves the head from it. */
  private fittedPositions: Float32Array | null = null;

  constructor(private container: HTMLElement) {
    // preserveDrawingBuffer: the tests read the rendered pixels back to check a face is drawn.
    this.renderer = new THREE.WebGLRenderer({ antialias: true, preserveDrawingBuffer: true });
    this.renderer.setPixelRatio(Math.min(devicePixelRatio, 2));
    this.renderer.outputColorSpace = THREE.SRGBColorSpace;
    container.appendChild(this.renderer.domElement);
    this.scene.background = new THREE.Color(0x20232a);
    this.scene.add(new THREE.HemisphereLight(0xffffff, 0x404050, 1.2));
    const key = new THREE.DirectionalLight(0xffffff, 1.6);
    key.position.set(0.4, 0.5, 1);
    this.camera.add(key);
    this.scene.add(this.camera);
    this.controls = new OrbitControls(this.camera, this.renderer.domElement);
    this.controls.enableDamping = true;
    this.controls.addEventListener('change', () => this.requestRender());
    this.resizeObserver = new ResizeObserver(() => this.resize());
    this.resizeObserver.observe(container);
    this.resize();
  }

  private resize() {
    const width = Math.max(this.container.clientWidth, 1);
    const height = Math.max(this.container.clientHeight, 1);
    this.renderer.setSize(width, height, false);
    this.camera.aspect = width / height;
    this.camera.updateProjectionMatrix();
    this.requestRender();
  }

  private requestRender() {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      // Damping keeps changing the view for a few frames after a drag.
      if (this.controls.update()) this.requestRender();
      this.renderer.render(this.scene, this.camera);
    });
  }

  /** Renders now (not at the next frame) and counts the pixels the face covers. */
  coveredPixels(): number {
    this.controls.update();
    this.renderer.render(this.scene, this.camera);
    const gl = this.renderer.getContext();
    const width = gl.drawingBufferWidth;
    const height = gl.drawingBufferHeight;
    const pixels = new Uint8Array(width * height * 4);
    gl.readPixels(0, 0, width, height, gl.RGBA, gl.UNSIGNED_BYTE, pixels);
    const background = new THREE.Color(0x20232a).convertLinearToSRGB();
    const bg = [background.r, background.g, background.b].map((v) => Math.round(v * 255));
    let covered = 0;
    for (let i = 0; i < pixels.length; i += 4) {
      if (Math.abs(pixels[i] - bg[0]) + Math.abs(pixels[i + 1] - bg[1]) + Math.abs(pixels[i + 2] - bg[2]) > 24) covered++;
    }
    return covered;
  }

  async show(fit: FaceFit) {
    this.clear();
    const geometry = new THREE.BufferGeometry();
    geometry.setAttribute('position', new THREE.BufferAttribute(fit.mesh.positions, 3));
    geometry.setAttribute('normal', new THREE.BufferAttribute(fit.mesh.normals, 3));
    geometry.setAttribute('uv', new THREE.BufferAttribute(fit.mesh.uvs, 2));
    geometry.setIndex(new THREE.BufferAttribute(fit.mesh.indices, 1));
    geometry.computeBoundingSphere();
    const bitmap = await fit.textureBitmap();
    if (bitmap) {
      this.texture = new THREE.Texture(bitmap);
      // glTF's UV convention (v down from the top): no flip.
      this.texture.flipY = false;
      this.texture.colorSpace = THREE.SRGBColorSpace;
      this.texture.needsUpdate = true;
    }
    const material = new THREE.MeshStandardMaterial({ map: this.texture, roughness: 0.65, metalness: 0, side: THREE.DoubleSide, color: this.texture ? 0xffffff : 0xd8b8a0 });
    this.mesh = new THREE.Mesh(geometry, material);
    this.scene.add(this.mesh);
    this.resetView();
  }

  /** Loads the animatable GLB (three.js's own loader, as any app would) and switches the view
   * to its mesh, with the fitted expression applied. Returns the blendshape names and the
   * fitted weights, in the GLB's order. */
  async loadRig(glb: Blob): Promise<{ names: string[]; fitted: number[] }> {
    const gltf = await new GLTFLoader().parseAsync(await glb.arrayBuffer(), '');
    let source: THREE.Mesh | undefined;
    gltf.scene.traverse((o) => {
      if ((o as THREE.Mesh).isMesh && !source) source = o as THREE.Mesh;
    });
    const dictionary = source?.morphTargetDictionary;
    const morphs = source?.geometry.morphAttributes.position;
    if (!source || !dictionary || !morphs || !this.mesh) throw new Error('the animatable GLB has no morph targets');
    const names = Object.keys(dictionary).sort((a, b) => dictionary[a] - dictionary[b]);
    const neutral = (source.geometry.getAttribute('position') as THREE.BufferAttribute).array as Float32Array;
    if (neutral.length !== this.mesh.geometry.getAttribute('position').array.length) throw new Error('the animatable GLB is not this mesh');
    const fitted = names.map((_, i) => source!.morphTargetInfluences?.[i] ?? 0);
    // Morphs are applied here rather than by three's shader, so the normals follow them.
    // Targets may be 16-bit normalised integers (KHR_mesh_quantization): read through the
    // attribute, which scales them back to metres.
    const deltas = morphs.map((m) => {
      const out = new Float32Array(m.count * 3);
      for (let i = 0; i < m.count; i++) {
        out[3 * i] = m.getX(i);
        out[3 * i + 1] = m.getY(i);
        out[3 * i + 2] = m.getZ(i);
      }
      return out;
    });
    this.rig = { names, neutral: neutral.slice(), deltas, fitted };
    this.fittedPositions = (this.mesh.geometry.getAttribute('position').array as Float32Array).slice();
    gltf.scene.traverse((o) => {
      const mesh = o as THREE.Mesh;
      if (mesh.isMesh) {
        mesh.geometry.dispose();
        (Array.isArray(mesh.material) ? mesh.material : [mesh.material]).forEach((m) => m.dispose());
      }
    });
    this.setExpression(fitted);
    return { names, fitted };
  }

  /** Puts the head in the expression `weights` (one per blendshape, the GLB's order). Returns
   * how far the vertex that moved most is from the fitted shape, in millimetres. */
  setExpression(weights: number[]): number {
    const { rig, mesh, fittedPositions } = this;
    if (!rig || !mesh || !fittedPositions) return 0;
    const position = mesh.geometry.getAttribute('position') as THREE.BufferAttribute;
    const out = position.array as Float32Array;
    out.set(rig.neutral);
    weights.forEach((w, t) => {
      if (w === 0) return;
      const delta = rig.deltas[t];
      for (let i = 0; i < out.length; i++) out[i] += w * delta[i];
    });
    position.needsUpdate = true;
    mesh.geometry.computeVertexNormals();
    let moved = 0;
    for (let i = 0; i < out.length; i += 3) {
      moved = Math.max(moved, Math.hypot(out[i] - fittedPositions[i], out[i + 1] - fittedPositions[i + 1], out[i + 2] - fittedPositions[i + 2]));
    }
    this.requestRender();
    return moved * 1000;
  }

  /** Turns the head to `angles` (pitch, yaw, roll, radians: R = Rz · Ry · Rx, camera space
   * looking down -z with y up, as the engine's pose). */
  setPose(angles: [number, number, number]) {
    this.mesh?.rotation.set(angles[0], angles[1], angles[2], 'ZYX');
    this.requestRender();
  }

  resetView() {
    const sphere = this.mesh?.geometry.boundingSphere;
    if (!sphere) return;
    const distance = sphere.radius / Math.sin(THREE.MathUtils.degToRad(this.camera.fov / 2)) * 0.85;
    this.controls.target.copy(sphere.center);
    this.camera.position.set(sphere.center.x, sphere.center.y, sphere.center.z + distance);
    this.camera.near = distance / 100;
    this.camera.far = distance * 10;
    this.camera.updateProjectionMatrix();
    this.requestRender();
  }

  setWireframe(on: boolean) {
    if (this.mesh) this.mesh.material.wireframe = on;
    this.requestRender();
  }

  setTextured(on: boolean) {
    if (!this.mesh) return;
    this.mesh.material.map = on ? this.texture : null;
    this.mesh.material.color.set(on && this.texture ? 0xffffff : 0xd8b8a0);
    this.mesh.material.needsUpdate = true;
    this.requestRender();
  }

  private clear() {
    this.rig = null;
    this.fittedPositions = null;
    if (!this.mesh) return;
    this.scene.remove(this.mesh);
    this.mesh.geometry.dispose();
    this.mesh.material.dispose();
    this.texture?.dispose();
    this.mesh = null;
    this.texture = null;
  }
}
