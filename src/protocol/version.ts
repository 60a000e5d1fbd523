/** The messaging protocol version Fed-BioMed v4.5.0 sends (`__messaging_protocol_version__`, as a string). */
export const PROTOCOL_VERSION = '1';

/** Messages from before versioning (v4.0–4.3) carry no field and count as this version. */
const DEFAULT_VERSION = '0';

export type VersionCheck = { ok: true; warning?: string } | { ok: false; error: string };

interface Release {
  major: number;
  minor: number;
  micro: number;
}

/**
 * PEP 440 version syntax, as `packaging.version.Version` parses it (case-insensitive, optional leading "v",
 * epoch, pre/post/dev segments and local label). Only the release numbers matter to the compatibility rule.
 */
const PEP440 =
  /^\s*v?(?:(\d+)!)?(\d+(?:\.\d+)*)(?:[-_.]?(?:a|b|c|rc|alpha|beta|pre|preview)[-_.]?\d*)?(?:-\d+|[-_.]?(?:post|rev|r)[-_.]?\d*)?(?:[-_.]?dev[-_.]?\d*)?(?:\+[a-z0-9]+(?:[-_.][a-z0-9]+)*)?\s*$/i;

function parseRelease(version: string): { release: Release; normal: string } | undefined {
  const match = PEP440.exec(version);
  if (!match) return undefined;
  const numbers = match[2].split('.').map(Number);
  // packaging compares versions with trailing zeros removed ("1" == "1.0"), lower-cased, separators normalised.
  const normal = version.trim().toLowerCase().replace(/^v/, '').replace(/(\.0+)+(?=$|[^.\d])/, '');
  return { release: { major: numbers[0], minor: numbers[1] ?? 0, micro: numbers[2] ?? 0 }, normal };
}

/**
 * Fed-BioMed's `raise_for_version_compatibility(theirs, PROTOCOL_VERSION)`: a missing field counts as "0";
 * the value must be a string and a valid version; it is rejected when its major differs from ours, or its
 * minor is newer, or the minor is equal and its micro is newer. A compatible but different version is accepted
 * with a warning (Python logs one).
 */
export function checkProtocolVersion(theirs: unknown): VersionCheck {
  const value = theirs === undefined ? DEFAULT_VERSION : theirs;
  if (typeof value !== 'string') {
    return { ok: false, error: `protocol_version must be a string (got ${value === null ? 'null' : typeof value})` };
  }
  const their = parseRelease(value);
  if (!their) return { ok: false, error: `protocol_version ${JSON.stringify(value)} is not a valid version` };
  const our = parseRelease(PROTOCOL_VERSION)!;
  if (their.normal === our.normal) return { ok: true };

  const incompatible =
    their.release.major !== our.release.major ||
    their.release.minor > our.release.minor ||
    (their.release.minor === our.release.minor && their.release.micro > our.release.micro);
  const shown = theirs === undefined ? `missing (counts as "${DEFAULT_VERSION}")` : JSON.stringify(value);
  if (incompatible) {
    return {
      ok: false,
      error: `protocol_version ${shown} is incompatible with ours ("${PROTOCOL_VERSION}"): major must be equal, minor and micro not newer`,
    };
  }
  return { ok: true, warning: `protocol_version ${shown} differs from ours ("${PROTOCOL_VERSION}") but is compatible` };
}
