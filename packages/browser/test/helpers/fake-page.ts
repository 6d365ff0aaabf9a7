import type { PageEvent, PageLifecycle } from '@session-socket/browser'

/** A page the test drives: it says what the browser would (online, visible, pagehide…). */
export interface FakePage extends PageLifecycle {
  isHidden: boolean
  emit(event: PageEvent): void
}

export function fakePage(): FakePage {
  const listeners = new Set<(event: PageEvent) => void>()
  return {
    isHidden: false,
    hidden() {
      return this.isHidden
    },
    subscribe(listener) {
      listeners.add(listener)
      return () => listeners.delete(listener)
    },
    emit(event) {
      if (event === 'hidden') this.isHidden = true
      if (event === 'visible') this.isHidden = false
      for (const listener of [...listeners]) listener(event)
    },
  }
}

/** Resolves after `ms`: only to show that something does NOT happen within a bounded time. */
export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))
