/**
 * Where the recorded Fed-BioMed v4.5.0 vectors are (`../shared/fedbiomed-v4.5-vectors` beside the repository, or
 * FEDBIOMED_VECTORS): the one place tests compute it. Only tests import this file.
 */
import * as path from 'path';

export const VECTORS_DIR =
  process.env.FEDBIOMED_VECTORS ?? path.resolve(__dirname, '..', '..', '..', 'shared', 'fedbiomed-v4.5-vectors');
