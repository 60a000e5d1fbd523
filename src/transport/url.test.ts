/**
 * The URL rule of Fed-BioMed v4.5 Python peers (validators 0.20 `url`). The table was produced by Python's
 * validators 0.20.0; when an interpreter with that package is on this machine, every case (and more) is also
 * checked live against it.
 */
import { execFileSync } from 'child_process';
import { assertValidRepositoryUrl, isValidRepositoryUrl, MAX_URL_CHARS, urlForMessage } from './url';

const ACCEPTED = [
  'http://foobar.dk',
  'ftp://foobar.dk',
  'http://10.0.0.1',
  'http://localhost:8844/upload/',
  'http://127.0.0.1:8844/media/uploads/2023/11/09/a_b-c.mpk',
  'https://user:pw@files.example.org:443/a?b=c#d',
  'http://[::1]:8080/x',
  'http://[fe80::1%eth0]/',
  'http://[2001:db8::192.0.2.33]/',
  'http://[::ffff:1.2.3.4]/',
  'http://223.255.255.255/',
  'http://xn--bcher-kva.com/',
  'http://bücher.de/pfad',
  'http://x.com/a%20b',
  'http://x.com/ä',
  'HTTP://EXAMPLE.COM/',
  'http://example.com:8080',
  'http://172.16.0.1/',
  'http://172.32.0.1/',
  'http://192.168.1.255/',
  'http://169.254.1.1/',
  'http://1.1.1.0/',
  'http://example.com/#frag',
  'http://u@example.com/',
];

const REJECTED = [
  'http://foobar.d',
  'http://a_b.example.com/', // no underscore in host names
  'http://node_params.example.org/x.mpk',
  'http://fedbiomed-dev-restful:8000/media/x.py', // single-label docker host name
  'http://restful/x',
  'http://0.1.2.3/',
  'http://224.0.0.1/',
  'http://256.1.1.1/',
  'http://1.2.3.4:1/', // one-digit port
  'http://1.2.3.4:123456/',
  'http://a.b.c.example.com/p a',
  'http://-a.com/',
  'http://a-.com/',
  'http://a--b.com/',
  'http://example.123/',
  'mailto:x@y.com',
  'http://example.com/?q=1 2',
  'file:///etc/passwd',
  'http://exa mple.com/',
  'http://example.com/a<b',
  'http://example.com/a"b',
  'http://example.co/a[b]',
  '',
];

/** An interpreter that has validators 0.20.x, or undefined. */
function pythonWithValidators(): string | undefined {
  for (const python of ['python3', '/usr/bin/python3']) {
    try {
      const version = execFileSync(python, ['-c', 'import validators; print(validators.__version__)'], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore'],
      }).trim();
      if (version.startsWith('0.20.')) return python;
    } catch {
      // not this one
    }
  }
  return undefined;
}

describe('isValidRepositoryUrl (validators.url of Fed-BioMed v4.5)', () => {
  test.each(ACCEPTED)('accepts %s', (url) => expect(isValidRepositoryUrl(url)).toBe(true));
  test.each(REJECTED)('rejects %s', (url) => expect(isValidRepositoryUrl(url)).toBe(false));

  test('agrees with Python validators 0.20 on every case, when an interpreter with it is available', () => {
    const python = pythonWithValidators();
    if (!python) {
      // The table above is the check; say clearly that the live comparison did not run.
      console.warn('no Python interpreter with validators 0.20.x found (tried python3, /usr/bin/python3): live comparison not run');
      expect(ACCEPTED.length + REJECTED.length).toBeGreaterThan(40);
      return;
    }
    const extra = [
      'http://node_params.example.org/media/uploads/2026/11/22/node_params_4cb80715-b55b-4038-a37a-7ed730549c93.mpk',
      'http://127.0.0.1:8844/media/uploads/2026/11/22/my_model_34e89161-6787-473a-97ae-a2978bd594c9.py',
      'http://10.220.0.3:8000/upload/',
      'https://[2001:db8:85a3::8a2e:370:7334]:8443/media/a.mpk',
      'http://example.com/~user/$x&y=\'z\'(1)*+,;=:@',
      'http://example.com:65535/',
      'http://example.com:0/',
      'http://a.b/',
      'http://xn--80ak6aa92e.com/',
      'http://192.168.0.256/',
      'http://10.0.0/',
      'https://localhost/',
      'http://LOCALHOST:8844/upload/',
      'http://user:p@ss@example.com/',
    ];
    const urls = [...ACCEPTED, ...REJECTED, ...extra];
    const script = 'import sys, json, validators\nprint(json.dumps([bool(validators.url(u)) for u in json.load(sys.stdin)]))';
    const python_answers = JSON.parse(execFileSync(python, ['-c', script], { input: JSON.stringify(urls), encoding: 'utf8' })) as boolean[];
    const disagreements = urls.filter((url, i) => isValidRepositoryUrl(url) !== python_answers[i]);
    expect(disagreements).toEqual([]);
  });

  test('assertValidRepositoryUrl names the URL and what would be accepted', () => {
    expect(() => assertValidRepositoryUrl('http://restful:8000/media/a.py', 'training_plan_url')).toThrow(
      /training_plan_url "http:\/\/restful:8000\/media\/a.py" would be rejected by Fed-BioMed v4.5 peers.*localhost, an IP address/,
    );
    expect(() => assertValidRepositoryUrl('http://127.0.0.1:8844/media/a.py')).not.toThrow();
  });

  test('checks long hostile URLs in bounded time (250 000 characters took 114 s before the caps)', () => {
    const hostile = [
      `http://${'a'.repeat(250_000)}.`,
      `http://${'a-'.repeat(125_000)}!`,
      `http://example.com/${'a'.repeat(250_000)}`,
      `http://${'a'.repeat(600)}.com/x`,
    ];
    for (const url of hostile) {
      const started = process.hrtime.bigint();
      expect(isValidRepositoryUrl(url)).toBe(false);
      expect(Number(process.hrtime.bigint() - started) / 1e6).toBeLessThan(50);
    }
    expect(isValidRepositoryUrl(`http://example.com/${'a'.repeat(MAX_URL_CHARS - 30)}`)).toBe(true);
  });

  test('urlForMessage removes credentials and cuts long URLs', () => {
    expect(urlForMessage('mqtts://fbuser:S3cret-pw@broker.example.org:8883')).toBe('mqtts://***@broker.example.org:8883');
    expect(urlForMessage('http://u:p@h.example.org/media/x?y=1')).toBe('http://***@h.example.org/media/x?y=1');
    expect(urlForMessage('http://127.0.0.1:8844/media/a.py')).toBe('http://127.0.0.1:8844/media/a.py');
    const long = urlForMessage(`http://example.com/${'a'.repeat(4_000_000)}`);
    expect(long.length).toBeLessThan(260);
    expect(long).toMatch(/… \(4000019 characters\)$/);
  });
});
