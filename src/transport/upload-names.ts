/**
 * File names on the embedded repository, following what Fed-BioMed's Django server does with an upload, so
 * that URLs look the same whichever server a peer uses:
 *  - the stored path is `uploads/YYYY/MM/DD/<name>` (UTC date, the server's TIME_ZONE);
 *  - <name> is the uploaded name made "valid" like Django's get_valid_filename (trimmed, spaces to `_`, every
 *    character other than letters, digits, `-`, `_`, `.` removed);
 *  - when the name is taken, or the whole path is over 100 characters (FileField max_length), `_` and 7 random
 *    letters/digits go before the extension, the stem being cut short if needed (Django's get_available_name).
 * Unlike Django, which silently keeps only the last path component, a name with a directory part is refused:
 * a client sending `../x` is confused or hostile, and saying so is clearer.
 */
import { randomInt } from 'crypto';
import * as path from 'path';
import { FedbiomedTsError } from '../errors';

const MAX_STORED_PATH_CHARS = 100;
const RANDOM_ALPHABET = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';

export class UploadNameError extends FedbiomedTsError {}

/** `uploads/YYYY/MM/DD` for a moment, in UTC. */
export function uploadDirectory(now: Date): string {
  const y = String(now.getUTCFullYear()).padStart(4, '0');
  const m = String(now.getUTCMonth() + 1).padStart(2, '0');
  const d = String(now.getUTCDate()).padStart(2, '0');
  return `uploads/${y}/${m}/${d}`;
}

/**
 * Checks the name a client gave its file and returns the name to store, or throws UploadNameError saying what
 * is wrong with it.
 */
export function validUploadName(clientName: string): string {
  if (clientName.length === 0) throw new UploadNameError('the submitted file has no name');
  if (/[/\\]/.test(clientName) || path.isAbsolute(clientName)) {
    throw new UploadNameError(`file name ${JSON.stringify(clientName)} must be a plain name, without a directory part`);
  }
  if (clientName === '.' || clientName === '..') {
    throw new UploadNameError(`file name ${JSON.stringify(clientName)} is not a file name`);
  }
  if (clientName.length > MAX_STORED_PATH_CHARS) {
    // Django REST framework's own message for this case.
    throw new UploadNameError(
      `Ensure this filename has at most ${MAX_STORED_PATH_CHARS} characters (it has ${clientName.length}).`,
    );
  }
  const valid = clientName.trim().replace(/ /g, '_').replace(/[^-\p{L}\p{N}_.]/gu, '');
  if (valid === '' || valid === '.' || valid === '..') {
    throw new UploadNameError(`file name ${JSON.stringify(clientName)} has no usable characters`);
  }
  return valid;
}

function randomSuffix(length = 7): string {
  let out = '';
  for (let i = 0; i < length; i++) out += RANDOM_ALPHABET[randomInt(RANDOM_ALPHABET.length)];
  return out;
}

/** Python's os.path.splitext: the extension is the last `.suffix`, leading dots of the name do not count. */
export function splitExtension(name: string): [stem: string, ext: string] {
  const dot = name.lastIndexOf('.');
  if (dot <= 0 || /^\.+$/.test(name.slice(0, dot))) return [name, ''];
  return [name.slice(0, dot), name.slice(dot)];
}

/**
 * Candidate stored paths for `name` in `directory`, in Django's order: the name itself unless the path is too
 * long, then `stem_XXXXXXX.ext` with the stem shortened to fit. `taken` says whether a path exists already; the
 * caller must still create the file atomically (another upload may win the race) and ask again when it loses.
 */
export function* candidatePaths(directory: string, name: string): Generator<string> {
  const first = `${directory}/${name}`;
  if (first.length <= MAX_STORED_PATH_CHARS) yield first;
  let [stem, ext] = splitExtension(name);
  for (;;) {
    let candidate = `${directory}/${stem}_${randomSuffix()}${ext}`;
    const over = candidate.length - MAX_STORED_PATH_CHARS;
    if (over > 0) {
      stem = stem.slice(0, -over);
      if (stem.length === 0) {
        throw new UploadNameError(`file name ${JSON.stringify(name)} is too long to be stored under ${directory}/`);
      }
      candidate = `${directory}/${stem}_${randomSuffix()}${ext}`;
    }
    yield candidate;
  }
}
