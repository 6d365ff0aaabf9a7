import * as v from 'valibot'
import { SessionSocketError } from './errors.js'
import { PROTOCOL_VERSION, type CallRequest, type RegisterRequest } from './events.js'

/** Token and code alphabet: nanoid's URL-safe characters. */
const URL_SAFE = /^[A-Za-z0-9_-]+$/
const METHOD_NAME = /^[A-Za-z0-9_.:/-]+$/

/** Limits on what the server accepts from a client; each has a default. */
export interface PayloadLimits {
  /** Longest string anywhere in params. @default 65536 */
  maxString: number
  /** Longest array anywhere in params. @default 10000 */
  maxArray: number
  /** Most keys in one object. @default 1000 */
  maxKeys: number
  /** Deepest nesting of objects and arrays. @default 32 */
  maxDepth: number
}

export const DEFAULT_PAYLOAD_LIMITS: PayloadLimits = {
  maxString: 65_536,
  maxArray: 10_000,
  maxKeys: 1_000,
  maxDepth: 32,
}

/** Keys that can reach Object.prototype through careless merging. */
const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype'])

/** What is wrong with a value, and where: path segments from the offending node up. */
interface Problem {
  what: string
  path: string[]
}

function problem(what: string): Problem {
  return { what, path: [] }
}

/**
 * The walk behind checkJsonValue: a function of its own (no closure per call), and the path of a
 * problem is built only once one is found (a path string per node visited was most of its cost).
 */
function walk(node: unknown, depth: number, limits: PayloadLimits): Problem | null {
  if (node === null || typeof node === 'boolean') return null
  if (typeof node === 'number') return Number.isFinite(node) ? null : problem('is not a finite number')
  if (typeof node === 'string') return node.length > limits.maxString ? problem(`is longer than ${limits.maxString} characters`) : null
  if (typeof node !== 'object') return problem(`is a ${typeof node}, not JSON data`)
  if (depth >= limits.maxDepth) return problem(`is nested deeper than ${limits.maxDepth}`)
  if (Array.isArray(node)) {
    if (node.length > limits.maxArray) return problem(`has more than ${limits.maxArray} items`)
    for (let i = 0; i < node.length; i++) {
      const found = walk(node[i], depth + 1, limits)
      if (found) {
        found.path.push(`[${i}]`)
        return found
      }
    }
    return null
  }
  const proto = Object.getPrototypeOf(node)
  if (proto !== Object.prototype && proto !== null) return problem('is binary or a class instance, not JSON data')
  const keys = Object.keys(node)
  if (keys.length > limits.maxKeys) return problem(`has more than ${limits.maxKeys} keys`)
  for (const key of keys) {
    if (FORBIDDEN_KEYS.has(key)) return problem(`has the forbidden key "${key}"`)
    const found = walk((node as Record<string, unknown>)[key], depth + 1, limits)
    if (found) {
      found.path.push(`.${key}`)
      return found
    }
  }
  return null
}

/**
 * Checks that `value` is plain JSON data within `limits`: no binary, no functions, no
 * prototype-pollution keys. Returns what is wrong, or null.
 */
export function checkJsonValue(value: unknown, limits: PayloadLimits = DEFAULT_PAYLOAD_LIMITS): string | null {
  const found = walk(value, 0, limits)
  return found && `params${found.path.reverse().join('')} ${found.what}`
}

const RegisterSchema = v.strictObject({
  v: v.pipe(v.number(), v.integer()),
  token: v.nullable(v.pipe(v.string(), v.minLength(16), v.maxLength(128), v.regex(URL_SAFE))),
  tabId: v.pipe(v.string(), v.minLength(1), v.maxLength(64), v.regex(URL_SAFE)),
  seq: v.optional(v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(Number.MAX_SAFE_INTEGER))),
})

const AckSchema = v.strictObject({
  seq: v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(Number.MAX_SAFE_INTEGER)),
})

const RestoreSchema = v.strictObject({
  code: v.pipe(v.string(), v.minLength(16), v.maxLength(128), v.regex(URL_SAFE)),
})

function describe(issues: v.BaseIssue<unknown>[]): string {
  const issue = issues[0]
  if (!issue) return 'invalid payload'
  const path = issue.path?.map((item) => String(item.key)).join('.')
  return path ? `${path}: ${issue.message}` : issue.message
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false
  const proto = Object.getPrototypeOf(value)
  return proto === Object.prototype || proto === null
}

/**
 * Validates a register request. Throws SessionSocketError UNSUPPORTED_VERSION or BAD_REQUEST.
 */
export function parseRegister(input: unknown): RegisterRequest {
  if (!isPlainObject(input)) throw new SessionSocketError('BAD_REQUEST', 'register must be an object { v, token, tabId }')
  if (Number.isInteger(input.v) && input.v !== PROTOCOL_VERSION) {
    throw new SessionSocketError('UNSUPPORTED_VERSION', `protocol version ${String(input.v)} is not supported; this server speaks ${PROTOCOL_VERSION}`)
  }
  const result = v.safeParse(RegisterSchema, input)
  if (!result.success) throw new SessionSocketError('BAD_REQUEST', `register: ${describe(result.issues)}`)
  return result.output
}

