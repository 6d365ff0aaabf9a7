/**
 * Whether `value` is a promise or any thenable. Stores and handlers may answer with a plain
 * value or a promise: the plain value is used at once, with no promise and no microtask.
 *
 * @example
 * const result = handler(params, ctx)
 * return isThenable(result) ? Promise.resolve(result).then(succeeded) : succeeded(result)
 */
export function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof (value as { then?: unknown } | null)?.then === 'function'
}
