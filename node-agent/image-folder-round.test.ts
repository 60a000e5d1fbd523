/**
 * End to end: an image folder (PNG and JPEG pictures written by Pillow, torchvision's ImageFolder layout) registered
 * on a TS node as an `images` dataset, then one FedAvg round of an image-folder plan from the researcher over the
 * embedded network (real MQTT broker and HTTP repository). The node trains on the pictures and uploads weights that
 * moved from the initial ones; the sample count is the training split of the folder's pictures.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { startEmbeddedNetwork, EmbeddedNetwork } from '../src/transport/embedded';
import { definePlan } from '../src/plan/define';
import { initialWeights } from '../src/plan/init';
import { runPython } from '../src/data/python-oracle.test-helper';
import { defaultConfig, writeConfig } from './config';
import { openNodeStores } from './stores';
import { NodeAgent } from './agent';
import { Experiment } from '../researcher/experiment';

jest.setTimeout(120_000);

const PICTURES = String.raw`
import os, sys, numpy as np
from PIL import Image
root = sys.argv[1]
rng = np.random.default_rng(11)
for c, (name, level) in enumerate([('normal', 60), ('pneumonia', 190)]):
    os.makedirs(os.path.join(root, name), exist_ok=True)
    for i in range(8):
        grey = np.clip(rng.normal(level, 25, (20, 18)), 0, 255).astype(np.uint8)
        picture = Image.fromarray(grey) if i % 2 else Image.fromarray(np.stack([grey, grey, grey], -1))
        picture.save(os.path.join(root, name, 'p%02d.%s' % (i, 'jpg' if i % 3 == 0 else 'png')), quality=90)
`;

describe('an images dataset on a TS node trains an image-folder plan', () => {
  let network: EmbeddedNetwork;
  let agent: NodeAgent;
  let dir: string;

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fbts-images-round-'));
    const root = path.join(dir, 'xray');
    runPython(PICTURES, [root], ['PIL', 'numpy']);
    network = await startEmbeddedNetwork({ mqttPort: 0, httpPort: 0, dataDir: path.join(dir, 'repo') });
    const nodeDir = path.join(dir, 'node');
    writeConfig(nodeDir, defaultConfig({ nodeId: 'node_images', broker: network.mqttUrl, uploadsUrl: network.uploadsUrl, approval: false }));
    const entry = await openNodeStores(nodeDir, {}).datasets.add({ name: 'chest x-rays', dataType: 'images', tags: ['xray'], path: root });
    expect(entry.shape).toEqual([16, 3, 20, 18]); // torchvision ImageFolder: [pictures, 3, H, W]
    agent = await NodeAgent.start({ dir: nodeDir, env: {}, localLog: () => undefined });
  });

  afterAll(async () => {
    await agent?.stop();
    await network?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('one round: the node trains on the pictures and its weights move', async () => {
    const plan = definePlan({
      name: 'XrayBands',
      inputs: { image: { modalities: ['L'], dims: 2, size: [16, 16], source: 'image_folder' } },
      target: { column: 'class' },
      preprocessing: [{ op: 'resize', size: [16, 16] }],
      model: { image: [{ type: 'conv2d', outChannels: 2, kernelSize: 3 }, { type: 'relu' }, { type: 'global_avg_pool' }], head: [{ type: 'dense', outFeatures: 2 }] },
      loss: { type: 'cross_entropy' },
      optimizer: { type: 'sgd', lr: 0.5 },
      metrics: ['accuracy'],
    });
    const exp = new Experiment({
      tags: ['xray'],
      plan,
      trainingArgs: { loader_args: { batch_size: 4 }, num_updates: 6, test_ratio: 0.25, test_on_global_updates: true, test_metric: 'ACCURACY', random_seed: 7 },
      roundLimit: 1,
      discoveryTimeoutMs: 1500,
      roundTimeoutMs: 60_000,
      network: { brokerUrl: network.mqttUrl, uploadsUrl: network.uploadsUrl },
    });
    const initial = Object.entries(initialWeights(plan, 0)); // the experiment's round-0 weights (seed 0)
    const result = await exp.run();
    expect(exp.nodes).toEqual(['node_images']);
    const reply = [...exp.replies.get(0)!.values()][0];
    expect(reply.success).toBe(true);
    expect(reply.sample_size).toBe(16 - Math.floor(16 * 0.25));
    const trained = exp.roundWeights.get(0)!;
    let moved = 0;
    for (const [name, before] of initial) {
      const after = trained.get(name)!.data as Float32Array;
      for (let i = 0; i < before.data.length; i++) moved = Math.max(moved, Math.abs(after[i] - Number(before.data[i])));
    }
    expect(moved).toBeGreaterThan(1e-4);
    expect(result.summaries[0].nodes.map((n) => [n.status, typeof n.lastLoss])).toEqual([['ok', 'number']]);
  });
});
