export { ERROR_CODES, SessionSocketError, isErrorCode } from './errors.js'
export type { ErrorCode, WireError } from './errors.js'
export { CLIENT_EVENTS, EVENTS, PROTOCOL_VERSION, STREAM_BLOCK, reservedEventName, streamBase } from './events.js'
export type {
  AnyEvents,
  AppEventMap,
  CallReply,
  CallRequest,
  ClientEventName,
  ClientToServerEvents,
  ConnectErrorData,
  DurableEventPayload,
  EndReason,
  EndedEvent,
  EventMap,
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
