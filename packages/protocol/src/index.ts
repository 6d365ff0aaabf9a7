export { ERROR_CODES, SessionSocketError, isErrorCode } from './errors.js'
export type { ErrorCode, WireError } from './errors.js'
export { CLIENT_EVENTS, EVENTS, PROTOCOL_VERSION, reservedEventName } from './events.js'
export type {
  CallReply,
  CallRequest,
  ClientEventName,
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
export { DEFAULT_PAYLOAD_LIMITS, checkJsonValue, parseAck, parseCall, parseRegister, parseRestore } from './schemas.js'
export type { PayloadLimits } from './schemas.js'
