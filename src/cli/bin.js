#!/usr/bin/env node
// Entry of the `fedbiomed-ts` command. Runs the compiled CLI when `npm run build` has produced it,
// otherwise the TypeScript sources through ts-node (transpile only), so a fresh clone works without a build.
'use strict';
const fs = require('fs');
const path = require('path');
const root = path.join(__dirname, '..', '..');
const compiled = path.join(root, 'dist', 'src', 'cli', 'main.js');
if (fs.existsSync(compiled)) {
  require(compiled).main(process.argv);
} else {
  require('ts-node').register({ transpileOnly: true, project: path.join(root, 'tsconfig.json') });
  require(path.join(root, 'src', 'cli', 'main.ts')).main(process.argv);
}
