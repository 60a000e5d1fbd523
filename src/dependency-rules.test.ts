/**
 * The architecture's arrows (docs/ARCHITECTURE.md) are enforced by dependency-cruiser (.dependency-cruiser.js).
 * This test proves the rules bite — a tiny fixture with one deliberate violation per rule is reported — and that
 * the repository itself has none. It runs the real dependency-cruiser CLI, as `npm run lint:deps` does.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

const ROOT = path.join(__dirname, '..');
const CONFIG = path.join(ROOT, '.dependency-cruiser.js');
const DEPCRUISE = path.join(ROOT, 'node_modules', 'dependency-cruiser', 'bin', 'dependency-cruise.mjs');

interface Violation {
  rule: { name: string };
  from: string;
  to: string;
}

function cruise(cwd: string, folders: string[]): Violation[] {
  const run = spawnSync(process.execPath, [DEPCRUISE, ...folders, '--config', CONFIG, '--output-type', 'json'], {
    cwd,
    encoding: 'utf8',
    maxBuffer: 256 * 1024 * 1024,
  });
  if (!run.stdout) throw new Error(`dependency-cruiser produced no report: ${run.stderr}`);
  return (JSON.parse(run.stdout) as { summary: { violations: Violation[] } }).summary.violations;
}

/** Writes `files` (path → source) under a fresh temporary folder. */
function fixture(files: Record<string, string>): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fedbiomed-deps-'));
  for (const [file, source] of Object.entries(files)) {
    fs.mkdirSync(path.join(dir, path.dirname(file)), { recursive: true });
    fs.writeFileSync(path.join(dir, file), source);
  }
  return dir;
}

describe('dependency rules', () => {
  it('report each deliberate violation in a fixture, and allow the composition roots and tests', () => {
    const dir = fixture({
      'tsconfig.json': JSON.stringify({
        compilerOptions: { baseUrl: '.', paths: { 'fedbiomed-ts': ['./src/index.ts'] } },
      }),
      'node-agent/agent.ts': "import { r } from '../researcher/run';\nexport const a = r;\n",
      'node-agent/e2e.test.ts': "import { r } from '../researcher/run';\nexport const t = r;\n",
      'researcher/run.ts': "import { c } from '../src/core';\nexport const r = c;\n",
      'src/core.ts': 'export const c = 1;\n',
      'src/leak.ts': "import { e } from '../examples/leaf';\nexport const l = e;\n",
      'examples/leaf.ts': 'export const e = 1;\n',
      'src/index.ts': "export * from '../researcher/run';\nexport * from '../node-agent/agent';\n",
      'src/cycle.ts': "import { back } from '../researcher/cycle';\nexport const there = 1;\nexport const b = back;\n",
      'researcher/cycle.ts': "import { there } from '../src/cycle';\nexport const back = there;\n",
      'examples/demo.ts': "import { c } from '../src/core';\nimport * as api from 'fedbiomed-ts';\nexport const e = [c, api];\n",
      // Inside the core: the wire layer reaching up to the transport, the engine reaching up to plans.
      'src/protocol/codec.ts': "import { send } from '../transport/send';\nimport { E } from '../errors';\nexport const p = [send, E];\n",
      'src/transport/send.ts': "import { p2 } from '../protocol/low';\nexport const send = p2;\n",
      'src/protocol/low.ts': 'export const p2 = 1;\n',
      'src/engine/train.ts': "import { plan } from '../plan/model';\nexport const t = plan;\n",
      'src/engine/train.test.ts': "import { plan } from '../plan/model';\nexport const tt = plan;\n",
      'src/plan/model.ts': 'export const plan = 1;\n',
      'src/errors.ts': "import { p2 } from './protocol/low';\nexport class E extends Error {}\nexport const x = p2;\n",
    });
    try {
      const found = cruise(dir, ['src', 'node-agent', 'researcher', 'examples'])
        .map((v) => `${v.rule.name}: ${v.from} → ${v.to}`)
        .sort();
      expect(found).toEqual(
        expect.arrayContaining([
          'node-agent-not-researcher: node-agent/agent.ts → researcher/run.ts',
          'core-not-sides: src/leak.ts → examples/leaf.ts',
          'examples-public-api-only: examples/demo.ts → src/core.ts',
          'examples-via-package-name: examples/demo.ts → src/core.ts',
          'core-protocol-arrows: src/protocol/codec.ts → src/transport/send.ts',
          'core-engine-arrows: src/engine/train.ts → src/plan/model.ts',
          'core-leaves: src/errors.ts → src/protocol/low.ts',
        ]),
      );
      // Allowed inside the core: an arrow down the layers, the error base, a test setting a case up.
      expect(found.filter((v) => /send\.ts → |codec\.ts → src\/errors|train\.test\.ts/.test(v))).toEqual([]);
      // A cycle is reported once, from one of its modules.
      expect(found.filter((v) => /^no-cycle-between-areas: (src|researcher)\/cycle\.ts → /.test(v))).toHaveLength(1);
      // Allowed: the package entry names the sides; a test may start both sides; examples use the package name.
      expect(found.filter((v) => /src\/index\.ts →|e2e\.test\.ts|→ src\/index\.ts/.test(v))).toEqual([]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('find no violation in the repository', () => {
    expect(cruise(ROOT, ['src', 'node-agent', 'researcher', 'examples', 'bench', 'tools'])).toEqual([]);
  });
});
