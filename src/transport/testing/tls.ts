/** Test credentials made with openssl and mosquitto_passwd: a CA, a server certificate signed by it, a password file. */
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';

function tool(name: string): string {
  const found = [`/usr/bin/${name}`, `/usr/sbin/${name}`, `/usr/local/bin/${name}`].find((p) => fs.existsSync(p));
  if (!found) throw new Error(`${name} is required by this test and was not found: install it (apt-get install -y ${name === 'openssl' ? 'openssl' : 'mosquitto'})`);
  return found;
}

/** A CA, a server certificate for localhost/127.0.0.1 signed by it, and a mosquitto password file. */
export function makeCredentials(dir: string, users: Record<string, string> = { hospital: 's3cret' }): { ca: string; cert: string; key: string; passwords: string; otherCa: string } {
  const openssl = tool('openssl');
  const run = (args: string[]) => execFileSync(openssl, args, { cwd: dir, stdio: 'pipe' });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  run(['req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '1', '-subj', '/CN=fedbiomed-ts test CA']);
  run(['req', ...ec, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost']);
  fs.writeFileSync(path.join(dir, 'san.cnf'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\n');
  run(['x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.crt', '-days', '1', '-extfile', 'san.cnf']);
  run(['req', '-x509', ...ec, '-keyout', 'other.key', '-out', 'other.crt', '-days', '1', '-subj', '/CN=some other CA']);
  Object.entries(users).forEach(([user, password], i) =>
    execFileSync(tool('mosquitto_passwd'), ['-b', ...(i === 0 ? ['-c'] : []), 'passwords', user, password], { cwd: dir, stdio: 'pipe' }));
  // Mosquitto started as root drops to its own user: let it read these files.
  fs.chmodSync(dir, 0o755);
  for (const f of fs.readdirSync(dir)) fs.chmodSync(path.join(dir, f), 0o644);
  const p = (f: string) => path.join(dir, f);
  return { ca: p('ca.crt'), cert: p('server.crt'), key: p('server.key'), passwords: p('passwords'), otherCa: p('other.crt') };
}

