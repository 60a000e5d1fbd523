/**
 * Which URLs Python Fed-BioMed v4.5 peers accept. A v4.5 node asserts `validators.url(training_plan_url)` and the
 * v4.5 researcher asserts it on the URLs of its own uploads (validators 0.20.0, as checked against the package itself in url.test.ts). This reproduces that rule so our
 * side can refuse, before sending, a URL a Python peer would reject:
 *   scheme http / https / ftp; optional `user[:password]@`; host = `localhost`, an IPv4 address (private
 *   ranges included; 0.x and >= 224.x excluded), a bracketed IPv6 address, or a DNS name with at least one dot,
 *   no underscore, and an alphabetic top-level label of 2+ characters (so single-label docker names like
 *   `restful` fail);
 *   optional port of 2 to 5 digits; path made of letters, digits and -._~%!$&'()*+,;=:@/ ; any query and fragment
 *   without whitespace. Case-insensitive.
 * Deliberate differences: digits are ASCII only (Python's \d also takes other Unicode digits) and a trailing
 * newline is refused (Python's `$` lets one through): both are URLs no peer could fetch anyway.
 */

const IP_MIDDLE_OCTET = String.raw`(?:\.(?:1?\d{1,2}|2[0-4]\d|25[0-5]))`;
const IP_LAST_OCTET = String.raw`(?:\.(?:0|[1-9]\d?|1\d\d|2[0-4]\d|25[0-5]))`;
const LETTERS = String.raw`a-z\u{a1}-\u{ffff}\u{10000}-\u{10ffff}`;
const IPV4_PART = String.raw`(?:25[0-5]|(?:2[0-4]|1?[0-9])?[0-9])`;
const H = '[0-9a-f]{1,4}';

const IPV6 = [
  `(?:${H}:){7}${H}`,
  `(?:${H}:){1,7}:`,
  `(?:${H}:){1,6}:${H}`,
  `(?:${H}:){1,5}(?::${H}){1,2}`,
  `(?:${H}:){1,4}(?::${H}){1,3}`,
  `(?:${H}:){1,3}(?::${H}){1,4}`,
  `(?:${H}:){1,2}(?::${H}){1,5}`,
  `${H}:(?:(?::${H}){1,6})`,
  `:(?:(?::${H}){1,7}|:)`,
  `fe80:(?::[0-9a-f]{0,4}){0,4}%[0-9a-z]+`,
  `::(?:ffff(?::0{1,4})?:)?(?:${IPV4_PART}\\.){3}${IPV4_PART}`,
  `(?:${H}:){1,4}:(?:${IPV4_PART}\\.){3}${IPV4_PART}`,
].join('|');

const HOST = [
  // private and local IPv4 networks
  `(?:(?:10|127)${IP_MIDDLE_OCTET}{2}${IP_LAST_OCTET})`,
  `(?:(?:169\\.254|192\\.168)${IP_MIDDLE_OCTET}${IP_LAST_OCTET})`,
  `(?:172\\.(?:1[6-9]|2\\d|3[0-1])${IP_MIDDLE_OCTET}${IP_LAST_OCTET})`,
  'localhost',
  // other IPv4 addresses, 1.x to 223.x
  `(?:(?:[1-9]\\d?|1\\d\\d|2[01]\\d|22[0-3])${IP_MIDDLE_OCTET}{2}${IP_LAST_OCTET})`,
  `\\[(?:${IPV6})\\]`,
  // DNS name: labels (no underscore), then an alphabetic (or punycode) top-level label
  `(?:(?:(?:xn--[-]{0,2})|[${LETTERS}0-9]-?)*[${LETTERS}0-9]+)` +
    `(?:\\.(?:(?:xn--[-]{0,2})|[${LETTERS}0-9]-?)*[${LETTERS}0-9]+)*` +
    `(?:\\.(?:(?:xn--[-]{0,2}[${LETTERS}0-9]{2,})|[${LETTERS}]{2,}))`,
].join('|');

const URL_PATTERN = new RegExp(
  '^' +
    '(?:(?:https?|ftp)://)' +
    `(?:[-a-z\\u{a1}-\\u{ffff}0-9._~%!$&'()*+,;=:]+(?::[-a-z0-9._~%!$&'()*+,;=:]*)?@)?` +
    `(?:${HOST})` +
    '(?::\\d{2,5})?' +
    `(?:/[-${LETTERS}0-9._~%!$&'()*+,;=:@/]*)?` +
    '(?:\\?\\S*)?' +
    '(?:#\\S*)?' +
    '$',
  'iu',
);

/**
 * Longest URL accepted (characters), and longest authority (`user:pass@host:port`). The pattern's DNS-name part
 * backtracks quadratically on long hosts (250 000 characters took 114 s); with these caps a check is bounded
 * (under a few ms), and no repository URL comes near them (a DNS name has at most 253 characters).
 */
export const MAX_URL_CHARS = 2048;
const MAX_AUTHORITY_CHARS = 512;

/** True when a Fed-BioMed v4.5 Python peer (validators 0.20 `url`) would accept `url` (and it is within the caps). */
export function isValidRepositoryUrl(url: string): boolean {
  if (typeof url !== 'string' || url.length > MAX_URL_CHARS) return false;
  const start = url.indexOf('://');
  if (start < 0) return false;
  const rest = url.slice(start + 3);
  const end = rest.search(/[/?#]/);
  if ((end < 0 ? rest.length : end) > MAX_AUTHORITY_CHARS) return false;
  return URL_PATTERN.test(url);
}

/** Throws an error naming the URL and the rule when a Python peer would reject it. */
export function assertValidRepositoryUrl(url: string, what = 'URL'): void {
  if (!isValidRepositoryUrl(url)) {
    throw new Error(
      `${what} ${JSON.stringify(urlForMessage(url))} would be rejected by Fed-BioMed v4.5 peers (validators.url): use http(s)://` +
        'HOST[:PORT]/path with HOST = localhost, an IP address, or a dotted DNS name such as files.example.org',
    );
  }
}

/** Longest URL shown in a message or log line. */
const SHOWN_URL_CHARS = 200;

/**
 * A URL as it may be printed or sent: credentials (`user:password@`) removed and cut to a readable length. Every
 * message that names a URL received from the network or configured with secrets goes through it.
 */
export function urlForMessage(url: string): string {
  const text = String(url).replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/?#@]*@/i, '$1***@');
  return text.length > SHOWN_URL_CHARS ? `${text.slice(0, SHOWN_URL_CHARS)}… (${text.length} characters)` : text;
}
