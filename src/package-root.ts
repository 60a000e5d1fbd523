/**
 * Where this copy of the package lies: the folder of the package.json named `fedbiomed-ts` above the running module
 * (dist/<side>/… in an installed package, <side>/… in a clone). For what must name the package's own files at run
 * time: its entry modules (a user's plan importing `fedbiomed-ts`), its command (a systemd unit).
 */
import * as fs from 'fs';
import * as path from 'path';

export const PACKAGE_NAME = 'fedbiomed-ts';

interface PackageJson {
  name?: string;
  bin?: Record<string, string>;
  exports?: Record<string, string | { default: string }>;
}

function ownPackage(from = __dirname): { root: string; pkg: PackageJson } {
  for (let dir = from; ; dir = path.dirname(dir)) {
    const file = path.join(dir, 'package.json');
    if (fs.existsSync(file)) {
      const pkg = JSON.parse(fs.readFileSync(file, 'utf8')) as PackageJson;
      if (pkg.name === PACKAGE_NAME) return { root: dir, pkg };
    }
    if (path.dirname(dir) === dir) throw new Error(`${PACKAGE_NAME}: cannot find its own package.json above ${from}`);
  }
}

/** The `fedbiomed-ts` command's script, to run as `node <script> …`. */
export function ownCommand(): string {
  const { root, pkg } = ownPackage();
  return path.join(root, pkg.bin?.[PACKAGE_NAME] ?? 'bin/fedbiomed-ts.js');
}

/**
 * `fedbiomed-ts[/subpath]` -> this copy's entry module for it, from package.json's `exports`: the compiled one, or
 * in a clone running its sources the .ts source (`./dist/<path>.js` there is `<path>.ts`; src/cli/source-entries.js
 * is the same rule for the development tools, which run before any TypeScript can).
 */
export function entryModules(compiled = __filename.endsWith('.js')): Record<string, string> {
  const { root, pkg } = ownPackage();
  const entries: Record<string, string> = {};
  for (const [subpath, target] of Object.entries(pkg.exports ?? {})) {
    const file = typeof target === 'string' ? target : target.default;
    if (!file.startsWith('./dist/') || !file.endsWith('.js')) continue;
    const request = subpath === '.' ? PACKAGE_NAME : `${PACKAGE_NAME}/${subpath.slice(2)}`;
    entries[request] = compiled ? path.join(root, file) : path.join(root, `${file.slice('./dist/'.length, -'.js'.length)}.ts`);
  }
  return entries;
}
