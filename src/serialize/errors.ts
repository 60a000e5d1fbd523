/**
 * The one error the weight-file codec throws. Its message always says what is wrong and where (a path such as
 * `model_weights["fc1.weight"].value[0]`, or a byte offset), so a bad file from a peer can be reported, not crashed on.
 */
import { FedbiomedTsError } from '../errors';

export class SerializationError extends FedbiomedTsError {}