/**
 * The keys socket.io-client adds to the CONNECT auth of its own accord: with the server's
 * `connectionStateRecovery` on, `pid` (the recovered session) and `offset` (the last packet
 * seen). Socket.IO reads them; register ignores them.
 */
export const RECOVERY_AUTH_KEYS = ['pid', 'offset'] as const

/**
 * Validates the CONNECT auth as a register request, less socket.io-client's recovery keys
 * (`pid`, `offset`, strings). Returns null when nothing else is there: the client registers
 * with the `ss:register` event instead. Throws as {@link parseRegister}.
 *
 * @example
 * const request = parseConnectAuth(socket.handshake.auth)   // null: no register in CONNECT
 */
export function parseConnectAuth(input: unknown): RegisterRequest | null {
  if (!isPlainObject(input)) return parseRegister(input)
  let rest: Record<string, unknown> = input
  for (const key of RECOVERY_AUTH_KEYS) {
    if (!Object.hasOwn(input, key)) continue
    if (typeof input[key] !== 'string') throw new SessionSocketError('BAD_REQUEST', `register: ${key} must be a string (Socket.IO's connection state recovery)`)
    if (rest === input) rest = { ...input }
    delete rest[key]
  }
  if (Object.keys(rest).length === 0) return null
  return parseRegister(rest)
}

const ID_RULE = 'id must be a string of 1-64 of [A-Za-z0-9_-]'
const METHOD_RULE = 'm must be a string of 1-128 of [A-Za-z0-9_.:/-]'

const CallSchema = v.strictObject(
  {
    id: v.pipe(v.string(ID_RULE), v.minLength(1, ID_RULE), v.maxLength(64, ID_RULE), v.regex(URL_SAFE, ID_RULE)),
    m: v.pipe(v.string(METHOD_RULE), v.minLength(1, METHOD_RULE), v.maxLength(128, METHOD_RULE), v.regex(METHOD_NAME, METHOD_RULE)),
    p: v.optional(v.unknown()),
  },
  // The object-level issues: a key that is not allowed, or a required one missing.
  (issue) => {
    if (issue.expected === 'never') return `unexpected key "${String(issue.input)}"`
    return issue.path?.[0]?.key === 'm' ? METHOD_RULE : ID_RULE
  },
)

/**
 * Whether `input` is a call envelope CallSchema accepts, checked by hand: the schema's walk costs
 * more than the rest of a call's validation, and a well-formed call is the common case. Anything
 * else goes through the schema, which says what is wrong.
 */
function isValidCallEnvelope(input: Record<string, unknown>): input is { id: string; m: string; p?: unknown } {
  const { id, m } = input
  if (typeof id !== 'string' || id.length === 0 || id.length > 64 || !URL_SAFE.test(id)) return false
  if (typeof m !== 'string' || m.length === 0 || m.length > 128 || !METHOD_NAME.test(m)) return false
  let keys = 0
  for (const key in input) {
    if (key !== 'id' && key !== 'm' && key !== 'p') return false
    keys++
  }
  // No own key for-in missed (a non-enumerable one is the schema's to judge).
  return keys === Object.getOwnPropertyNames(input).length
}

/**
 * Validates an RPC call envelope `{ id, m, p? }` (no other key, see PROTOCOL.md) with its valibot
 * schema, as every inbound payload is, and its params with `checkJsonValue`. Throws
 * SessionSocketError BAD_REQUEST saying what is wrong.
 */
export function parseCall(input: unknown, limits: PayloadLimits = DEFAULT_PAYLOAD_LIMITS): CallRequest {
  if (!isPlainObject(input)) throw new SessionSocketError('BAD_REQUEST', 'call must be an object { id, m, p }')
  let id: string
  let m: string
  let p: unknown
  if (isValidCallEnvelope(input)) {
    ;({ id, m, p } = input)
  } else {
    // The envelope through its schema, stopping at the first issue; params by the JSON walk.
    const result = v.safeParse(CallSchema, input, { abortEarly: true })
    if (!result.success) throw new SessionSocketError('BAD_REQUEST', `call: ${result.issues[0].message}`)
    ;({ id, m, p } = result.output)
  }
  if (p === undefined) return { id, m }
  const wrong = checkJsonValue(p, limits)
  if (wrong) throw new SessionSocketError('BAD_REQUEST', wrong)
  return { id, m, p }
}

/** Validates a durable-event acknowledgement `{ seq }`. Throws SessionSocketError BAD_REQUEST. */
export function parseAck(input: unknown): { seq: number } {
  const result = v.safeParse(AckSchema, input)
  if (!result.success) throw new SessionSocketError('BAD_REQUEST', `ack: ${describe(result.issues)}`)
  return result.output
}

/** Validates the body of `POST {path}/restore`. Throws SessionSocketError BAD_REQUEST. */
export function parseRestore(input: unknown): { code: string } {
  if (!isPlainObject(input)) throw new SessionSocketError('BAD_REQUEST', 'restore body must be JSON { code }')
  const result = v.safeParse(RestoreSchema, input)
  if (!result.success) throw new SessionSocketError('BAD_REQUEST', `restore: ${describe(result.issues)}`)
  return result.output
}
