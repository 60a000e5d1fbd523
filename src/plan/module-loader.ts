/**
 * Loads a user's plan module (`plan.ts`, `.mts`, `.js`, …) at run time, from the installed package as from a clone.
 *
 * The loader is jiti (unjs/jiti), chosen over tsx and ts-node because it is made for exactly this job, loading a
 * user's TypeScript configuration-like module from a library at run time (Nuxt, Tailwind, ESLint load their config
 * files with it): a synchronous require-like call (so loading a plan stays a plain function), no global hook left
 * on the process, no native binary (tsx needs esbuild's per-platform executable, a problem on locked-down hospital
 * machines) and no dependency of its own. It strips types only; `npm run build`/tsc is the place for type errors.
 *
 * `fedbiomed-ts` imports in the plan resolve from the plan's own project (the user's installed copy); only when that
 * project has none (a plan file next to nothing, run with a global `npx fedbiomed-ts`) do they resolve to the copy
 * that is running.
 */
import { createRequire } from 'module';
import { entryModules, PACKAGE_NAME } from '../package-root';

function resolvableFrom(file: string, request: string): boolean {
  try {
    createRequire(file).resolve(request);
    return true;
  } catch {
    return false;
  }
}

/** The first line of a loader error, without jiti's or Node's framing (the caller names the file). */
export function loadErrorCause(err: unknown, file: string): string {
  const message = String((err as { message?: unknown })?.message ?? err);
  const first = (message.split('\n').find((line) => line.trim() !== '') ?? message).replace(/^\[jiti\]\s*/, '').trim();
  // A syntax error carries its place on a later line as `<file>:<line>:<column>`: keep it on the one line.
  const place = message.split(file).slice(1).map((rest) => /^:(\d+):(\d+)/.exec(rest)).find(Boolean);
  return place ? `${first} (line ${place[1]}, column ${Number(place[2]) + 1})` : first;
}

/** The exports of the module in `file` (absolute path), TypeScript or JavaScript, CommonJS or ESM syntax. */
export function importPlanModule(file: string): Record<string, unknown> {
  // Loaded on demand: plain JSON plans and the rest of the CLI never pay for it.
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const { createJiti } = require('jiti') as typeof import('jiti');
  // Running from a clone's sources (tests, ts-node), `fedbiomed-ts` means those sources: the clone's dist/ may be
  // stale or absent.
  const fromSources = !__filename.endsWith('.js');
  const alias = resolvableFrom(file, PACKAGE_NAME) && !fromSources ? {} : entryModules();
  const jiti = createJiti(file, {
    alias,
    // A plan is small and may be edited between two loads in one process: no cache on disk or in memory.
    fsCache: false,
    moduleCache: false,
    interopDefault: false,
  });
  return jiti(file) as Record<string, unknown>;
}
