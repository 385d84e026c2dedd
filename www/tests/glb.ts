// A minimal GLB reader for the tests: the JSON chunk and the vertex count of every primitive.
export interface GlbSummary {
  json: { asset: { version: string }; meshes: Array<{ primitives: Array<{ attributes: Record<string, number>; indices?: number }> }>; accessors: Array<{ count: number }>; images?: unknown[] };
  vertexCount: number;
  triangleCount: number;
  binLength: number;
}

export function parseGlb(bytes: Uint8Array): GlbSummary {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint32(0, true) !== 0x46546c67) throw new Error('not a GLB: bad magic');
  if (view.getUint32(4, true) !== 2) throw new Error('GLB version is not 2');
  if (view.getUint32(8, true) !== bytes.byteLength) throw new Error(`GLB length ${view.getUint32(8, true)} != file size ${bytes.byteLength}`);
  const jsonLength = view.getUint32(12, true);
  if (view.getUint32(16, true) !== 0x4e4f534a) throw new Error('first GLB chunk is not JSON');
  const json = JSON.parse(new TextDecoder().decode(bytes.subarray(20, 20 + jsonLength)));
  const binAt = 20 + jsonLength;
  const binLength = view.getUint32(binAt, true);
  if (view.getUint32(binAt + 4, true) !== 0x004e4942) throw new Error('second GLB chunk is not BIN');
  let vertexCount = 0;
  let triangleCount = 0;
  for (const mesh of json.meshes) {
    for (const primitive of mesh.primitives) {
      vertexCount += json.accessors[primitive.attributes.POSITION].count;
      if (primitive.indices !== undefined) triangleCount += json.accessors[primitive.indices].count / 3;
    }
  }
  return { json, vertexCount, triangleCount, binLength };
}
