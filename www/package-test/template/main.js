// What the package's README shows, nothing more: create, fit, read the result.
import { Fitter } from 'ganfit';

const status = document.getElementById('status');
const out = document.getElementById('out');
const loads = [];
const fitter = await Fitter.create({ modelsUrl: '/models/', onLoadProgress: (p) => loads.push(p.stage) });
status.textContent = `ready on ${fitter.adapter.name} (${fitter.textureModel})`;
window.loadStages = [...new Set(loads)];

document.getElementById('photo').addEventListener('change', async (event) => {
  status.textContent = 'fitting';
  const progress = [];
  try {
    const fit = await fitter.fit([event.target.files[0]], {
      landmarkIterations: 10,
      iterations: 2,
      identityIterations: 1,
      resolution: 112,
      reportEvery: 1,
      onProgress: (p) => progress.push(`${p.stage} ${p.iteration}/${p.iterations}`),
    });
    const glb = new Uint8Array(await fit.toGLB().arrayBuffer());
    const zip = new Uint8Array(await (await fit.toOBJZip()).arrayBuffer());
    const obj = fit.toOBJ();
    window.summary = {
      vertexCount: fit.mesh.vertexCount,
      positions: fit.mesh.positions.length,
      triangles: fit.mesh.indices.length / 3,
      glbBytes: glb.length,
      glbMagic: String.fromCharCode(...glb.subarray(0, 4)),
      glbVersion: new DataView(glb.buffer).getUint32(4, true),
      zipMagic: String.fromCharCode(zip[0], zip[1]),
      objVertices: obj.obj.split('\n').filter((l) => l.startsWith('v ')).length,
      texturePng: fit.texture ? fit.texture.png.size : 0,
      textureModel: fit.textureModel,
      progressReports: progress.length,
      params: Object.keys(fit.params),
    };
    out.textContent = JSON.stringify(window.summary, null, 1);
    status.textContent = 'done';
  } catch (e) {
    status.textContent = `error ${e.name}: ${e.message}`;
  }
  fitter.dispose();
});
