import { MemoryLinkStore } from '../../src/stores/memory.js'
import { linkStoreContract } from './contract.js'

linkStoreContract('MemoryLinkStore', async () => {
  const store = new MemoryLinkStore()
  return { store, cleanup: () => store.close() }
})
