#!/usr/bin/env node
// Entry of the `fedbiomed-ts` command.
// - Installed package (no TypeScript sources shipped): runs the compiled CLI in dist/.
// - A clone of the repository (src/cli/main.ts present): runs the sources through ts-node, a dev dependency, so a
//   stale dist/ never hides an edit; FEDBIOMED_TS_USE_DIST=1 runs the build instead.
'use strict';
const fs = require('fs');
const path = require('path');

const root = path.join(__dirname, '..');
const source = path.join(root, 'src', 'cli', 'main.ts');
const compiled = path.join(root, 'dist', 'src', 'cli', 'main.js');
const useSources = fs.existsSync(source) && process.env.FEDBIOMED_TS_USE_DIST !== '1';

if (useSources) {
  require(path.join(root, 'src', 'cli', 'dev-register.js'));
  require(source).main(process.argv);
} else if (fs.existsSync(compiled)) {
  require(compiled).main(process.argv);
} else {
  process.stderr.write(`fedbiomed-ts: ${compiled} is missing: this copy of the package was not built (npm run build)\n`);
  process.exitCode = 1;
}
