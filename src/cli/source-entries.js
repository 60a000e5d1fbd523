// Development only (not shipped): in a clone, `fedbiomed-ts` and its subpaths are the source entry modules. The
// mapping is read from package.json's `exports` (one definition): `./dist/<path>.js` there is `<path>.ts` here.
// Used by dev-register.js (ts-node, the clone's bin) and jest.config.js; src/plan/module-loader.ts does the same
// for a user's plan at run time.
'use strict';
const path = require('path');

/** Map of request (`fedbiomed-ts`, `fedbiomed-ts/plan`, …) to the absolute path of its .ts source. */
function sourceEntryModules(root = path.join(__dirname, '..', '..')) {
  const pkg = require(path.join(root, 'package.json'));
  const entries = new Map();
  for (const [subpath, target] of Object.entries(pkg.exports)) {
    const file = typeof target === 'string' ? target : target.default;
    if (!file.startsWith('./dist/') || !file.endsWith('.js')) continue;
    const request = subpath === '.' ? pkg.name : `${pkg.name}/${subpath.slice(2)}`;
    entries.set(request, path.join(root, `${file.slice('./dist/'.length, -'.js'.length)}.ts`));
  }
  return entries;
}

module.exports = { sourceEntryModules };
