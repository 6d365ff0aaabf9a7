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

/**
 * Checks that `value` is plain JSON data within `limits`: no binary, no functions, no
 * prototype-pollution keys. Returns what is wrong, or null.
 */
export function checkJsonValue(value: unknown, limits: PayloadLimits = DEFAULT_PAYLOAD_LIMITS): string | null {
  const walk = (node: unknown, depth: number, where: string): string | null => {
    if (node === null || typeof node === 'boolean') return null
    if (typeof node === 'number') return Number.isFinite(node) ? null : `${where} is not a finite number`
    if (typeof node === 'string') return node.length > limits.maxString ? `${where} is longer than ${limits.maxString} characters` : null
    if (typeof node !== 'object') return `${where} is a ${typeof node}, not JSON data`
    if (depth >= limits.maxDepth) return `${where} is nested deeper than ${limits.maxDepth}`
    if (Array.isArray(node)) {
      if (node.length > limits.maxArray) return `${where} has more than ${limits.maxArray} items`
      for (let i = 0; i < node.length; i++) {
        const problem = walk(node[i], depth + 1, `${where}[${i}]`)
        if (problem) return problem
      }
      return null
    }
    const proto = Object.getPrototypeOf(node)
    if (proto !== Object.prototype && proto !== null) return `${where} is binary or a class instance, not JSON data`
    const keys = Object.keys(node)
    if (keys.length > limits.maxKeys) return `${where} has more than ${limits.maxKeys} keys`
    for (const key of keys) {
      if (FORBIDDEN_KEYS.has(key)) return `${where} has the forbidden key "${key}"`
      const problem = walk((node as Record<string, unknown>)[key], depth + 1, `${where}.${key}`)
      if (problem) return problem
    }
    return null
  }
  return walk(value, 0, 'params')
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

const CallSchema = v.strictObject({
  id: v.pipe(v.string(), v.minLength(1), v.maxLength(64), v.regex(URL_SAFE)),
  m: v.pipe(v.string(), v.minLength(1), v.maxLength(128), v.regex(METHOD_NAME)),
  p: v.optional(v.unknown()),
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
 * Validates an RPC call envelope and its params. Throws SessionSocketError BAD_REQUEST.
 */
export function parseCall(input: unknown, limits: PayloadLimits = DEFAULT_PAYLOAD_LIMITS): CallRequest {
  if (!isPlainObject(input)) throw new SessionSocketError('BAD_REQUEST', 'call must be an object { id, m, p }')
  const result = v.safeParse(CallSchema, input)
  if (!result.success) throw new SessionSocketError('BAD_REQUEST', `call: ${describe(result.issues)}`)
  if (result.output.p !== undefined) {
    const problem = checkJsonValue(result.output.p, limits)
    if (problem) throw new SessionSocketError('BAD_REQUEST', problem)
  }
  return result.output
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
