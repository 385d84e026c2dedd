// Validates one .glb/.gltf file with the Khronos glTF validator; prints the report's summary
// and the messages, and exits 1 when it has errors (or warnings, with --strict).
import { readFile } from "node:fs/promises";
import { validateBytes } from "gltf-validator";

const args = process.argv.slice(2);
const strict = args.includes("--strict");
const file = args.find((a) => !a.startsWith("--"));
if (!file) {
  console.error("usage: node validate.mjs [--strict] FILE.glb");
  process.exit(2);
}
const bytes = new Uint8Array(await readFile(file));
const report = await validateBytes(bytes, { maxIssues: 100 });
const { numErrors, numWarnings, numInfos, numHints, messages } = report.issues;
console.log(`${file}: ${numErrors} errors, ${numWarnings} warnings, ${numInfos} infos, ${numHints} hints`);
for (const m of messages) {
  console.log(`  [${["error", "warning", "info", "hint"][m.severity]}] ${m.code} ${m.pointer ?? ""}: ${m.message}`);
}
process.exit(numErrors > 0 || (strict && numWarnings > 0) ? 1 : 0);
