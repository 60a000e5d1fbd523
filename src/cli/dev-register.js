// Development only (not shipped): runs the TypeScript sources of a clone as the installed package would run dist/.
// 1. `.ts` files load through ts-node (transpile only; `npm test` type-checks once with tsc).
// 2. `fedbiomed-ts` and its subpaths resolve to the source entry modules (source-entries.js), so the repository's
//    own examples import the public API by its package name.
// Used by bin/fedbiomed-ts.js in a clone and by `npx ts-node …` (tsconfig.json's "ts-node".require).
'use strict';
const Module = require('module');
const path = require('path');

const { sourceEntryModules } = require('./source-entries');

const root = path.join(__dirname, '..', '..');

if (!require.extensions['.ts']) {
  require('ts-node').register({ transpileOnly: true, project: path.join(root, 'tsconfig.json') });
}

const sourceEntries = sourceEntryModules(root);

const resolve = Module._resolveFilename;
Module._resolveFilename = function resolveFromSources(request, ...rest) {
  const entry = sourceEntries.get(request);
  return entry ? entry : resolve.call(this, request, ...rest);
};
