// The packed npm tarball installed into a scratch Vite app: the README's embedding example
// fits a real photo there on SwiftShader's WebGPU adapter.
import { expect, test } from '@playwright/test';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';

const data = process.env.GANFIT_DATA ?? resolve(import.meta.dirname, '../../../shared/data');
const facePhoto = resolve(data, 'samples', process.env.GANFIT_TEST_PHOTO ?? 'breakingbad.jpg');

test('the packed package fits a photo inside another app', async ({ page }) => {
  expect(existsSync(facePhoto), `sample photo ${facePhoto} (set GANFIT_DATA)`).toBe(true);
  const logs: string[] = [];
  page.on('console', (m) => logs.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => logs.push(`pageerror: ${e.message}`));
  await page.goto('/');
  await expect(page.locator('#status'), logs.join('\n')).toHaveText(/^ready on/, { timeout: 240_000 });
  const stages = await page.evaluate(() => (window as unknown as { loadStages: string[] }).loadStages);
  expect(stages).toEqual(expect.arrayContaining(['manifest', 'download', 'verify', 'init']));
  await page.locator('#photo').setInputFiles(facePhoto);
  await expect(page.locator('#status'), logs.join('\n')).toHaveText('done', { timeout: 540_000 });
  const summary = await page.evaluate(() => (window as unknown as { summary: Record<string, unknown> }).summary);
  console.log(`scratch app result: ${JSON.stringify(summary)}`);
  await page.screenshot({ path: 'test-results/package-scratch-app.png', fullPage: true });
  expect(summary.vertexCount as number).toBeGreaterThan(1000);
  expect(summary.positions).toBe(3 * (summary.vertexCount as number));
  expect(summary.glbMagic).toBe('glTF');
  expect(summary.glbVersion).toBe(2);
  expect(summary.zipMagic).toBe('PK');
  expect(summary.objVertices as number).toBeGreaterThan(1000);
  expect(summary.texturePng as number).toBeGreaterThan(1000);
  expect(summary.progressReports as number).toBeGreaterThanOrEqual(13);
});
