// Playwright's global setup: a short clip for Chromium's fake camera
// (`--use-file-for-fake-video-capture`), made from the test photo turned -15° and then +15°,
// 2 s each at 10 frames per second, looping: the camera of the tests that only need a running
// mirror (the live-mirror test scripts its own, to know which turn each frame shows). Y4M
// (raw 4:2:0) is what Chromium reads without a decoder; the clip lives in the system's
// temporary folder, never in the repository.
import { chromium } from '@playwright/test';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export const fakeCameraClip = join(tmpdir(), 'ganfit-fake-camera.y4m');
/** The turn of each half of the clip, degrees (counter-clockwise on screen). */
export const fakeCameraTurns = [-15, 15];
const width = 640;
const height = 480;
const framesPerTurn = 20;

export default async function writeFakeCamera() {
  const data = process.env.GANFIT_DATA ?? resolve(import.meta.dirname, '../../../shared/data');
  const photo = resolve(data, 'samples', process.env.GANFIT_TEST_PHOTO ?? 'breakingbad.jpg');
  if (!existsSync(photo)) throw new Error(`sample photo ${photo} is missing (set GANFIT_DATA)`);
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium', args: ['--no-sandbox'] });
  try {
    const page = await browser.newPage();
    const url = `data:image/${photo.endsWith('.png') ? 'png' : 'jpeg'};base64,${readFileSync(photo).toString('base64')}`;
    // Each turn as one I420 frame (BT.601 full range, the `C420jpeg` of the header).
    const frames = await page.evaluate(
      async ({ url, width, height, turns }) => {
        const image = new Image();
        image.src = url;
        await image.decode();
        const canvas = new OffscreenCanvas(width, height);
        const context = canvas.getContext('2d')!;
        return turns.map((degrees) => {
          context.fillStyle = '#808080';
          context.fillRect(0, 0, width, height);
          const scale = Math.min(width / image.naturalWidth, height / image.naturalHeight);
          context.save();
          context.translate(width / 2, height / 2);
          context.rotate((-degrees * Math.PI) / 180);
          context.drawImage(image, (-image.naturalWidth * scale) / 2, (-image.naturalHeight * scale) / 2, image.naturalWidth * scale, image.naturalHeight * scale);
          context.restore();
          const rgba = context.getImageData(0, 0, width, height).data;
          const out = new Uint8Array((width * height * 3) / 2);
          const u = width * height;
          const v = u + u / 4;
          for (let i = 0; i < width * height; i++) out[i] = Math.round(0.299 * rgba[4 * i] + 0.587 * rgba[4 * i + 1] + 0.114 * rgba[4 * i + 2]);
          for (let y = 0; y < height / 2; y++) {
            for (let x = 0; x < width / 2; x++) {
              let r = 0, g = 0, b = 0;
              for (const [dx, dy] of [[0, 0], [1, 0], [0, 1], [1, 1]]) {
                const p = 4 * ((2 * y + dy) * width + 2 * x + dx);
                r += rgba[p] / 4;
                g += rgba[p + 1] / 4;
                b += rgba[p + 2] / 4;
              }
              out[u + y * (width / 2) + x] = Math.round(128 - 0.168736 * r - 0.331264 * g + 0.5 * b);
              out[v + y * (width / 2) + x] = Math.round(128 + 0.5 * r - 0.418688 * g - 0.081312 * b);
            }
          }
          return Array.from(out);
        });
      },
      { url, width, height, turns: fakeCameraTurns },
    );
    const parts: Buffer[] = [Buffer.from(`YUV4MPEG2 W${width} H${height} F10:1 Ip A1:1 C420jpeg\n`)];
    for (const frame of frames) {
      const bytes = Buffer.from(frame);
      for (let i = 0; i < framesPerTurn; i++) parts.push(Buffer.from('FRAME\n'), bytes);
    }
    writeFileSync(fakeCameraClip, Buffer.concat(parts));
  } finally {
    await browser.close();
  }
}
