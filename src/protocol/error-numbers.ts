/**
 * Fed-BioMed v4.5.0 error numbers (`fedbiomed.common.constants.ErrorNumbers`). On the wire, `errnum` in an
 * `error` message is the FULL string (e.g. "FB312: Node stopped in SIGTERM signal handler"); a receiver maps it
 * back by exact match and treats anything else as FB999. Note FB315's trailing space: it is part of the value.
 */
export const ERROR_NUMBERS = {
  FB100: "FB100: undetermined messaging server error",
  FB101: "FB101: cannot connect to the messaging server",
  FB102: "FB102: messaging server does not answer in dedicated time",
  FB103: "FB103: messaging call error",
  FB104: "FB104: message exchange error",
  FB200: "FB200: undetermined repository server error",
  FB201: "FB201: server not reachable",
  FB202: "FB202: server returns 404 error",
  FB203: "FB203: server returns other 4xx or 500 error",
  FB300: "FB300: undetermined node error",
  FB301: "FB301: Protocol error",
  FB302: "FB302: TrainingPlan class does not load",
  FB303: "FB303: TrainingPlan class does not contain expected methods",
  FB304: "FB304: TrainingPlan method crashes",
  FB305: "FB305: TrainingPlan loops indefinitely",
  FB306: "FB306: bad URL for TrainingPlan (.py)",
  FB307: "FB307: bad URL for training params (.mpk)",
  FB308: "FB308: bad training request (.json)",
  FB309: "FB309: bad model params (.mpk)",
  FB310: "FB310: bad data format",
  FB311: "FB311: receiving a new computation request during a running computation",
  FB312: "FB312: Node stopped in SIGTERM signal handler",
  FB313: "FB313: no dataset matching request",
  FB314: "FB314: Node round error",
  FB315: "FB315: Error while loading the data ",
  FB316: "FB316: Data loading plan error",
  FB317: "FB317: FLamby package import error",
  FB318: "FB318: Secure aggregation setup error",
  FB319: "FB319: Command not found error",
  FB320: "FB320: bad model type",
  FB321: "FB321: Secure aggregation delete error",
  FB322: "FB322: Dataset registration error",
  FB323: "FB323: Node State error",
  FB400: "FB400: undetermined application error",
  FB401: "FB401: aggregation crashes or returns an error",
  FB402: "FB402: strategy method crashes or sends an error",
  FB403: "FB403: bad URL (.pt) for model param",
  FB404: "FB404: bad model param (.pt) format for TrainingPlan",
  FB405: "FB405: received delayed answer for previous computation round",
  FB406: "FB406: list of nodes is empty at data lookup phase",
  FB407: "FB407: list of nodes became empty when training (all nodes failed training or did not answer)",
  FB408: "FB408: training failed on node or node did not answer during training",
  FB409: "FB409: node sent Status=Error during training",
  FB410: "FB410: bad type or value for experiment argument",
  FB411: "FB411: cannot train an experiment that is not fully defined",
  FB412: "FB412: cannot do model checking for experiment",
  FB413: "FB413: cannot save or load breakpoint for experiment",
  FB414: "FB414: bad type or value for training arguments",
  FB415: "FB415: secure aggregation handling error",
  FB416: "FB416: federated dataset error",
  FB417: "FB417: Secure aggregation error",
  FB418: "FB418: Node state agent error",
  FB500: "FB500: undetermined node error, detected by server",
  FB501: "FB501: node not reachable",
  FB600: "FB600: environ error",
  FB601: "FB601: message error",
  FB602: "FB602: logger error",
  FB603: "FB603: task queue error",
  FB604: "FB604: repository error",
  FB605: "FB605: training plan error",
  FB606: "FB606: model manager error",
  FB607: "FB607: data manager error",
  FB608: "FB608: torch data manager error",
  FB609: "FB609: scikit-learn data manager error",
  FB610: "FB610: Torch based tabular dataset creation error",
  FB611: "FB611: Error while trying to evaluate using the specified metric",
  FB612: "FB612: Torch based NIFTI dataset error",
  FB613: "FB613: Medical Folder dataset error",
  FB614: "FB614: data loading block error",
  FB615: "FB615: data loading plan error",
  FB616: "FB616: differential privacy controller error",
  FB617: "FB617: FLamby dataset error",
  FB618: "FB618: FLamby data transformation error",
  FB619: "FB619: Certificate error",
  FB620: "FB620: MPC protocol error",
  FB621: "FB621: declearn optimizer error",
  FB622: "FB622: Model error",
  FB623: "FB623: Secure aggregation database error",
  FB624: "FB624: Secure aggregation crypter error",
  FB625: "FB625: Component version error",
  FB626: "FB626: Fed-BioMed optimizer error",
  FB999: "FB999: unknown error code sent by the node",
} as const;

export type ErrorCode = keyof typeof ERROR_NUMBERS;
export type ErrnumString = (typeof ERROR_NUMBERS)[ErrorCode];

const CODE_BY_STRING: ReadonlyMap<string, ErrorCode> = new Map(
  (Object.keys(ERROR_NUMBERS) as ErrorCode[]).map((code) => [ERROR_NUMBERS[code], code]),
);

/** The wire string of an error code, e.g. errnumString('FB313') === "FB313: no dataset matching request". */
export function errnumString(code: ErrorCode): ErrnumString {
  return ERROR_NUMBERS[code];
}

/** The code of a wire `errnum` string, by exact match as Python does; unknown strings give 'FB999'. */
export function errorCodeOf(errnum: unknown): ErrorCode {
  return (typeof errnum === 'string' && CODE_BY_STRING.get(errnum)) || 'FB999';
}

/** The known wire string a received `errnum` stands for: itself when known, FB999's string otherwise. */
export function normalizeErrnum(errnum: unknown): ErrnumString {
  return ERROR_NUMBERS[errorCodeOf(errnum)];
}

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.prototype.hasOwnProperty.call(ERROR_NUMBERS, value);
}
