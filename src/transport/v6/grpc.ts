/**
 * The Fed-BioMed v6 gRPC service (`researcher.ResearcherService`), loaded from the upstream researcher.proto with
 * @grpc/proto-loader, and the channel settings v6 peers use (fedbiomed/transport/client.py and server.py).
 */
import * as path from 'path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

const PROTO_FILE = path.join(__dirname, 'researcher.proto');
export const DEFAULT_V6_PORT = 50051;

/** Fed-BioMed's MAX_MESSAGE_BYTES_LENGTH: 4,000,000 - sys.getsizeof(b"") bytes per chunk. */
export const V6_CHUNK_BYTES = 3_999_967;
/** grpc max send / receive message size on both sides (100 MiB). */
const V6_MAX_GRPC_MESSAGE = 100 * 1024 * 1024;
/** GRPC_CLIENT_TASK_REQUEST_TIMEOUT: a long poll's deadline. */
export const V6_POLL_DEADLINE_MS = 3600_000;

/** The wire form of TaskResponse / TaskResult (field names as proto-loader gives them: keepCase). */
export interface TaskChunk {
  size: number;
  iteration: number;
  bytes_: Buffer;
}
export interface TaskRequestProto {
  node: string;
  protocol_version: string;
}
interface FeedbackLogProto {
  node_id: string;
  level: string;
  msg: string;
}
export interface FeedbackScalarProto {
  node_id: string;
  node_name: string;
  experiment_id: string;
  train: boolean;
  test: boolean;
  test_on_local_updates: boolean;
  test_on_global_updates: boolean;
  metric: Record<string, number>;
  epoch?: number | null;
  total_samples: number;
  batch_samples: number;
  num_batches: number;
  num_samples_trained?: number | null;
  iteration: number;
}
export interface FeedbackMessageProto {
  protocol_version: string;
  researcher_id?: string | null;
  scalar?: FeedbackScalarProto | null;
  log?: FeedbackLogProto | null;
  feedback_type?: 'scalar' | 'log';
}

export interface ResearcherServiceClient extends grpc.Client {
  GetTaskUnary(request: TaskRequestProto, options: grpc.CallOptions): grpc.ClientReadableStream<TaskChunk>;
  ReplyTask(callback: (err: grpc.ServiceError | null) => void): grpc.ClientWritableStream<TaskChunk>;
  Feedback(request: FeedbackMessageProto, options: grpc.CallOptions,
    callback: (err: grpc.ServiceError | null) => void): grpc.ClientUnaryCall;
}

interface ResearcherPackage {
  researcher: { ResearcherService: grpc.ServiceClientConstructor };
}

let loaded: ResearcherPackage | undefined;

function researcherPackage(): ResearcherPackage {
  if (!loaded) {
    const definition = protoLoader.loadSync(PROTO_FILE, {
      // Field names as in the .proto (bytes_, node_id…); int32 as numbers; unset optional fields stay absent so a
      // proto3 `optional` keeps its presence (epoch, num_samples_trained, researcher_id).
      keepCase: true, longs: Number, enums: String, defaults: true, oneofs: true,
    });
    loaded = grpc.loadPackageDefinition(definition) as unknown as ResearcherPackage;
  }
  return loaded;
}

/** The service definition, for a server (`server.addService`). */
export function researcherService(): grpc.ServiceDefinition {
  return researcherPackage().researcher.ResearcherService.service;
}

/** Channel options of a Fed-BioMed v6 node (client.py): 100 MiB messages, keepalive 60 s / 2 s, backoff 0.5-2 s. */
const V6_CLIENT_OPTIONS: grpc.ChannelOptions = {
  'grpc.max_send_message_length': V6_MAX_GRPC_MESSAGE,
  'grpc.max_receive_message_length': V6_MAX_GRPC_MESSAGE,
  'grpc.keepalive_time_ms': 60_000,
  'grpc.keepalive_timeout_ms': 2_000,
  'grpc.keepalive_permit_without_calls': 1,
  'grpc.initial_reconnect_backoff_ms': 1_000,
  'grpc.min_reconnect_backoff_ms': 500,
  'grpc.max_reconnect_backoff_ms': 2_000,
  'grpc.enable_retries': 1,
};

/** Server options of a Fed-BioMed v6 researcher (server.py). */
export const V6_SERVER_OPTIONS: grpc.ChannelOptions = {
  'grpc.max_send_message_length': V6_MAX_GRPC_MESSAGE,
  'grpc.max_receive_message_length': V6_MAX_GRPC_MESSAGE,
  'grpc.keepalive_time_ms': 60_000,
  'grpc.keepalive_timeout_ms': 2_000,
  'grpc.keepalive_permit_without_calls': 1,
  'grpc.max_connection_idle_ms': 3_602_000,
  'grpc.max_connection_age_ms': 3_605_000,
  'grpc.max_connection_age_grace_ms': 2_000,
  'grpc.http2.min_ping_interval_without_data_ms': 1_800,
  'grpc.http2.max_ping_strikes': 100,
  'grpc.so_reuseport': 0,
};

/** A client of the researcher's service over TLS, trusting `rootCert` (PEM) and checking `hostname` against it. */
export function researcherClient(address: string, credentials: grpc.ChannelCredentials): ResearcherServiceClient {
  const Client = researcherPackage().researcher.ResearcherService;
  return new Client(address, credentials, V6_CLIENT_OPTIONS) as unknown as ResearcherServiceClient;
}
