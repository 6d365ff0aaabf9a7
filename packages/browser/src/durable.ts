export { createDurableCalls, idbDurableCallStorage, memoryDurableCallStorage } from './durable-calls.js'
export type { DurableCall, DurableCallStorage, DurableCalls, DurableCallsOptions, DurableSettled } from './durable-calls.js'
export { idbKeyValueStore } from './idb-store.js'
export type { IdbStoreOptions, KeyValueStore } from './idb-store.js'
