/**
 * The base of every error this package throws on purpose, so a caller can tell ours from a bug or a library's
 * (`err instanceof FedbiomedTsError`), and read Fed-BioMed's error number where the error is one of Fed-BioMed's
 * kinds (`errnum`, e.g. "FB414" for bad training arguments: src/protocol/error-numbers.ts has the full strings).
 * A leaf module: every area may import it, it imports nothing.
 *
 * `name` is the class's own name ("PlanLoadError", "RepositoryError"…), set here once from `new.target` rather than
 * by a line in every subclass. The package is built by plain `tsc` (no minifier renames classes), and
 * src/package.test.ts checks the names and `instanceof` on the installed tarball.
 */

/** A Fed-BioMed error number, "FB" and three digits (src/protocol/error-numbers.ts lists them). */
export type FbErrorNumber = `FB${number}`;

export interface FedbiomedTsErrorOptions extends ErrorOptions {
  errnum?: FbErrorNumber;
}

export class FedbiomedTsError extends Error {
  /** Fed-BioMed's error number for this kind of error, when it has one. */
  readonly errnum: FbErrorNumber | undefined;

  constructor(message?: string, options?: FedbiomedTsErrorOptions) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.errnum = options?.errnum;
  }
}
