/**
 * `npm run gen:messages`: rewrites src/protocol/messages.generated.ts from schemas/messages/** (see
 * src/protocol/codegen.ts). `--check` only compares and exits 1 when the file is stale.
 */
import * as fs from 'fs';
import * as path from 'path';
import { GENERATED_MESSAGES_PATH, MESSAGE_SCHEMA_DIR, generateMessagesModule } from '../src/protocol/codegen';

const root = path.resolve(__dirname, '..');
const target = path.join(root, GENERATED_MESSAGES_PATH);
const text = generateMessagesModule(path.join(root, MESSAGE_SCHEMA_DIR));
const current = fs.existsSync(target) ? fs.readFileSync(target, 'utf8') : '';
if (process.argv.includes('--check')) {
  if (current !== text) {
    console.error(`${GENERATED_MESSAGES_PATH} is stale: run npm run gen:messages`);
    process.exit(1);
  }
} else if (current !== text) {
  fs.writeFileSync(target, text);
  console.log(`wrote ${GENERATED_MESSAGES_PATH}`);
}
