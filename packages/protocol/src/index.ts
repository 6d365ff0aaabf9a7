export { ERROR_CODES, SessionSocketError, isErrorCode } from './errors.js'
export type { ErrorCode, WireError } from './errors.js'
export { EVENTS, PROTOCOL_VERSION } from './events.js'
export type {
  CallReply,
  CallRequest,
  ClientToServerEvents,
  ConnectErrorData,
  DurableEventPayload,
  EndReason,
  EndedEvent,
  MethodMap,
  MethodParams,
  MethodResult,
  RegisterReason,
  RegisterReply,
  RegisterRequest,
  ServerToClientEvents,
} from './events.js'
export { DEFAULT_PAYLOAD_LIMITS, RECOVERY_AUTH_KEYS, checkJsonValue, parseAck, parseCall, parseConnectAuth, parseRegister, parseRestore } from './schemas.js'
export type { PayloadLimits } from './schemas.js'
