/** Fed-BioMed v6 (gRPC, protocol "7") transport: public API of src/transport/v6. */
export { V6_CHUNK_BYTES, DEFAULT_V6_PORT, PROTO_FILE, researcherService } from './grpc';
export { toChunks, ChunkAssembler, ChunkSequenceError } from './chunks';
export { decodeV6Payload, encodeV6Payload } from './payload';
export { V6_PROTOCOL_VERSION, V6_MESSAGE_FIELDS, makeV6Message, encodeV6Message, decodeV6Message, validateV6Fields,
  V6MessageError } from './messages';
export type { V6Message, V6ClassName } from './messages';
export { V6NodeClient, CertificateError, identityOf, pinOrCheck, fetchServerCertificate } from './node-client';
export { V6ResearcherServer, researcherIdentity } from './researcher-server';
