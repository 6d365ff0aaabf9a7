import { MemoryLinkStore } from '../../src/stores/memory.js'
import { linkStoreContract } from './contract.js'
import { durableEventChecks } from './durable-events.js'

const make = async () => {
  const store = new MemoryLinkStore()
  return { store, cleanup: () => store.close() }
}

linkStoreContract('MemoryLinkStore', make)
durableEventChecks('MemoryLinkStore', make)
