import { expect, test } from '@playwright/test';

test('the crate runs on WebGPU in the page and passes the renderer self-test', async ({ page }) => {
  const logs: string[] = [];
  page.on('console', (m) => logs.push(`${m.type()}: ${m.text()}`));
  await page.goto('/selftest.html');
  const status = page.locator('#selftest-status');
  await expect(status).toHaveText(/passed|failed/, { timeout: 540_000 });
  const adapter = await page.locator('#adapter').textContent();
  console.log(`WebGPU adapter in the page: ${adapter}`);
  console.log(`self-test: ${await page.locator('#selftest-details').textContent()}`);
  await page.screenshot({ path: 'test-results/gpu-selftest.png', fullPage: true });
  expect(adapter, 'a WebGPU adapter must be present: a missing adapter fails this tier').not.toMatch(/none|checking/);
  await expect(status, logs.join('\n')).toHaveText('passed');
});

test('a browser without WebGPU gets a clear message, not a blank page', async ({ page }) => {
  await page.addInitScript(() => {
    Object.defineProperty(Navigator.prototype, 'gpu', { get: () => undefined, configurable: true });
  });
  await page.goto('/selftest.html');
  await expect(page.locator('#error')).toContainText('WebGPU is not available');
  await expect(page.locator('#selftest-status')).toHaveText('not run');
});
