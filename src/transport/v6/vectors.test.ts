/**
 * The recorded v6.3.3 traffic (testing/vectors, see its README) through our codec: every message the real
 * researcher sent, and every reply of the real v6.3.3 node our researcher drove, decodes, passes the strict
 * protocol-7 checks and encodes back to the very same bytes (so what we send is byte-for-byte what Python's
 * Serializer would send for the same values); our own recorded messages too.
 */
import * as fs from 'fs';
import * as path from 'path';
import { decodeV6Message, encodeV6Message } from './messages';

const VECTORS = path.join(__dirname, 'testing', 'vectors');
const files = ['node_a', 'node_b', 'python_node_driven_by_ts'].flatMap((node) => fs.readdirSync(path.join(VECTORS, node))
  .filter((f) => f.endsWith('.mpk')).map((f) => path.join(node, f)));

test('the recordings hold both directions', () => {
  expect(files.filter((f) => f.includes('-task-')).length).toBe(24);
  expect(files.filter((f) => f.includes('-reply-')).length).toBe(24);
});

test.each(files)('%s decodes, validates and re-encodes to the same bytes', (file) => {
  const bytes = fs.readFileSync(path.join(VECTORS, file));
  const message = decodeV6Message(bytes);
  expect(file).toContain(`-${message.className}.mpk`);
  expect(Buffer.from(encodeV6Message(message)).equals(bytes)).toBe(true);
});
