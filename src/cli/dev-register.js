// Development only (not shipped): runs the TypeScript sources of a clone as the installed package would run dist/.
// 1. `.ts` files load through ts-node (transpile only; `npm test` type-checks once with tsc).
// 2. `fedbiomed-ts` and its subpaths resolve to the source entry modules, so the repository's own examples import
//    the public API by its package name. The mapping is read from package.json's `exports` (one definition):
//    `./dist/<path>.js` there is `<path>.ts` here.
// Used by bin/fedbiomed-ts.js in a clone and by `npx ts-node …` (tsconfig.json's "ts-node".require).
'use strict';
const Module = require('module');
const path = require('path');

const root = path.join(__dirname, '..', '..');
const pkg = require(path.join(root, 'package.json'));

if (!require.extensions['.ts']) {
  require('ts-node').register({ transpileOnly: true, project: path.join(root, 'tsconfig.json') });
}

const sourceEntries = new Map();
for (const [subpath, target] of Object.entries(pkg.exports)) {
  const file = typeof target === 'string' ? target : target.default;
  if (!file.startsWith('./dist/') || !file.endsWith('.js')) continue;
  const request = subpath === '.' ? pkg.name : `${pkg.name}/${subpath.slice(2)}`;
  sourceEntries.set(request, path.join(root, file.slice('./dist/'.length, -'.js'.length) + '.ts'));
}

const resolve = Module._resolveFilename;
Module._resolveFilename = function resolveFromSources(request, ...rest) {
  const entry = sourceEntries.get(request);
  return entry ? entry : resolve.call(this, request, ...rest);
};
