/**
 * `fedbiomed-ts demo --protocol v6`: what the v6 network cannot honour is refused before any work (the full demo
 * over v6 gives the same table, metrics and ONNX bytes as over v4.5: measured by hand, too slow for the suite).
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { PassThrough } from 'stream';
import { runDemo } from './demo';

test('--dp with --protocol v6 is refused before anything is written', async () => {
  const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'fbts-demo-v6-')), 'demo-output');
  try {
    await expect(runDemo({ outDir: out, quick: true, protocol: 'v6', out: new PassThrough(),
      dp: { type: 'local', sigma: 1, clip: 1, sweep: [] } })).rejects.toThrow(/--dp is not available with --protocol v6/);
    expect(fs.existsSync(out)).toBe(false);
  } finally {
    fs.rmSync(path.dirname(out), { recursive: true, force: true });
  }
});
